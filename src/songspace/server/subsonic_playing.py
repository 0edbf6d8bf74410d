"""Subsonic handlers for listening: streaming and scrobbles, playlists, stars, and what sounds
alike (getSimilarSongs(2), getTopSongs, the sonicSimilarity extension)."""


from __future__ import annotations

import secrets
import time
from pathlib import Path
from urllib.parse import quote

from fastapi import HTTPException
from fastapi.responses import Response

from ..catalog import Track
from . import remote_audio
from . import subsonic_library as lib
from .streaming import audio_response, inside_folders, stream_response
from .subsonic_format import (
    GENERIC,
    MISSING,
    NOT_FOUND,
    SubsonicError,
)
from .subsonic_request import LATEST_PLAY_MS, MAX_LIST, Ctx, method
from .subsonic_user import now_playing

COPIES_SLACK = 10  # radio asked for this many more songs, as copies of a seed or of each other are dropped

# ---------------------------------------------------------------------------------------------
# Playing
# ---------------------------------------------------------------------------------------------


def _remote(ctx: Ctx, download: bool) -> Response | None:
    """Companion mode: a song of another server, played from there (remote_audio.py); None for a
    local file. `stream`'s format, bit rate and offset (or the user's defaults) go with it."""
    t = ctx.song(ctx.params.require("id"))
    if t.remote_id is None:
        return None
    if not download:
        _offset(ctx, t)  # one past the end is refused here, not relayed
    if not download and ctx.request.method == "GET" and ctx.request.headers.get("range", "bytes=0-").strip().startswith("bytes=0-"):
        now_playing(ctx).started(ctx.user, ctx.params.get("c") or "", t.id)  # a play starts, as in `stream`
    defaults = ctx.stream_defaults
    asked = {"format": ctx.params.get("format") or defaults.format,
             "maxBitRate": ctx.params.get("maxBitRate") or (str(defaults.max_bit_rate) if defaults.max_bit_rate else None),
             "timeOffset": ctx.params.get("timeOffset")}
    try:
        return remote_audio.response(t, ctx.request.headers.get("range"), download=download,
                                     params=[(k, v) for k, v in asked.items() if v and not download])
    except HTTPException as e:
        raise SubsonicError(NOT_FOUND if e.status_code == 404 else GENERIC, f"{e.detail}.") from None


def _song_file(ctx: Ctx) -> tuple[Track, Path]:
    t = ctx.song(ctx.params.require("id"))
    path = inside_folders(t.path, ctx.catalog.folders())
    if path is None:
        raise SubsonicError(NOT_FOUND, f"The file of song {t.id} is missing or outside the library's folders.")
    return t, path


# -- transcoding hook (server/transcode.py decides: the original bytes unless the request or the
# user's defaults ask for a format, bit rate or offset the file does not fit) -------------------
@method("stream")
def stream(ctx: Ctx) -> Response:
    if (remote := _remote(ctx, download=False)) is not None:
        return remote
    t, path = _song_file(ctx)
    offset = _offset(ctx, t)
    if ctx.request.method == "GET" and ctx.request.headers.get("range", "bytes=0-").strip().startswith("bytes=0-"):
        now_playing(ctx).started(ctx.user, ctx.params.get("c") or "", t.id)  # a play starts (not a seek)
    return stream_response(path, t.size, t.duration, ctx.request.headers.get("range"), ctx.params.get("format"),
                           ctx.params.int("maxBitRate", 0, 0, 100_000), offset, ctx.stream_defaults,
                           head=ctx.request.method == "HEAD")


def _offset(ctx: Ctx, t: Track) -> float:
    """`stream`'s timeOffset in seconds. The specification says nothing of an offset past the
    end; an empty 200 would look to a player like a song that played in no time, so it is
    refused as a bad parameter, naming the song's length."""
    text = ctx.params.get("timeOffset") or "0"
    try:
        offset = float(text)
    except ValueError:
        raise SubsonicError(GENERIC, "timeOffset must be a number of seconds.") from None
    if t.duration and offset >= t.duration:
        raise SubsonicError(GENERIC, f"timeOffset {text[:20]} is past the end of song {t.id}, "
                                     f"which lasts {t.duration:.1f} s.")
    return offset


@method("download")
def download(ctx: Ctx) -> Response:
    """The original file, always (never transcoded), named as it is on disk."""
    if (remote := _remote(ctx, download=True)) is not None:
        return remote
    t, path = _song_file(ctx)
    response = audio_response(path, ctx.request.headers.get("range"))
    response.headers["Content-Disposition"] = attachment(Path(t.path).name)
    return response


def attachment(name: str) -> str:
    """A Content-Disposition naming the file: RFC 6266's UTF-8 name, and a plain ASCII one for
    clients that read only that."""
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


@method("scrobble")
def scrobble(ctx: Ctx) -> dict:
    """Plays are recorded when submitted (submission=true, the default); a "now playing"
    notice (submission=false) is accepted and not recorded."""
    ids = ctx.params.getlist("id")
    if not ids:
        raise SubsonicError(MISSING, "Required parameter is missing: id.")
    tracks = [ctx.song(i) for i in ids]
    times = ctx.params.getlist("time")
    if not ctx.params.bool("submission", True):
        now_playing(ctx).started(ctx.user, ctx.params.get("c") or "", tracks[-1].id)
    else:
        when = []
        for n, t in enumerate(tracks):
            try:
                ms = int(times[n]) if n < len(times) else int(time.time() * 1000)
            except ValueError:
                ms = -1
            if not 0 <= ms <= LATEST_PLAY_MS:  # 1e20 stored once made every song listing fail
                raise SubsonicError(GENERIC, f"time must be milliseconds since 1970 (up to the year 9999), "
                                             f"not {times[n][:40]!r}.")
            when.append((t.id, ms / 1000))
        with ctx.writer() as w:
            w.add_plays(ctx.user, when)
    return {}


# ---------------------------------------------------------------------------------------------
# Playlists and stars
# ---------------------------------------------------------------------------------------------


def _playlist(ctx: Ctx, p: dict, entries: bool = False) -> dict:
    songs = [ctx.view.songs[i] for i in p["track_ids"] if i in ctx.view.songs]
    body = {"id": f"pl-{p['id']}", "name": p["name"], "comment": p["comment"], "owner": p["owner"],
            "public": p["public"], "songCount": len(songs), "duration": int(round(sum(t.duration or 0 for t in songs))),
            "created": lib.iso(p["created"]), "changed": lib.iso(p["changed"]), "coverArt": f"pl-{p['id']}"}
    if entries:
        body["entry"] = ctx.children(songs)
    return body


@method("getPlaylists")
def get_playlists(ctx: Ctx) -> dict:
    mine = [p for p in ctx.catalog.playlists() if p["public"] or p["owner"] == ctx.user]
    return {"playlists": {"playlist": [_playlist(ctx, p) for p in mine]}}


@method("getPlaylist")
def get_playlist(ctx: Ctx) -> dict:
    return {"playlist": _playlist(ctx, ctx.playlist(ctx.params.require("id")), entries=True)}


@method("createPlaylist")
def create_playlist(ctx: Ctx) -> dict:
    """A new playlist (name), or one replaced (playlistId): its songs are the songId values."""
    tracks = [ctx.song(i).id for i in ctx.params.getlist("songId")]
    playlist_id = ctx.params.get("playlistId")
    with ctx.writer() as w:
        if playlist_id:
            p = ctx.playlist(playlist_id, mine=True)
            number = w.save_playlist(p["id"], ctx.user, ctx.params.get("name") or p["name"], tracks, p["comment"], p["public"])
        else:
            number = w.save_playlist(None, ctx.user, ctx.params.require("name"), tracks)
    return {"playlist": _playlist(ctx, ctx.catalog.playlist(number), entries=True)}


@method("updatePlaylist")
def update_playlist(ctx: Ctx) -> dict:
    p = ctx.playlist(ctx.params.require("playlistId"), mine=True)
    tracks = list(p["track_ids"])
    try:
        remove = {int(i) for i in ctx.params.getlist("songIndexToRemove")}
    except ValueError:
        raise SubsonicError(GENERIC, "songIndexToRemove must be positions in the playlist (0, 1, ...).") from None
    tracks = [t for n, t in enumerate(tracks) if n not in remove]
    tracks += [ctx.song(i).id for i in ctx.params.getlist("songIdToAdd")]
    with ctx.writer() as w:
        w.save_playlist(p["id"], ctx.user, ctx.params.get("name") or p["name"], tracks,
                        ctx.params.get("comment", p["comment"]), ctx.params.bool("public", p["public"]))
    return {}


@method("deletePlaylist")
def delete_playlist(ctx: Ctx) -> dict:
    p = ctx.playlist(ctx.params.require("id"), mine=True)
    with ctx.writer() as w:
        w.delete_playlist(p["id"])
    return {}


def _starred_items(ctx: Ctx) -> list[str]:
    v = ctx.view
    items = []
    for i in ctx.params.getlist("id"):
        if i not in v.albums and i not in v.artists and i not in v.dirs:
            ctx.song(i)  # 70 unless a song
        items.append(i)
    items += [ctx.album(i).id for i in ctx.params.getlist("albumId")]
    items += [ctx.artist(i).id for i in ctx.params.getlist("artistId")]
    if not items:
        raise SubsonicError(MISSING, "Required parameter is missing: id, albumId or artistId.")
    return items


@method("star")
def star(ctx: Ctx) -> dict:
    items = _starred_items(ctx)
    albums = ctx.view.albums
    songs = {i: albums[i].songs[0].id for i in items if i in albums and albums[i].songs}  # for the star to follow
    with ctx.writer() as w:
        w.star(ctx.user, items, songs=songs)
    return {}


@method("unstar")
def unstar(ctx: Ctx) -> dict:
    items = _starred_items(ctx)
    with ctx.writer() as w:
        w.star(ctx.user, items, starred=False)
    return {}


def _starred(ctx: Ctx, legacy: bool = False) -> dict:
    v, stars = ctx.view, ctx.marks.stars
    artist, album = (lib.legacy_artist, lib.album_dir) if legacy else (lib.artist, lib.album)
    return {"artist": [artist(a, ctx.marks) for i, a in v.artists.items() if i in stars],
            "album": [album(a, ctx.marks) for i, a in v.albums.items() if i in stars],
            "song": ctx.children(t for t in v.songs.values() if str(t.id) in stars)}


@method("getStarred2")
def get_starred2(ctx: Ctx) -> dict:
    return {"starred2": _starred(ctx)}


@method("getStarred")
def get_starred(ctx: Ctx) -> dict:
    """getStarred2's answer in the folder-style shapes (albums as directories: isDir, title)."""
    return {"starred": _starred(ctx, legacy=True)}


# ---------------------------------------------------------------------------------------------
# Similarity: from the sound
# ---------------------------------------------------------------------------------------------


def _count(ctx: Ctx, name: str, default: int, least: int = 1) -> int:
    """The count asked for, at most what the library can give."""
    return min(ctx.params.int(name, default, least, MAX_LIST), len(ctx.searcher))


def _similar_songs(ctx: Ctx) -> list[Track]:
    """Radio from the sound, seeded by a song, or by the songs of an album or an artist."""
    from ..recommend.radio import radio
    from ..recommend.similar import without_copies

    item = ctx.params.require("id")
    searchable = set(ctx.searcher.ids().tolist())
    seeds = [t.id for t in ctx.songs_of(item) if t.id in searchable]
    if not seeds:
        raise SubsonicError(NOT_FOUND, f"Nothing in {item!r} can be searched yet (not analysed by the current model).")
    seeds = seeds[:: max(1, len(seeds) // 20)][:20]  # a big artist: an even sample of their songs
    wanted = ctx.params.int("count", 50, 1, MAX_LIST)
    n = min(wanted + COPIES_SLACK, len(ctx.searcher) - len(seeds))
    if n < 1:
        return []
    found = [m.track for m in radio(ctx.searcher, seeds, n=n, seed=secrets.randbelow(2**31))]
    return without_copies(ctx.searcher, seeds, found)[:wanted]  # as the page does: no recording twice


@method("getSimilarSongs")
def get_similar_songs(ctx: Ctx) -> dict:
    return {"similarSongs": {"song": ctx.children(_similar_songs(ctx))}}


@method("getSimilarSongs2")
def get_similar_songs2(ctx: Ctx) -> dict:
    return {"similarSongs2": {"song": ctx.children(_similar_songs(ctx))}}


@method("getTopSongs")
def get_top_songs(ctx: Ctx) -> dict:
    """An artist's most played songs here (scrobbles), then the rest in album order."""
    name = ctx.params.require("artist").strip().casefold()
    artist = next((a for a in ctx.view.artists.values() if a.name.casefold() == name), None)
    songs = ([t for a in artist.albums for t in a.songs] or list(artist.songs)) if artist else []
    plays = ctx.marks.plays
    songs.sort(key=lambda t: -plays.get(t.id, (0, 0))[0])  # stable: album order among equals
    return {"topSongs": {"song": ctx.children(songs[: ctx.params.int("count", 50, 0, MAX_LIST)])}}


@method("getSonicSimilarTracks")
def get_sonic_similar_tracks(ctx: Ctx) -> dict:
    from ..recommend.similar import similar

    track = ctx.song(ctx.params.require("id"))
    found = similar(ctx.searcher, track, k=max(_count(ctx, "count", 10), 1))  # copies folded into one entry
    return {"sonicMatch": [ctx.sonic_match(s.track, s.score) for s in found
                           if s.track.id in ctx.view.songs and not s.copy_of_query]}  # the seed again: left out


@method("findSonicPath")
def find_sonic_path(ctx: Ctx) -> dict:
    from ..recommend.path import journey

    start = ctx.song(ctx.params.require("startSongId"))
    end = ctx.song(ctx.params.require("endSongId"))
    trip = journey(ctx.searcher, start, end, n=max(_count(ctx, "count", 25, least=2), 2))
    va = ctx.searcher.vectors([start.id])[0]
    similarity = ctx.searcher.vectors([t.id for t in trip.tracks]) @ va
    return {"sonicMatch": [ctx.sonic_match(t, s) for t, s in zip(trip.tracks, similarity)]}
