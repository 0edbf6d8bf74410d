"""Subsonic handlers for what an artist or album page shows beyond the tags, and lyrics.

Artist info: no biography or pictures (nothing is fetched from the internet); `similarArtist`
comes from the sound: each artist is the mean of their searchable songs' vectors (their albums'
songs for an album artist), renormalised, and the similar artists are those whose mean sits
closest (cosine), computed once per search snapshot; "Various Artists" and "Unknown artist" are
never offered. Album info: its MusicBrainz id.

Lyrics (OpenSubsonic's `songLyrics` extension, and the old getLyrics): the lyrics embedded in
the file, and the `.lrc` file beside it (tags.beside found it); LRC time tags make synced lines
(`start` in milliseconds), anything else is plain lines. A song of another server (companion
mode, no file here): the lyrics that server gives, its `.lrc`/`.txt` files beside the song
included (remote.py asks it with the secret in the environment, as remote_audio.py relays audio);
where it has none, cannot be asked, or fails, the lyrics embedded in the file when it was indexed.
"""

from __future__ import annotations

import re

import numpy as np

from ..catalog import Track
from ..catalog.search import fold
from ..remote import RemoteError
from ..tags import VARIOUS_ARTISTS
from . import subsonic_library as lib
from .remote_audio import relay_client
from .streaming import inside_folders
from .subsonic_format import MISSING, SubsonicError
from .subsonic_request import MAX_LIST, Ctx, method

MAX_LRC_BYTES = 1 << 20  # an .lrc file larger than this is not lyrics

# ---------------------------------------------------------------------------------------------
# Artists and albums
# ---------------------------------------------------------------------------------------------


def _artist_songs(a: lib.Artist) -> list[Track]:
    return [t for album in a.albums for t in album.songs] or list(a.songs)


def artist_vectors(ctx: Ctx) -> tuple[list[str], np.ndarray]:
    """(artist ids, unit mean vectors) of every artist with a searchable song, once per snapshot."""
    view, searcher = ctx.view, ctx.searcher  # the view first: a snapshot builds one thing at a time

    def build():
        ids, vectors = searcher.all_vectors()
        row = {int(i): r for r, i in enumerate(ids.tolist())}
        names, means = [], []
        for a in view.artists.values():
            rows = [row[t.id] for t in _artist_songs(a) if t.id in row]
            if rows:
                mean = vectors[rows].mean(axis=0)
                names.append(a.id)
                means.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        return names, (np.stack(means).astype(np.float32) if means else np.zeros((0, 1), np.float32))

    return searcher.derived("subsonic artist vectors", build)


def similar_artists(ctx: Ctx, a: lib.Artist, n: int) -> list[lib.Artist]:
    """Up to `n` artists whose music sits closest to `a`'s, closest first (none when `a` has no
    searchable song)."""
    ids, means = artist_vectors(ctx)
    if a.id not in ids or n < 1:
        return []
    scores = means @ means[ids.index(a.id)]
    # "Various Artists" and "Unknown artist" are no one's peers: never offered as similar
    nobody = {lib.artist_id(VARIOUS_ARTISTS), lib.artist_id(lib.UNKNOWN_ARTIST), a.id}
    order = [i for i in np.argsort(-scores, kind="stable").tolist() if ids[i] not in nobody][:n]
    return [ctx.view.artists[ids[i]] for i in order]


def _artist_info(ctx: Ctx, legacy: bool) -> dict:
    item = ctx.params.require("id")
    v = ctx.view
    if item in v.artists:
        a = v.artists[item]
    elif item in v.albums:  # getArtistInfo (folder-style) may name an album directory: its artist
        a = v.albums[item].artist
    else:
        a = v.artists[lib.artist_id(lib.track_artists(ctx.song(item))[0])]  # a song: its (first) artist
    found = similar_artists(ctx, a, ctx.params.int("count", 20, 0, MAX_LIST))
    shape = lib.legacy_artist if legacy else lib.artist
    return {"musicBrainzId": a.mbid, "similarArtist": [shape(x, ctx.marks) for x in found]}


@method("getArtistInfo2")
def get_artist_info2(ctx: Ctx) -> dict:
    return {"artistInfo2": _artist_info(ctx, legacy=False)}


@method("getArtistInfo")
def get_artist_info(ctx: Ctx) -> dict:
    return {"artistInfo": _artist_info(ctx, legacy=True)}


def _album_info(ctx: Ctx) -> dict:
    item = ctx.params.require("id")
    album = ctx.view.albums.get(item) or ctx.view.album_of[ctx.song(item).id]  # an album, or a song's album
    return {"musicBrainzId": album.first("mb_album_id")}


@method("getAlbumInfo")
def get_album_info(ctx: Ctx) -> dict:
    return {"albumInfo": _album_info(ctx)}


@method("getAlbumInfo2")
def get_album_info2(ctx: Ctx) -> dict:
    return {"albumInfo": _album_info(ctx)}


# ---------------------------------------------------------------------------------------------
# Lyrics
# ---------------------------------------------------------------------------------------------

_TIME = re.compile(r"\[(\d{1,3}):(\d{1,2}(?:[.:]\d{1,3})?)\]")
_META = re.compile(r"^\[([a-z#]+):(.*)\]\s*$", re.IGNORECASE)


def parse_lrc(text: str) -> tuple[bool, list[dict]]:
    """(synced, lines) of lyrics text: LRC lines `[mm:ss.xx]words` (several time tags on one line
    repeat it; `[offset:+ms]` shifts them all) become {"start": ms, "value"}, in time order; text
    without time tags is plain lines {"value"}. Metadata tags ([ar:], [ti:], ...) are dropped."""
    timed, plain, offset = [], [], 0
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        stamps = []
        while (m := _TIME.match(line)) is not None:
            seconds = float(m.group(2).replace(":", "."))
            stamps.append(int(round((int(m.group(1)) * 60 + seconds) * 1000)))
            line = line[m.end():]
        if stamps:
            timed += [(start, line.strip()) for start in stamps]
            continue
        meta = _META.match(line)
        if meta:
            if meta.group(1).lower() == "offset":
                try:
                    offset = int(meta.group(2).strip())
                except ValueError:
                    pass
            continue
        plain.append(line)
    if timed:
        # LRC's offset: positive shows lines sooner
        return True, [{"start": max(start - offset, 0), "value": words} for start, words in sorted(timed, key=lambda x: x[0])]
    while plain and not plain[-1]:
        plain.pop()
    while plain and not plain[0]:
        plain.pop(0)
    return False, [{"value": words} for words in plain]


def _lrc_beside(ctx: Ctx, t: Track) -> str | None:
    path = inside_folders(t.lyrics_file, ctx.catalog.folders()) if t.lyrics_file else None
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_LRC_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_LRC_BYTES:
        return None
    return data.decode("utf-8-sig", errors="replace")


def lyrics_of(ctx: Ctx, t: Track) -> list[tuple[bool, list[dict]]]:
    """Every lyrics text of a song (the .lrc beside it first: usually the synced one), parsed;
    for a song of another server, that server's, else those its file held when indexed."""
    if t.remote_id is not None and (theirs := _remote_lyrics(t)):
        return theirs
    found = []
    for text in (_lrc_beside(ctx, t), t.lyrics):
        if text and text.strip():
            synced, lines = parse_lrc(text)
            if lines:
                found.append((synced, lines))
    return found


def _remote_lyrics(t: Track) -> list[tuple[bool, list[dict]]]:
    """The lyrics of `t` on its server: its getLyricsBySongId (OpenSubsonic's songLyrics), else,
    from a server without that call (supysonic), its getLyrics by the song's artist and title.
    Nothing without a secret in the environment, or when the server fails."""
    client = relay_client(t.path)
    if client is None:
        return []
    try:
        try:
            return [found for entry in client.structured_lyrics(t.remote_id) if (found := _structured(entry))]
        except RemoteError as e:
            if e.unreachable:
                raise
        synced, lines = parse_lrc(client.lyrics((t.artist or "").strip() or lib.track_artists(t)[0], t.title))
    except RemoteError:
        return []
    return [(synced, lines)] if lines else []


def _structured(entry: dict) -> tuple[bool, list[dict]] | None:
    """Another server's structuredLyrics entry as (synced, lines), lines of its shape only
    (a "start" in milliseconds when synced); None when no line is left."""
    synced = entry.get("synced") is True
    lines = []
    for line in entry.get("line") if isinstance(entry.get("line"), list) else []:
        value = line.get("value") if isinstance(line, dict) else None
        start = line.get("start") if isinstance(line, dict) else None
        if not isinstance(value, str):
            continue
        if not synced:
            lines.append({"value": value})
        elif isinstance(start, (int, float)) and not isinstance(start, bool) and 0 <= start < 2**31:
            lines.append({"start": int(start), "value": value})
    return (synced, lines) if lines else None


@method("getLyricsBySongId")
def get_lyrics_by_song_id(ctx: Ctx) -> dict:
    t = ctx.song(ctx.params.require("id"))
    artist, title = (t.artist or "").strip() or lib.track_artists(t)[0], t.title or ""
    return {"lyricsList": {"structuredLyrics": [
        {"lang": "xxx", "synced": synced, "line": lines, "displayArtist": artist, "displayTitle": title or None}
        for synced, lines in lyrics_of(ctx, t)]}}


@method("getLyrics")
def get_lyrics(ctx: Ctx) -> dict:
    """The plain text of the first song with lyrics whose artist and title are those asked
    (case and accents ignored); empty lyrics when none is found, as Subsonic answers."""
    artist, title = fold(ctx.params.get("artist")), fold(ctx.params.get("title"))
    if not artist and not title:
        raise SubsonicError(MISSING, "Required parameter is missing: artist or title.")
    for t in ctx.view.songs.values():
        if (not title or fold(t.title) == title) and (not artist or artist in {fold(n) for n in lib.track_artists(t)}
                                                      or fold(t.artist) == artist):
            texts = lyrics_of(ctx, t)
            if texts:
                return {"lyrics": {"artist": (t.artist or "").strip() or None, "title": t.title,
                                   "value": "\n".join(line["value"] for line in texts[0][1])}}
    return {"lyrics": {"artist": ctx.params.get("artist"), "title": ctx.params.get("title"), "value": ""}}
