"""A small library tagged the way real ones are, for tests of tags, albums and players.

Audio from songspace.synth through real encoders (PyAV); tags written afterwards with mutagen,
in each format's own tag family (ID3, Vorbis comments, MP4 atoms), as a tagger such as Picard
would. `make_tagged_library(folder)` writes it and returns what it wrote (`TAGGED`); `write_tags`
tags any file from the same plain field names. The fixture `tagged_music` (conftest.py) builds
it once per session.

The library:
- "The Ensemble/Great Album": an album artist, four track artists (one track credited to two),
  two discs, track numbers out of file-name order, a MusicBrainz album id, dates, ReplayGain,
  sort names, a cover.jpg in the folder and a picture embedded in one track, lyrics embedded in
  one track and an .lrc file beside another; mixed codecs (FLAC, MP3, Ogg Vorbis, M4A, Opus).
- "Compilations/Summer Hits": a compilation without an album artist, each track by someone
  else, one of them a WAV file with ID3 tags, one with an odd file name.
- "Loose/untagged.mp3": no tags at all.
"""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import mutagen
from mutagen.flac import FLAC, Picture
from mutagen.id3 import (APIC, ID3, RVA2, TALB, TCMP, TCON, TDOR, TDRC, TIT2, TPE1, TPE2, TPOS, TRCK, TSO2, TSOP,
                         TXXX, UFID, USLT)
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm
from mutagen.wave import WAVE

from songspace.synth import STYLES, synth_track, write_audio

ALBUM_MBID = "8f2b3c51-1d8e-4a49-9a0c-0d54f5e0a111"
ARTIST_MBID = "1a2b3c4d-0000-4000-8000-00000000000a"
ALBUMARTIST_MBID = "1a2b3c4d-0000-4000-8000-0000000000ff"


def png_bytes(width: int = 8, height: int = 8, colour=(200, 40, 40)) -> bytes:
    """A small real PNG (zlib only)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(colour) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# A tiny JPEG header is enough for a "cover.jpg" the server sends as it is.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64) + b"\xff\xd9"

# (folder, file name, style, fields): fields use plain names; see write_tags.
GREAT = "The Ensemble/Great Album"
HITS = "Compilations/Summer Hits"
_COMMON_GREAT = {"album": "Great Album", "albumartist": "The Ensemble", "date": "2004-03-02",
                 "originaldate": "1999-05-01", "mb_album_id": ALBUM_MBID, "mb_albumartist_id": ALBUMARTIST_MBID,
                 "albumartistsort": "Ensemble, The", "genre": ["Jazz", "Fusion"], "disctotal": "2",
                 "rg_album_gain": "-7.25 dB", "rg_album_peak": "0.98"}
TRACKS = [
    (GREAT, "01 Opening.flac", "bass_drone",
     {**_COMMON_GREAT, "title": "Opening", "artist": "Composer A", "tracknumber": "1", "tracktotal": "3",
      "discnumber": "1", "mb_artist_id": ARTIST_MBID, "mb_track_id": "aaaaaaaa-0000-4000-8000-000000000001",
      "artistsort": "A, Composer", "rg_track_gain": "-6.54 dB", "rg_track_peak": "0.912345",
      "picture": png_bytes()}),
    (GREAT, "b-second.mp3", "bright_arpeggio",
     {**_COMMON_GREAT, "title": "Second", "artist": "Composer B & Composer C",
      "artists": ["Composer B", "Composer C"], "tracknumber": "2/3", "discnumber": "1/2",
      "lyrics": "la la la\nsecond verse", "rg_track_gain": "-3.00 dB", "rg_track_peak": "0.5"}),
    (GREAT, "a-third.ogg", "noise_beat",
     {**_COMMON_GREAT, "title": "Third", "artist": "Composer C", "tracknumber": "3", "discnumber": "1"}),
    (GREAT, "z first of disc two.m4a", "mid_chords",
     {**_COMMON_GREAT, "title": "Disc Two Opens", "artist": "Composer D", "tracknumber": "1/2", "discnumber": "2/2"}),
    (GREAT, "02 closing.opus", "bass_drone",
     {**_COMMON_GREAT, "title": "Closing", "artist": "Composer A", "tracknumber": "2", "tracktotal": "2",
      "discnumber": "2"}),
    (HITS, "03 - sunny.mp3", "bright_arpeggio",
     {"album": "Summer Hits", "title": "Sunny", "artist": "Band One", "tracknumber": "3", "compilation": "1",
      "date": "2010", "genre": ["Pop"]}),
    (HITS, "01 - Ünïcödé — ‘odd’ name #1 [x].mp3", "noise_beat",
     {"album": "Summer Hits", "title": "Odd One", "artist": "Band Two", "tracknumber": "1", "compilation": "1",
      "date": "2010"}),
    (HITS, "02 - wave.wav", "mid_chords",
     {"album": "Summer Hits", "title": "Wave", "artist": "Band Three", "tracknumber": "2", "compilation": "1",
      "date": "2010"}),
    ("Loose", "untagged.mp3", "noise_beat", {}),
]
LRC_BESIDE = f"{GREAT}/a-third.lrc"
LRC_TEXT = "[00:01.00]third, first line\n[00:03.50]third, second line\n"


def _vorbis(f, fields: dict) -> None:
    names = {"mb_track_id": "MUSICBRAINZ_TRACKID", "mb_album_id": "MUSICBRAINZ_ALBUMID",
             "mb_artist_id": "MUSICBRAINZ_ARTISTID", "mb_albumartist_id": "MUSICBRAINZ_ALBUMARTISTID",
             "rg_track_gain": "REPLAYGAIN_TRACK_GAIN", "rg_track_peak": "REPLAYGAIN_TRACK_PEAK",
             "rg_album_gain": "REPLAYGAIN_ALBUM_GAIN", "rg_album_peak": "REPLAYGAIN_ALBUM_PEAK"}
    if f.tags is None:
        f.add_tags()
    for key, value in fields.items():
        if key == "picture":
            p = Picture()
            p.type, p.mime, p.data = 3, "image/png", value
            if isinstance(f, FLAC):
                f.add_picture(p)
            else:
                f["METADATA_BLOCK_PICTURE"] = [base64.b64encode(p.write()).decode()]
            continue
        f[names.get(key, key.upper())] = value if isinstance(value, list) else [value]


def _id3(tags: ID3, fields: dict) -> None:
    text = {"title": TIT2, "artist": TPE1, "album": TALB, "albumartist": TPE2, "tracknumber": TRCK,
            "discnumber": TPOS, "date": TDRC, "originaldate": TDOR, "compilation": TCMP, "genre": TCON,
            "artistsort": TSOP, "albumartistsort": TSO2}
    txxx = {"artists": "ARTISTS", "mb_album_id": "MusicBrainz Album Id", "mb_artist_id": "MusicBrainz Artist Id",
            "mb_albumartist_id": "MusicBrainz Album Artist Id", "rg_track_gain": "REPLAYGAIN_TRACK_GAIN",
            "rg_track_peak": "REPLAYGAIN_TRACK_PEAK", "rg_album_gain": "REPLAYGAIN_ALBUM_GAIN",
            "rg_album_peak": "REPLAYGAIN_ALBUM_PEAK", "tracktotal": "TRACKTOTAL", "disctotal": "DISCTOTAL"}
    for key, value in fields.items():
        values = value if isinstance(value, list) else [value]
        if key in text:
            tags.add(text[key](encoding=3, text=values))
        elif key in txxx:
            tags.add(TXXX(encoding=3, desc=txxx[key], text=values))
        elif key == "mb_track_id":
            tags.add(UFID(owner="http://musicbrainz.org", data=value.encode()))
        elif key == "lyrics":
            tags.add(USLT(encoding=3, lang="eng", desc="", text=value))
        elif key == "picture":
            tags.add(APIC(encoding=3, mime="image/png", type=3, desc="front", data=value))
        elif key == "rva2":  # (kind, gain, peak)
            tags.add(RVA2(desc=value[0], channel=1, gain=value[1], peak=value[2]))


def _mp4(f: MP4, fields: dict) -> None:
    atoms = {"title": "©nam", "artist": "©ART", "album": "©alb", "albumartist": "aART", "date": "©day",
             "genre": "©gen", "artistsort": "soar", "albumartistsort": "soaa", "lyrics": "©lyr"}
    free = {"mb_album_id": "MusicBrainz Album Id", "mb_artist_id": "MusicBrainz Artist Id",
            "mb_albumartist_id": "MusicBrainz Album Artist Id", "mb_track_id": "MusicBrainz Track Id",
            "rg_track_gain": "replaygain_track_gain", "rg_track_peak": "replaygain_track_peak",
            "rg_album_gain": "replaygain_album_gain", "rg_album_peak": "replaygain_album_peak",
            "originaldate": "originaldate", "artists": "ARTISTS"}
    if f.tags is None:
        f.add_tags()
    for key, value in fields.items():
        values = value if isinstance(value, list) else [value]
        if key in atoms:
            f.tags[atoms[key]] = values
        elif key in free:
            f.tags[f"----:com.apple.iTunes:{free[key]}"] = [MP4FreeForm(v.encode()) for v in values]
        elif key in ("tracknumber", "discnumber"):
            number, _, total = value.partition("/")
            f.tags["trkn" if key == "tracknumber" else "disk"] = [(int(number), int(total or 0))]
        elif key == "compilation":
            f.tags["cpil"] = value == "1"
        elif key == "picture":
            f.tags["covr"] = [MP4Cover(value, imageformat=MP4Cover.FORMAT_PNG)]


def write_tags(path, fields: dict) -> None:
    """Tag `path` in its format's own family from plain names: title, artist, artists, album,
    albumartist, tracknumber ("2/3"), tracktotal, discnumber, disctotal, date, originaldate,
    compilation ("1"), genre (list), mb_*_id, artistsort, albumartistsort, rg_* ("-6.5 dB"),
    lyrics, picture (PNG bytes)."""
    path = Path(path)
    f = mutagen.File(str(path))
    if isinstance(f, MP4):
        _mp4(f, fields)
    elif path.suffix.lower() in (".mp3", ".wav"):
        if isinstance(f, WAVE):
            if f.tags is None:
                f.add_tags()
            _id3(f.tags, fields)
            f.save()
            return
        try:
            tags = ID3(str(path))
        except mutagen.id3.ID3NoHeaderError:
            tags = ID3()
        _id3(tags, fields)
        tags.save(str(path))
        return
    else:
        _vorbis(f, fields)
    f.save()


def write_absurd_flac(path, seconds: float = 3.0) -> Path:
    """A FLAC file whose tags hold what no tagger should write: a title with control characters
    and 5,000 more, 150 artists, track "3/x", disc "1/2/3", year 99999, ReplayGain that is no
    number, a MusicBrainz id that is none, 100,000 characters of lyrics, a 10 MB picture."""
    sr = 22050
    path = write_audio(path, synth_track("bass_drone", seconds, sr=sr), sr)
    f = FLAC(str(path))
    if f.tags is None:
        f.add_tags()
    f["TITLE"] = ["\x00bad\x07title  " + "x" * 5000]
    f["ARTIST"] = [f"artist {i}" for i in range(150)]
    f["TRACKNUMBER"], f["DISCNUMBER"], f["DATE"] = ["3/x"], ["1/2/3"], ["99999"]
    f["GENRE"] = ["; ;Rock;Rock; Pop"]
    f["REPLAYGAIN_TRACK_GAIN"], f["REPLAYGAIN_TRACK_PEAK"] = ["nan dB"], ["1e400"]
    f["REPLAYGAIN_ALBUM_GAIN"] = ["-999 dB"]
    f["MUSICBRAINZ_ALBUMID"], f["COMPILATION"] = ["not-an-id"], ["maybe"]
    f["LYRICS"] = ["line\n" * 20_000]
    p = Picture()
    p.type, p.mime, p.data = 3, "x" * 500, b"\xff\xd8" + bytes(10 * 2**20)  # a 10 MB JPEG, a silly media type
    f.add_picture(p)
    f.save()
    return path


def make_tagged_library(folder, seconds: float = 6.0, sr: int = 22050) -> dict[str, dict]:
    """Write the library into `folder`; {relative path: fields written} (plus the cover and the .lrc)."""
    folder = Path(folder)
    written = {}
    for n, (sub, name, style, fields) in enumerate(TRACKS):
        path = folder / sub / name
        path.parent.mkdir(parents=True, exist_ok=True)
        y = synth_track(style, seconds, sr=sr, seed=100 + n)
        write_audio(path, y, sr)
        if fields:
            write_tags(path, fields)
        written[f"{sub}/{name}"] = fields
    (folder / GREAT / "cover.jpg").write_bytes(JPEG)
    (folder / GREAT / "notes.txt").write_text("not a picture, not lyrics")
    (folder / LRC_BESIDE).write_text(LRC_TEXT)
    assert set(STYLES) >= {t[2] for t in TRACKS}
    return written
