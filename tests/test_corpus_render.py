"""scripts/corpus_render.py: the training-corpus helpers that turn Doom WAD music
lumps (MUS or MIDI) and XBlast's raw songs into files a renderer can play."""

import importlib.util
import struct
import wave
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "corpus_render.py"
spec = importlib.util.spec_from_file_location("corpus_render", SCRIPT)
corpus_render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(corpus_render)


def mus(events):
    return b"MUS\x1a" + struct.pack("<HHHHHH", len(events), 16, 2, 0, 0, 0) + events


# ch 0: instrument 30; note 60 at volume 100, then 140 ticks; release; 70 ticks;
# ch 15 (percussion): note 36 at the remembered volume; release; end.
MUS_EVENTS = bytes([0x40, 0, 30, 0x90, 0x80 | 60, 100, 0x81, 0x0C,
                    0x80, 60, 70, 0x1F, 36, 0x8F, 36, 10, 0x60])


def midi_events(midi):
    """(absolute tick, status, data bytes) of a format-0 MIDI file's one track."""
    assert midi[:4] == b"MThd"
    fmt, ntracks, division = struct.unpack(">HHH", midi[8:14])
    assert (fmt, ntracks) == (0, 1)
    assert midi[14:18] == b"MTrk"
    length = struct.unpack(">I", midi[18:22])[0]
    data, pos, tick, out = midi[22:22 + length], 0, 0, []
    while pos < len(data):
        delta = 0
        while True:
            b = data[pos]
            pos += 1
            delta = delta * 128 + (b & 0x7F)
            if not b & 0x80:
                break
        tick += delta
        status = data[pos]
        if status == 0xFF:  # meta: type, length, data
            n = data[pos + 2]
            out.append((tick, status, data[pos + 1:pos + 3 + n]))
            pos += 3 + n
        else:
            n = 1 if status & 0xF0 in (0xC0, 0xD0) else 2
            out.append((tick, status, data[pos + 1:pos + 1 + n]))
            pos += 1 + n
    return division, out


def test_mus_to_midi_keeps_notes_timing_and_percussion_channel():
    division, events = midi_events(corpus_render.mus_to_midi(mus(MUS_EVENTS)))
    assert division == 70  # 70 ticks a quarter at 120 bpm = MUS's 140 ticks a second
    notes = [(t, s, bytes(d)) for t, s, d in events if s != 0xFF]
    assert notes == [
        (0, 0xC0, bytes([30])),            # instrument
        (0, 0x90, bytes([60, 100])),       # note on, volume given
        (140, 0x80, bytes([60, 64])),      # released one second later
        (210, 0x99, bytes([36, 127])),     # MUS channel 15 -> MIDI 10, default volume
        (210, 0x89, bytes([36, 64])),
    ]
    assert events[-1][1:] == (0xFF, b"\x2f\x00")  # end of track


def test_wad_music_writes_mus_and_midi_lumps_only(tmp_path):
    midi_lump = corpus_render.mus_to_midi(mus(MUS_EVENTS))
    lumps = [(b"D_RUNNIN", mus(MUS_EVENTS)), (b"D_E1M1", midi_lump),
             (b"DSPISTOL", b"\x03\x00" + bytes(50)), (b"D_BROKEN", b"not music")]
    body, table, pos = b"", b"", 12
    for name, data in lumps:
        table += struct.pack("<ii8s", pos, len(data), name)
        body += data
        pos += len(data)
    wad = tmp_path / "test.wad"
    wad.write_bytes(b"PWAD" + struct.pack("<ii", len(lumps), 12 + len(body)) + body + table)
    corpus_render.wad_music(str(wad), str(tmp_path / "out"))
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["D_E1M1.mid", "D_RUNNIN.mid"]
    assert (tmp_path / "out" / "D_E1M1.mid").read_bytes() == midi_lump
    assert (tmp_path / "out" / "D_RUNNIN.mid").read_bytes() == midi_lump


def test_wad_music_names_a_file_that_is_not_a_wad(tmp_path):
    bad = tmp_path / "music.wad"
    bad.write_bytes(b"RIFF0000")
    with pytest.raises(SystemExit, match="music.wad: not a Doom WAD"):
        corpus_render.wad_music(str(bad), str(tmp_path / "out"))


def test_mus_to_midi_names_a_lump_that_is_not_mus():
    with pytest.raises(ValueError, match="freedoom2.wad:D_X: not a MUS lump"):
        corpus_render.mus_to_midi(b"MThd" + bytes(20), "freedoom2.wad:D_X")


def test_raw_u8_wraps_unsigned_stereo_samples(tmp_path):
    raw = tmp_path / "xbsng1.raw"
    raw.write_bytes(bytes(range(256)) * 4 + b"\x80")  # odd byte: half a frame, dropped
    out = tmp_path / "xbsng1.wav"
    corpus_render.raw_u8(str(raw), str(out), 22050, 2)
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 1, 22050)
        assert w.getnframes() == 512
        assert w.readframes(512) == bytes(range(256)) * 4
