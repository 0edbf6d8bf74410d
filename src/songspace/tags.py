"""What a file says about itself: its tags (mutagen), the pictures and lyrics lying beside it, and
the hash of its audio alone (so a file a tag editor rewrote is known to hold the same sound).

Tags are for finding and browsing (albums, discs, track order, ReplayGain); similarity never
looks at them. Every tag family the indexer meets is read the same way: Vorbis comments (FLAC,
Ogg Vorbis, Opus), ID3 (MP3, WAV, AIFF), MP4 atoms (M4A), APEv2 and ASF (WMA). Whatever a file
holds is stored sanely or not at all, never a crash: numbers out of range ("3/x", year 99999)
are dropped, text is cut at `MAX_TEXT` characters, lists at `MAX_VALUES` values, lyrics at
`MAX_LYRICS`; a picture is described (its type and media type), its bytes stay in the file. A
file whose tags cannot be read is still indexed, just untagged.

`read_tags(path)` gives the catalog's tag fields (`TAG_COLUMNS`); `beside(path)` the folder
image and `.lrc` file next to it; `audio_hash(path)` a hash of the compressed audio packets.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
from pathlib import Path
from typing import BinaryIO

import mutagen

# Bump when the reader learns new fields: the next `index` re-reads every file's tags (the audio
# is not analysed again).
TAGS_VERSION = 1

TAG_NAMES = ("title", "artist", "album", "genre")  # the first four, the ones every export carries
TEXT = ("title", "artist", "album", "genre", "albumartist", "date", "original_date", "mb_track_id", "mb_album_id",
        "mb_artist_id", "mb_albumartist_id", "artist_sort", "albumartist_sort", "title_sort", "album_sort",
        "picture_mime", "folder_image", "lyrics", "lyrics_file")
NUMBERS = ("track", "track_total", "disc", "disc_total", "year", "original_year", "picture_type")
GAINS = ("rg_track_gain", "rg_track_peak", "rg_album_gain", "rg_album_peak")
LISTS = ("artists", "genres")
# Every catalog column filled from here, in the catalog's order (catalog/tracks.py).
TAG_COLUMNS = (*TAG_NAMES, "albumartist", *LISTS, *NUMBERS[:4], "date", "year", "original_date", "original_year",
               "compilation", "mb_track_id", "mb_album_id", "mb_artist_id", "mb_albumartist_id", "artist_sort",
               "albumartist_sort", "title_sort", "album_sort", *GAINS, "picture_type", "picture_mime",
               "folder_image", "lyrics", "lyrics_file")

MAX_TEXT = 1000  # characters of one value
MAX_VALUES = 100  # values of a list (artists, genres)
MAX_LYRICS = 32 * 1024  # characters of embedded lyrics (a song's are a few thousand)
VARIOUS_ARTISTS = "Various Artists"

FOLDER_IMAGE_NAMES = ("cover", "folder", "front")  # in this order of preference
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
FRONT_COVER = 3  # the ID3 / FLAC picture type of a front cover

# ---------------------------------------------------------------------------------------------
# Each tag family's names for the fields read (lower case; ID3's TXXX, MP4's freeform atoms and
# Vorbis comments spell MusicBrainz's and ReplayGain's the way Picard and foobar2000 write them)
# ---------------------------------------------------------------------------------------------

_COMMON = {
    "title": "title", "artist": "artist", "artists": "artists", "album": "album", "albumartist": "albumartist",
    "album artist": "albumartist", "album_artist": "albumartist", "genre": "genre", "tracknumber": "track",
    "track": "track", "tracktotal": "track_total", "totaltracks": "track_total", "discnumber": "disc",
    "disc": "disc", "disctotal": "disc_total", "totaldiscs": "disc_total", "date": "date", "year": "date",
    "originaldate": "original_date", "originalyear": "original_year", "original year": "original_year",
    "compilation": "compilation", "musicbrainz_trackid": "mb_track_id", "musicbrainz track id": "mb_track_id",
    "musicbrainz_albumid": "mb_album_id", "musicbrainz album id": "mb_album_id",
    "musicbrainz_artistid": "mb_artist_id", "musicbrainz artist id": "mb_artist_id",
    "musicbrainz_albumartistid": "mb_albumartist_id", "musicbrainz album artist id": "mb_albumartist_id",
    "artistsort": "artist_sort", "albumartistsort": "albumartist_sort", "titlesort": "title_sort",
    "albumsort": "album_sort", "replaygain_track_gain": "rg_track_gain", "replaygain_track_peak": "rg_track_peak",
    "replaygain_album_gain": "rg_album_gain", "replaygain_album_peak": "rg_album_peak", "lyrics": "lyrics",
    "unsyncedlyrics": "lyrics", "unsynced lyrics": "lyrics",
}
_ID3 = {"TIT2": "title", "TPE1": "artist", "TALB": "album", "TPE2": "albumartist", "TCON": "genre",
        "TRCK": "track", "TPOS": "disc", "TDRC": "date", "TDOR": "original_date", "TCMP": "compilation",
        "TSOP": "artist_sort", "TSO2": "albumartist_sort", "TSOT": "title_sort", "TSOA": "album_sort"}
_MP4 = {"©nam": "title", "©ART": "artist", "aART": "albumartist", "©alb": "album", "©gen": "genre",
        "©day": "date", "soar": "artist_sort", "soaa": "albumartist_sort", "sonm": "title_sort", "soal": "album_sort",
        "©lyr": "lyrics"}
_ASF = {"title": "title", "author": "artist", "wm/albumartist": "albumartist", "wm/albumtitle": "album",
        "wm/genre": "genre", "wm/tracknumber": "track", "wm/partofset": "disc", "wm/year": "date",
        "wm/originalreleaseyear": "original_year", "wm/iscompilation": "compilation", "wm/lyrics": "lyrics",
        "wm/artistsortorder": "artist_sort", "wm/albumartistsortorder": "albumartist_sort",
        "wm/titlesortorder": "title_sort", "wm/albumsortorder": "album_sort", "musicbrainz/track id": "mb_track_id",
        "musicbrainz/album id": "mb_album_id", "musicbrainz/artist id": "mb_artist_id",
        "musicbrainz/album artist id": "mb_albumartist_id"}


def _raw_vorbis_or_ape(tags) -> dict[str, list]:
    raw: dict[str, list] = {}
    for key in tags.keys():
        name = _COMMON.get(str(key).lower())
        if name:
            value = tags[key]
            if getattr(value, "kind", 0) != 0:  # an APEv2 binary or link value: no text
                continue
            raw.setdefault(name, []).extend(value if isinstance(value, list) else list(value) if hasattr(value, "kind")
                                            else [value])
    return raw


def _raw_id3(tags) -> dict[str, list]:
    raw: dict[str, list] = {}
    for frame in tags.values():
        fid = frame.FrameID
        if fid in _ID3:
            values = frame.genres if fid == "TCON" else [str(t) for t in getattr(frame, "text", [])]
            raw.setdefault(_ID3[fid], []).extend(values)
        elif fid == "TXXX" and (name := _COMMON.get(frame.desc.lower())):
            raw.setdefault(name, []).extend(str(t) for t in frame.text)
        elif fid == "UFID" and frame.owner == "http://musicbrainz.org":
            raw.setdefault("mb_track_id", []).append(frame.data.decode("latin-1"))
        elif fid == "USLT":
            raw.setdefault("lyrics", []).append(frame.text)
        elif fid == "RVA2" and frame.channel == 1 and frame.desc.lower() in ("track", "album"):
            kind = frame.desc.lower()
            raw.setdefault(f"rg_{kind}_gain", []).append(str(frame.gain))
            raw.setdefault(f"rg_{kind}_peak", []).append(str(frame.peak))
    return raw


def _raw_mp4(tags) -> dict[str, list]:
    raw: dict[str, list] = {}
    for key, value in tags.items():
        if key in _MP4:
            raw.setdefault(_MP4[key], []).extend(str(v) for v in value)
        elif key in ("trkn", "disk") and value:
            number, total = (tuple(value[0]) + (0, 0))[:2]
            base = "track" if key == "trkn" else "disc"
            raw[base], raw[base + "_total"] = [str(number)], [str(total)] if total else []
        elif key == "cpil":
            raw["compilation"] = ["1" if value else "0"]
        elif key.startswith("----:") and (name := _COMMON.get(key.split(":", 2)[-1].lower())):
            raw.setdefault(name, []).extend(bytes(v).decode("utf-8", "replace") for v in value)
    return raw


def _raw_asf(tags) -> dict[str, list]:
    raw: dict[str, list] = {}
    for key, values in tags.items():
        name = _ASF.get(key.lower()) or _COMMON.get(key.lower())
        if name:
            raw.setdefault(name, []).extend(str(getattr(v, "value", v)) for v in values)
    return raw


def _raw(f) -> dict[str, list]:
    tags = f.tags
    if tags is None:
        return {}
    kind = type(tags).__name__
    if hasattr(tags, "getall"):
        return _raw_id3(tags)
    if kind == "MP4Tags":
        return _raw_mp4(tags)
    if kind == "ASFTags":
        return _raw_asf(tags)
    return _raw_vorbis_or_ape(tags)


# ---------------------------------------------------------------------------------------------
# Values made sane
# ---------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(value, limit: int = MAX_TEXT) -> str | None:
    """Text as stored: control characters out (a NUL splits C strings), outer spaces off, at
    most `limit` characters; None when nothing is left, or for None itself (a field a tag
    reader or a server's JSON leaves out is missing, not the text "None")."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = _CONTROL.sub(" ", str(value)).strip()[:limit].strip()
    return text or None


def _values(raw: dict, name: str) -> list[str]:
    out = []
    for v in raw.get(name, []):
        if (text := clean(v)) and text not in out:
            out.append(text)
        if len(out) >= MAX_VALUES:
            break
    return out


def number_pair(text: str | None, most: int) -> tuple[int | None, int | None]:
    """"3/12" -> (3, 12); "3/x" -> (3, None); "x" -> (None, None). Numbers outside 0..most are dropped."""
    if not text:
        return None, None
    parts = (text.split("/", 1) + [""])[:2]
    found = []
    for p in parts:
        p = p.strip()
        n = int(p) if p.isascii() and p.isdigit() and len(p) <= 6 else None
        found.append(n if n is not None and 0 <= n <= most else None)
    return found[0], found[1]


_DATE = re.compile(r"^\s*(\d{4})(?:[-./](\d{1,2})(?:[-./](\d{1,2}))?)?(?!\d)")


def parse_date(text: str | None) -> tuple[str | None, int | None]:
    """A tag's date as ("YYYY[-MM[-DD]]", year), keeping only what is a real calendar date
    (year 1..9999); (None, None) for anything else ("99999", "soon")."""
    m = _DATE.match(text or "")
    if not m or int(m[1]) < 1:
        return None, None
    year, month, day = int(m[1]), int(m[2] or 0), int(m[3] or 0)
    date = f"{year:04d}"
    if 1 <= month <= 12:
        date += f"-{month:02d}"
        if 1 <= day <= 31:
            date += f"-{day:02d}"
    return date, year


_FLOAT = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?![\d.eE])")  # "1e400": no number


def parse_gain(text: str | None, lo: float, hi: float) -> float | None:
    """"-6.54 dB" -> -6.54; None unless a finite number within lo..hi."""
    m = _FLOAT.match(text or "")
    if not m:
        return None
    x = float(m[1])
    return round(x, 6) if math.isfinite(x) and lo <= x <= hi else None


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _mbid(raw: dict, name: str) -> str | None:
    """The first value shaped like a MusicBrainz id (several artists: the first artist's)."""
    for v in _values(raw, name):
        first = v.split(";")[0].split("/")[0].strip()
        if _UUID.match(first):
            return first.lower()
    return None


def _truthy(raw: dict, name: str) -> bool:
    return any(v.strip().lower() in ("1", "true", "yes") for v in _values(raw, name))


def _lyrics(raw: dict) -> str | None:
    for v in raw.get("lyrics", []):
        text = str(v).replace("\r\n", "\n")
        if len(text) > MAX_LYRICS:
            text = text[:MAX_LYRICS].rsplit("\n", 1)[0]  # absurdly long: cut at a line end
        text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text).strip()
        if text:
            return text
    return None


# ---------------------------------------------------------------------------------------------
# Embedded pictures: described in the catalog, read from the file when asked
# ---------------------------------------------------------------------------------------------


def _sniff(data: bytes, mime: str | None) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    mime = clean(mime, 64) or ""
    return mime if mime.startswith("image/") else "image/jpeg"


def _pictures(f) -> list[tuple[int, object]]:
    """[(picture type, object with .data and .mime)] of what the file embeds, in file order."""
    out = []
    for p in getattr(f, "pictures", None) or []:  # FLAC
        out.append((p.type, p))
    tags = f.tags
    if tags is None:
        return out
    if hasattr(tags, "getall"):  # ID3
        out += [(frame.type, frame) for frame in tags.getall("APIC") if frame.mime != "-->"]  # "-->": a URL only
        return out
    kind = type(tags).__name__
    try:
        if kind == "MP4Tags":
            out += [(FRONT_COVER, _Picture(bytes(c), None)) for c in tags.get("covr", [])]
        elif hasattr(tags, "get"):
            from mutagen.flac import Picture

            for block in tags.get("metadata_block_picture", []) or []:  # Ogg Vorbis / Opus
                p = Picture(base64.b64decode(block))
                out.append((p.type, p))
            for key in ("Cover Art (Front)", "Cover Art (Other)"):  # APEv2: "name\0bytes"
                value = tags.get(key) if kind == "APEv2" else None
                if value is not None:
                    out.append((FRONT_COVER if "Front" in key else 0, _Picture(bytes(value.value).split(b"\0", 1)[-1], None)))
    except Exception:  # a damaged picture block: the others stand
        pass
    return out


class _Picture:
    def __init__(self, data: bytes, mime: str | None):
        self.data, self.mime = data, mime


def _choose(pictures: list) -> tuple[int, object] | None:
    """The front cover, else the first picture."""
    return next((p for p in pictures if p[0] == FRONT_COVER), pictures[0] if pictures else None)


def embedded_picture(path: str | Path) -> tuple[bytes, str] | None:
    """(bytes, media type) of the picture the catalog describes for this file: its front
    cover, else its first picture; None when it embeds none."""
    try:
        f = mutagen.File(str(path))
        chosen = _choose(_pictures(f)) if f is not None else None
    except Exception:  # mutagen raises many types on odd files; a picture is optional
        return None
    if chosen is None or not chosen[1].data:
        return None
    return bytes(chosen[1].data), _sniff(chosen[1].data, chosen[1].mime)


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def read_tags(path: str | Path | BinaryIO) -> dict:
    """The file's tags as the catalog stores them (keys of `TAG_COLUMNS`, absent when the file
    says nothing), and "tags_version". Never raises for a bad file. `path` may also be a seekable
    binary file already open (read from its start): the indexer reads each file through one open
    (analysis.py)."""
    empty = {"tags_version": TAGS_VERSION}
    try:
        if hasattr(path, "read"):
            path.seek(0)
            f = mutagen.File(path)
        else:
            f = mutagen.File(str(path))
        raw = _raw(f) if f is not None else {}
        pictures = _pictures(f) if f is not None else []
    except Exception:  # mutagen raises many types on odd files; tags are optional
        return empty
    artists = _values(raw, "artists") or _values(raw, "artist")
    artist = "; ".join(_values(raw, "artist"))[:MAX_TEXT] or None
    genres = [g for v in _values(raw, "genre") for g in (clean(x) for x in v.split(";")) if g][:MAX_VALUES]
    genres = list(dict.fromkeys(genres))
    track, track_total = number_pair(next(iter(_values(raw, "track")), None), 99999)
    disc, disc_total = number_pair(next(iter(_values(raw, "disc")), None), 999)
    date, year = parse_date(next(iter(_values(raw, "date")), None))
    original_date, original_year = parse_date(next(iter(_values(raw, "original_date") or _values(raw, "original_year")), None))
    chosen = _choose(pictures)
    tags = {
        "title": next(iter(_values(raw, "title")), None), "artist": artist,
        "album": next(iter(_values(raw, "album")), None), "genre": genres[0] if genres else None,
        "albumartist": "; ".join(_values(raw, "albumartist"))[:MAX_TEXT] or None,
        "artists": artists or None, "genres": genres or None,
        "track": track, "disc": disc,
        "track_total": track_total or number_pair(next(iter(_values(raw, "track_total")), None), 99999)[0],
        "disc_total": disc_total or number_pair(next(iter(_values(raw, "disc_total")), None), 999)[0],
        "date": date, "year": year, "original_date": original_date, "original_year": original_year,
        "compilation": _truthy(raw, "compilation"),
        **{name: _mbid(raw, name) for name in ("mb_track_id", "mb_album_id", "mb_artist_id", "mb_albumartist_id")},
        **{name: next(iter(_values(raw, name)), None)
           for name in ("artist_sort", "albumartist_sort", "title_sort", "album_sort")},
        **{name: parse_gain(next(iter(_values(raw, name)), None), *((-100, 100) if "gain" in name else (0, 100)))
           for name in GAINS},
        "picture_type": chosen[0] if chosen and isinstance(chosen[0], int) and 0 <= chosen[0] <= 255 else None,
        "picture_mime": _sniff(bytes(chosen[1].data[:16]), chosen[1].mime) if chosen else None,
        "lyrics": _lyrics(raw),
    }
    if chosen is not None and tags["picture_type"] is None:
        tags["picture_type"] = 0  # "other": present, of no known type
    return {**{k: v for k, v in tags.items() if v is not None and v is not False}, **empty,
            "compilation": tags["compilation"]}


def is_beside_name(name: str) -> bool:
    """Whether `beside` may use a file of this name (a picture, an .lrc): what a scan keeps of a
    folder's other files, so that no folder is listed twice."""
    ext = os.path.splitext(name)[1].lower()
    return ext in IMAGE_EXTENSIONS or ext == ".lrc"


def beside(path: str | Path, listing: list[str] | None = None) -> dict:
    """What lies next to the file: "folder_image" (the folder's cover.*, folder.* or front.*
    picture) and "lyrics_file" (a .lrc file of the same name); both paths, None when absent.
    `listing`: the folder's file names, when the caller already has them (one listing per folder)."""
    folder, name = os.path.split(str(path))
    if listing is None:
        try:
            listing = os.listdir(folder or ".")
        except OSError:
            listing = []
    stem = os.path.splitext(name)[0]
    image, best = None, None
    lrc = None
    for entry in listing:
        base, ext = os.path.splitext(entry)
        lower = ext.lower()
        if lower in IMAGE_EXTENSIONS and base.lower() in FOLDER_IMAGE_NAMES:
            rank = (FOLDER_IMAGE_NAMES.index(base.lower()), IMAGE_EXTENSIONS.index(lower), entry)
            if best is None or rank < best:
                image, best = os.path.join(folder, entry), rank
        elif lower == ".lrc" and base == stem:
            lrc = os.path.join(folder, entry)
    return {"folder_image": image, "lyrics_file": lrc}


def audio_hash(path: str | Path | BinaryIO) -> str | None:
    """A hash of the file's compressed audio packets, without its tags: a tag editor that
    rewrites the file leaves it as it was, so the audio need not be analysed again. Demuxing
    only (nothing is decoded): measured at 10-25% of the time decoding takes for 3-minute
    files, the price of never embedding a retagged file again. None when the file cannot be
    read so (the file is then analysed as new)."""
    import av  # PyAV: imported here, so importing the catalog (which imports this) stays light

    h = hashlib.blake2b(digest_size=16)
    try:
        if hasattr(path, "read"):  # a file already open (analysis.py's one read): from its start
            path.seek(0)
        with av.open(path if hasattr(path, "read") else str(path)) as container:
            if not container.streams.audio:
                return None
            for packet in container.demux(container.streams.audio[0]):
                if packet.size:
                    h.update(packet)  # the packet's buffer, not a copy
    except Exception:  # any FFmpeg or OS error: the caller analyses the file as new
        return None
    return h.hexdigest()
