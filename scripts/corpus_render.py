"""Helpers for scripts/fetch-training-corpus.sh: turn music that is not audio
yet into something a synthesiser or a decoder can play.

  wad-music WAD OUTDIR       write the music lumps of a Doom WAD (Freedoom) as
                             OUTDIR/LUMP.mid (MUS lumps converted to MIDI)
  raw-u8 SRC OUT.wav RATE CH  wrap headerless unsigned 8-bit PCM (XBlast's
                             songs) in a WAV header
  score-midi SRC OUTDIR SECS  parse a score (ABC, MusicXML, Humdrum...) with
                             music21 and write its piece(s) as OUTDIR/NNN.mid,
                             stopping once about SECS seconds are written (an
                             ABC "book" holds hundreds of tunes)

Only the standard library, except score-midi (music21). Exit status 1 with a
message naming the file when the input is not what it should be.
"""

import struct
import sys
import wave
from pathlib import Path

# --- Doom WAD / MUS -------------------------------------------------------------
# MUS (id Software's compact MIDI): 140 ticks per second; one event byte =
# last-event flag (bit 7), event type (bits 4-6), channel (bits 0-3).
MUS_TICKS_PER_SECOND = 140
MIDI_DIVISION = 70  # ticks per quarter note; at 120 bpm (the default) = 140/s
# MUS controllers 1-9 -> MIDI controller numbers (0 is the program change).
MUS_CONTROLLERS = {1: 0, 2: 1, 3: 7, 4: 10, 5: 11, 6: 91, 7: 93, 8: 64, 9: 67}
# MUS system events 10-14 -> MIDI channel-mode controllers.
MUS_SYSTEM = {10: 120, 11: 123, 12: 126, 13: 127, 14: 121}


def _varlen(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def mus_to_midi(data, name="MUS"):
    """The MIDI file (format 0) holding the same score as the MUS lump `data`."""
    if data[:4] != b"MUS\x1a" or len(data) < 16:
        raise ValueError(f"{name}: not a MUS lump")
    score_len, score_start = struct.unpack_from("<HH", data, 4)
    pos, end = score_start, min(len(data), score_start + score_len)
    track = bytearray()
    channel_map = {15: 9}  # MUS percussion channel -> MIDI channel 10
    velocity = [127] * 16
    delay = 0

    def midi_channel(ch):
        if ch not in channel_map:  # allocate in order of use, skipping 9
            used = set(channel_map.values())
            channel_map[ch] = next(c for c in range(16) if c != 9 and c not in used)
        return channel_map[ch]

    def emit(*event):
        nonlocal delay
        track.extend(_varlen(delay) + bytes(event))
        delay = 0

    while pos < end:
        byte = data[pos]
        pos += 1
        kind, ch = (byte >> 4) & 7, midi_channel(byte & 15)
        if kind == 0:  # release note
            emit(0x80 | ch, data[pos] & 0x7F, 64)
            pos += 1
        elif kind == 1:  # play note (volume follows when bit 7 is set)
            note = data[pos]
            pos += 1
            if note & 0x80:
                velocity[ch] = min(data[pos], 127)
                pos += 1
            emit(0x90 | ch, note & 0x7F, velocity[ch])
        elif kind == 2:  # pitch wheel, 0-255 with 128 = centre
            bend = data[pos] * 64
            pos += 1
            emit(0xE0 | ch, bend & 0x7F, bend >> 7)
        elif kind == 3:  # system event
            if data[pos] in MUS_SYSTEM:
                emit(0xB0 | ch, MUS_SYSTEM[data[pos]], 0)
            pos += 1
        elif kind == 4:  # controller change (0 = instrument)
            ctrl, value = data[pos], min(data[pos + 1], 127)
            pos += 2
            if ctrl == 0:
                emit(0xC0 | ch, value)
            elif ctrl in MUS_CONTROLLERS:
                emit(0xB0 | ch, MUS_CONTROLLERS[ctrl], value)
        elif kind == 5:  # end of measure: nothing to play
            pass
        elif kind == 6:  # end of score
            break
        else:
            raise ValueError(f"{name}: unknown MUS event {kind} at byte {pos - 1}")
        if byte & 0x80:  # a delay follows
            ticks = 0
            while True:
                b = data[pos]
                pos += 1
                ticks = ticks * 128 + (b & 0x7F)
                if not b & 0x80:
                    break
            delay += ticks
    track.extend(_varlen(delay) + b"\xff\x2f\x00")  # end of track
    tempo = b"\x00\xff\x51\x03" + (500000).to_bytes(3, "big")
    body = tempo + bytes(track)
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, MIDI_DIVISION)
            + b"MTrk" + struct.pack(">I", len(body)) + body)


def wad_music(wad, outdir):
    data = Path(wad).read_bytes()
    if data[:4] not in (b"IWAD", b"PWAD"):
        sys.exit(f"error: {wad}: not a Doom WAD file")
    count, table = struct.unpack_from("<ii", data, 4)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for i in range(count):
        filepos, size, raw = struct.unpack_from("<ii8s", data, table + 16 * i)
        name = raw.rstrip(b"\0").decode("ascii", "replace")
        lump = data[filepos:filepos + size]
        # Doom's music lumps are D_*; they hold MUS or (Freedoom) plain MIDI.
        if not name.upper().startswith("D_"):
            continue
        if lump[:4] == b"MUS\x1a":
            midi = mus_to_midi(lump, f"{wad}:{name}")
        elif lump[:4] == b"MThd":
            midi = lump
        else:
            print(f"skip (not MUS/MIDI): {wad}:{name}", file=sys.stderr)
            continue
        (out / f"{name}.mid").write_bytes(midi)
        written += 1
    print(f"{wad}: {written} music lumps", file=sys.stderr)


# --- raw PCM --------------------------------------------------------------------
def raw_u8(src, dest, rate, channels):
    data = Path(src).read_bytes()
    data = data[:len(data) - len(data) % channels]
    with wave.open(str(dest), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(1)  # WAV's 8-bit samples are unsigned, as these are
        w.setframerate(rate)
        w.writeframes(data)


# --- scores (music21) -------------------------------------------------------------
def score_midi(src, outdir, max_seconds):
    try:
        import music21
    except ImportError as e:
        sys.exit(f"error: {src}: music21 cannot be imported ({e}); set SCORE_PYTHON")
    parsed = music21.converter.parse(src)
    pieces = [parsed]
    if isinstance(parsed, music21.stream.Opus):
        pieces = list(parsed.scores)
        # One title for all: the tunes are the voices of one piece (music21's
        # Josquin ABC files hold a voice per X: tune), played together.
        titles = {p.metadata.title if p.metadata else None for p in pieces}
        if len(pieces) > 1 and len(titles) == 1 and None not in titles:
            pieces = [parsed.mergeScores()]
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for n, piece in enumerate(pieces):
        marks = piece.recurse().getElementsByClass("MetronomeMark")
        bpm = marks[0].getQuarterBPM() if marks else 120.0
        seconds = float(piece.highestTime) * 60.0 / (bpm or 120.0)
        if seconds <= 0:
            continue
        piece.write("midi", fp=str(out / f"{n:04d}.mid"))
        total += seconds
        if total >= max_seconds:
            break
    if total == 0:
        sys.exit(f"error: {src}: no playable piece in this score")


def main(argv):
    if len(argv) >= 3 and argv[0] == "wad-music":
        wad_music(argv[1], argv[2])
    elif len(argv) == 5 and argv[0] == "raw-u8":
        raw_u8(argv[1], argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) == 4 and argv[0] == "score-midi":
        score_midi(argv[1], argv[2], float(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
