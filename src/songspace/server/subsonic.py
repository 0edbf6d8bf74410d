"""The OpenSubsonic API under /rest/: any Subsonic player (Symfonium, Feishin, DSub, Substreamer,
Tempo, Amperfy, ...) browses and plays the library, and its "Instant Mix" comes from the sound.

Every method answers at /rest/NAME and /rest/NAME.view, to GET and POST (parameters in the query
string, a form-encoded body, or both); XML by default, JSON with f=json (subsonic_format.py).
Every request names a user (subsonic_auth.py): the app's own token guard lets /rest/ through to
that check. Credentials in the query string are checked before a form body is read, and a body
is read only up to a small size until they are (limits.py). Failures are Subsonic errors in the envelope, never a 500: 10 a required parameter
is missing, 40 wrong credentials, 50 not yours to change, 70 not found (an unknown id, an id of
another kind, a path), 0 anything else. Ids: subsonic_library.py.

No transcoding: `stream` and `download` send the original file (with byte ranges), whatever
`format` or `maxBitRate` ask for. Similarity: getSimilarSongs(2) is `songspace radio` seeded by a
song, an album or an artist; the sonicSimilarity extension's getSonicSimilarTracks is
`songspace similar` and findSonicPath is `songspace path`; their `similarity` is the cosine
similarity (to the query song, or to the start of the path) clipped to 0..1.
"""

from __future__ import annotations

import logging
import mimetypes
import random
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from ..catalog import Catalog, Track
from ..errors import QueryError, SongspaceError
from ..query import Searcher
from ..tags import embedded_picture
from . import subsonic_library as lib
from .coverart import placeholder_png
from .limits import lower_body_limit
from .streaming import audio_response, inside_folders
from .public import without_paths
from .subsonic_auth import authenticate
from .subsonic_format import GENERIC, MISSING, NOT_AUTHORIZED, NOT_FOUND, WRONG_CREDENTIALS, SubsonicError, error, render
from .throttle import client_address

log = logging.getLogger("songspace")
router = APIRouter(prefix="/rest", include_in_schema=False)

EXTENSIONS = [{"name": "sonicSimilarity", "versions": [1]}, {"name": "formPost", "versions": [1]},
              {"name": "apiKeyAuthentication", "versions": [1]}]
MAX_LIST = 500  # albums, random songs: what Subsonic allows per page
MAX_SEARCH = 10_000  # search3 pages (an empty query syncs the whole library page by page)
_writes = threading.Lock()  # one writer connection, one write at a time
LATEST_PLAY_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time ISO 8601 can write


# ---------------------------------------------------------------------------------------------
# A request: its parameters, its user, and what it reads
# ---------------------------------------------------------------------------------------------


class Params:
    """The request's parameters, from the query string and a form body, each name possibly repeated."""

    def __init__(self, items: list[tuple[str, str]]):
        self.items = items

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.items if k == name), default)

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self.items if k == name]

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise SubsonicError(MISSING, f"Required parameter is missing: {name}.")
        return value

    def int(self, name: str, default: int, lo: int = 0, hi: int = 2**31) -> int:
        value = self.get(name)
        if value is None or value == "":
            return default
        try:
            n = int(value)
        except ValueError:
            raise SubsonicError(GENERIC, f"Parameter {name} must be a whole number, not {value!r}.") from None
        return min(max(n, lo), hi)

    def bool(self, name: str, default: bool) -> bool:
        value = self.get(name)
        return default if value is None else value.strip().lower() in ("true", "1", "yes")


@dataclass
class Ctx:
    request: Request
    params: Params
    searcher: Searcher
    user: str = ""

    @property
    def catalog(self) -> Catalog:
        return self.searcher.catalog

    @cached_property
    def view(self) -> lib.View:
        return lib.view(self.searcher)

    @cached_property
    def marks(self) -> lib.Marks:
        return lib.Marks(self.catalog.stars(self.user), self.catalog.play_counts())

    @contextmanager
    def writer(self):
        """The app's one writer connection (the Library's: no other route writes through it), one
        write at a time; the read-only connections of the queries see the change at once."""
        with _writes:
            yield self.request.app.state.library.catalog

    # -- ids: anything unknown, of another kind, or path-like is "not found" (70) --------------

    def song(self, song_id: str) -> Track:
        track = self.view.songs.get(int(song_id)) if song_id.isascii() and song_id.isdecimal() and len(song_id) < 19 else None
        if track is None:
            raise SubsonicError(NOT_FOUND, f"Song not found: {song_id!r}.")
        return track

    def album(self, album_id: str) -> lib.Album:
        found = self.view.albums.get(album_id)
        if found is None:
            raise SubsonicError(NOT_FOUND, f"Album not found: {album_id!r}.")
        return found

    def artist(self, artist_id: str) -> lib.Artist:
        found = self.view.artists.get(artist_id)
        if found is None:
            raise SubsonicError(NOT_FOUND, f"Artist not found: {artist_id!r}.")
        return found

    def playlist(self, playlist_id: str, mine: bool = False) -> dict:
        number = playlist_id.removeprefix("pl-")
        found = self.catalog.playlist(int(number)) if playlist_id.startswith("pl-") and number.isdecimal() else None
        if found is None or not (found["public"] or found["owner"] == self.user):
            raise SubsonicError(NOT_FOUND, f"Playlist not found: {playlist_id!r}.")
        if mine and found["owner"] != self.user:
            raise SubsonicError(NOT_AUTHORIZED, f"Playlist {playlist_id} belongs to {found['owner']}.")
        return found

    def songs_of(self, item_id: str) -> list[Track]:
        """The songs an id stands for: a song, an album, an artist, a directory, a playlist."""
        v = self.view
        if item_id in v.albums:
            return list(v.albums[item_id].songs)
        if item_id in v.artists:
            artist = v.artists[item_id]
            return [t for a in artist.albums for t in a.songs] or list(artist.songs)
        if item_id in v.dirs:
            return list(v.dirs[item_id].songs) or [t for d in v.dirs[item_id].dirs for t in d.songs]
        if item_id.startswith("pl-"):
            return [v.songs[i] for i in self.playlist(item_id)["track_ids"] if i in v.songs]
        return [self.song(item_id)]

    # -- shapes -----------------------------------------------------------------------------------

    def child(self, t: Track) -> dict:
        return lib.song(self.view, t, self.marks)

    def children(self, tracks) -> list[dict]:
        return [self.child(t) for t in tracks]

    def sonic_match(self, t: Track, similarity: float) -> dict:
        return {"entry": self.child(t), "similarity": round(min(max(float(similarity), 0.0), 1.0), 4)}


Handler = Callable[[Ctx], "dict | Response"]
HANDLERS: dict[str, Handler] = {}


def method(*names: str):
    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn
    return register


# A form body is read only up to these sizes: a little while the caller is unknown (the formPost
# extension lets credentials travel in the body), more once the query string's credentials are
# right (a playlist of thousands of songs). Nothing else is read before the credentials are.
ANONYMOUS_BODY = 64 * 1024
USER_BODY = 4 * 2**20


def _has_credentials(params: Params) -> bool:
    return bool(params.get("apiKey") or params.get("u") and (params.get("p") is not None
                                                             or (params.get("t") and params.get("s"))))


def _sign_in(request: Request, params: Params, catalog: Catalog) -> str:
    """The user `params` prove to be (subsonic_auth.py), throttled per client: after repeated
    wrong credentials an address gets error 40 without its credentials being looked at."""
    state, client = request.app.state, client_address(request)
    wait = state.throttle.wait(client)
    if wait:
        raise SubsonicError(WRONG_CREDENTIALS, f"Too many wrong credentials from this address: try again in {wait} s.")
    try:
        user = authenticate(params, catalog, state.salts, client)
    except SubsonicError as e:
        if e.code not in (MISSING,):
            state.throttle.failed(client)
        raise
    state.throttle.succeeded(client)
    return user


async def _params(request: Request, proven: bool = False) -> Params:
    items = list(request.query_params.multi_items())
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        lower_body_limit(request, USER_BODY if proven else ANONYMOUS_BODY)
        form = await request.form()
        items += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return Params(items)


def _answer(ctx: Ctx, handler: Handler) -> Response:
    fmt = ctx.params.get("f")
    try:
        if not ctx.user:  # not proven by the query string already
            ctx.user = _sign_in(ctx.request, ctx.params, ctx.catalog)
        result = handler(ctx)
        return result if isinstance(result, Response) else render(result, fmt)
    except SubsonicError as e:
        return error(e, fmt)
    except QueryError as e:  # not indexed, not searchable by the current model
        return error(SubsonicError(NOT_FOUND, without_paths(str(e))), fmt)
    except SongspaceError as e:
        return error(SubsonicError(GENERIC, without_paths(str(e))), fmt)


@router.api_route("/{name}", methods=["GET", "POST"])
async def dispatch(name: str, request: Request) -> Response:
    query = Params(list(request.query_params.multi_items()))
    user = ""
    if _has_credentials(query):  # credentials in the URL: checked before any body is read
        try:
            # The catalog of the thread that asks: each thread reads through its own connection.
            user = await run_in_threadpool(lambda: _sign_in(request, query, request.app.state.searcher.catalog))
        except SubsonicError as e:
            return error(e, query.get("f"))
    params = await _params(request, proven=bool(user))
    handler = HANDLERS.get(name.removesuffix(".view"))
    if handler is None:
        return error(SubsonicError(GENERIC, f"Unknown method: {name!r}."), params.get("f"))
    ctx = Ctx(request, params, request.app.state.searcher, user)
    try:
        return await run_in_threadpool(_answer, ctx, handler)
    except Exception as e:  # a bug: logged with its traceback, answered as a Subsonic error, never a 500
        if getattr(e, "status_code", None):  # an HTTPException (a range outside the file): as it is
            raise
        log.exception("songspace: /rest/%s failed", name)
        return error(SubsonicError(GENERIC, f"Internal error: {type(e).__name__}."), params.get("f"))


# ---------------------------------------------------------------------------------------------
# System
# ---------------------------------------------------------------------------------------------


@method("ping")
def ping(ctx: Ctx) -> dict:
    return {}


@method("getLicense")
def get_license(ctx: Ctx) -> dict:
    return {"license": {"valid": True}}


@method("getOpenSubsonicExtensions")
def get_extensions(ctx: Ctx) -> dict:
    return {"openSubsonicExtensions": EXTENSIONS}


@method("getUser")
def get_user(ctx: Ctx) -> dict:
    name = ctx.params.get("username") or ctx.user
    if name != ctx.user:
        raise SubsonicError(NOT_AUTHORIZED, "Only your own user can be read here.")
    roles = dict.fromkeys(("scrobblingEnabled", "downloadRole", "playlistRole", "coverArtRole", "streamRole"), True)
    denied = dict.fromkeys(("adminRole", "settingsRole", "uploadRole", "commentRole", "podcastRole", "jukeboxRole",
                            "shareRole", "videoConversionRole"), False)
    return {"user": {"username": name, **roles, **denied, "folder": [d.folder for d in ctx.view.roots]}}


@method("getScanStatus")
def get_scan_status(ctx: Ctx) -> dict:
    return {"scanStatus": {"scanning": bool(ctx.request.app.state.index_job.progress().get("running")),
                           "count": len(ctx.view.songs)}}


# ---------------------------------------------------------------------------------------------
# Browsing by tags (ID3) and by folders
# ---------------------------------------------------------------------------------------------


@method("getMusicFolders")
def get_music_folders(ctx: Ctx) -> dict:
    return {"musicFolders": {"musicFolder": [{"id": d.folder, "name": d.name} for d in ctx.view.roots]}}


def _indexed(entries: list[tuple[str, dict]], key: str) -> list[dict]:
    """[(name, entry)] grouped under their index letters, as getArtists and getIndexes show them."""
    groups: dict[str, list[dict]] = {}
    for name, entry in sorted(entries, key=lambda e: e[0].casefold()):
        groups.setdefault(lib.index_letter(name), []).append(entry)
    return [{"name": letter, key: groups[letter]} for letter in sorted(groups)]


@method("getArtists")
def get_artists(ctx: Ctx) -> dict:
    entries = [(a.name, lib.artist(a, ctx.marks)) for a in ctx.view.artists.values() if a.albums]  # album artists
    return {"artists": {"ignoredArticles": lib.IGNORED_ARTICLES, "index": _indexed(entries, "artist")}}


@method("getArtist")
def get_artist(ctx: Ctx) -> dict:
    a = ctx.artist(ctx.params.require("id"))
    albums = sorted(lib.albums_of(ctx.view, a), key=lambda x: x.name.casefold())
    return {"artist": {**lib.artist(a, ctx.marks), "album": [lib.album(x, ctx.marks) for x in albums]}}


@method("getAlbum")
def get_album(ctx: Ctx) -> dict:
    a = ctx.album(ctx.params.require("id"))
    return {"album": {**lib.album(a, ctx.marks), "song": ctx.children(a.songs)}}


@method("getSong")
def get_song(ctx: Ctx) -> dict:
    return {"song": ctx.child(ctx.song(ctx.params.require("id")))}


@method("getGenres")
def get_genres(ctx: Ctx) -> dict:
    songs: dict[str, int] = {}
    albums: dict[str, set[str]] = {}
    for t in ctx.view.songs.values():
        if t.genre:
            songs[t.genre] = songs.get(t.genre, 0) + 1
            albums.setdefault(t.genre, set()).add(ctx.view.album_of[t.id].id)
    return {"genres": {"genre": [{"value": g, "songCount": songs[g], "albumCount": len(albums[g])}
                                 for g in sorted(songs, key=str.casefold)]}}


def _album_list(ctx: Ctx) -> list[lib.Album]:
    kind = ctx.params.require("type")
    albums = list(ctx.view.albums.values())
    plays = ctx.marks.plays
    if kind == "random":
        return random.sample(albums, len(albums))
    if kind == "newest":
        return sorted(albums, key=lambda a: -a.created)
    if kind == "alphabeticalByName":
        return sorted(albums, key=lambda a: a.name.casefold())
    if kind == "alphabeticalByArtist":
        return sorted(albums, key=lambda a: (a.artist.name.casefold(), a.name.casefold()))
    if kind == "byGenre":
        genre = ctx.params.require("genre").casefold()
        return [a for a in albums if any((t.genre or "").casefold() == genre for t in a.songs)]
    if kind in ("frequent", "highest"):
        count = {a.id: sum(plays.get(t.id, (0, 0))[0] for t in a.songs) for a in albums}
        return sorted((a for a in albums if count[a.id]), key=lambda a: -count[a.id])
    if kind == "recent":
        last = {a.id: max((plays[t.id][1] for t in a.songs if t.id in plays), default=0) for a in albums}
        return sorted((a for a in albums if last[a.id]), key=lambda a: -last[a.id])
    if kind == "starred":
        return [a for a in albums if a.id in ctx.marks.stars]
    if kind == "byYear":  # from fromYear to toYear, either way round, as Subsonic has it
        first, last = ctx.params.int("fromYear", 0, 0, 9999), ctx.params.int("toYear", 9999, 0, 9999)
        lo, hi = min(first, last), max(first, last)
        found = sorted((a for a in albums if a.year is not None and lo <= a.year <= hi),
                       key=lambda a: (a.year, a.name.casefold()))
        return found[::-1] if first > last else found
    raise SubsonicError(GENERIC, f"Unknown album list type: {kind!r}.")


def _page(ctx: Ctx, items: list, size: str = "size", offset: str = "offset", default: int = 10, most: int = MAX_LIST):
    n, start = ctx.params.int(size, default, 0, most), ctx.params.int(offset, 0)
    return items[start : start + n]


@method("getAlbumList2")
def get_album_list2(ctx: Ctx) -> dict:
    return {"albumList2": {"album": [lib.album(a, ctx.marks) for a in _page(ctx, _album_list(ctx))]}}


def _album_dir(a: lib.Album, marks: lib.Marks) -> dict:
    """An album as a Child directory (the folder-style API)."""
    return {"id": a.id, "parent": a.artist.id, "isDir": True, "title": a.name, "album": a.name,
            "artist": a.artist.name, "year": a.year, "coverArt": a.id, "starred": lib.iso(marks.stars.get(a.id))}


@method("getAlbumList")
def get_album_list(ctx: Ctx) -> dict:
    return {"albumList": {"album": [_album_dir(a, ctx.marks) for a in _page(ctx, _album_list(ctx))]}}


@method("getRandomSongs")
def get_random_songs(ctx: Ctx) -> dict:
    songs = list(ctx.view.songs.values())
    genre = ctx.params.get("genre")
    if genre:
        songs = [t for t in songs if (t.genre or "").casefold() == genre.casefold()]
    n = ctx.params.int("size", 10, 0, MAX_LIST)
    return {"randomSongs": {"song": ctx.children(random.sample(songs, min(n, len(songs))))}}


def _search(ctx: Ctx) -> dict:
    # Symfonium sends query="" (with the quotes) to mean everything.
    text = (ctx.params.get("query") or "").strip().strip('"').strip().casefold()
    v = ctx.view

    def hit(*fields) -> bool:
        return not text or any(text in (f or "").casefold() for f in fields)

    artists = sorted((a for a in v.artists.values() if hit(a.name)), key=lambda a: a.name.casefold())
    albums = sorted((a for a in v.albums.values() if hit(a.name, a.artist.name)), key=lambda a: a.name.casefold())
    songs = [t for t in v.songs.values() if hit(t.title, t.artist, t.album, t.path)]  # in catalog order: stable pages
    return {
        "artist": [lib.artist(a, ctx.marks) for a in _page(ctx, artists, "artistCount", "artistOffset", 20, MAX_SEARCH)],
        "album": [lib.album(a, ctx.marks) for a in _page(ctx, albums, "albumCount", "albumOffset", 20, MAX_SEARCH)],
        "song": ctx.children(_page(ctx, songs, "songCount", "songOffset", 20, MAX_SEARCH)),
    }


@method("search3")
def search3(ctx: Ctx) -> dict:
    return {"searchResult3": _search(ctx)}


@method("search2")
def search2(ctx: Ctx) -> dict:
    return {"searchResult2": _search(ctx)}


@method("getIndexes")
def get_indexes(ctx: Ctx) -> dict:
    roots = ctx.view.roots
    folder = ctx.params.get("musicFolderId")
    if folder:
        roots = [d for d in roots if str(d.folder) == folder]
        if not roots:
            raise SubsonicError(NOT_FOUND, f"Music folder not found: {folder!r}.")
    entries = [(d.name, {"id": d.id, "name": d.name, "starred": lib.iso(ctx.marks.stars.get(d.id))})
               for root in roots for d in root.dirs]
    newest = max((t.mtime or 0 for t in ctx.view.songs.values()), default=0)
    return {"indexes": {"lastModified": int(newest * 1000),
                        "ignoredArticles": lib.IGNORED_ARTICLES, "index": _indexed(entries, "artist"),
                        "child": ctx.children(t for root in roots for t in root.songs)}}


@method("getMusicDirectory")
def get_music_directory(ctx: Ctx) -> dict:
    """A directory of the library's folders; an artist or an album id also answers, as a
    directory of albums or of songs (what players that browse by folders expect)."""
    item = ctx.params.require("id")
    v = ctx.view
    if item in v.dirs:
        d = v.dirs[item]
        children = [lib.directory_child(x, ctx.marks) for x in sorted(d.dirs, key=lambda x: x.name.casefold())]
        return {"directory": {"id": d.id, "parent": d.parent, "name": d.name,
                              "child": children + ctx.children(d.songs)}}
    if item in v.artists:
        a = v.artists[item]
        return {"directory": {"id": a.id, "name": a.name,
                              "child": [_album_dir(x, ctx.marks) for x in lib.albums_of(v, a)]}}
    if item in v.albums:
        a = v.albums[item]
        return {"directory": {"id": a.id, "parent": a.artist.id, "name": a.name, "child": ctx.children(a.songs)}}
    raise SubsonicError(NOT_FOUND, f"Directory not found: {item!r}.")


@method("getCoverArt")
def get_cover_art(ctx: Ctx) -> Response:
    """The picture embedded in the first file of the item that has one, else the folder image
    (cover.*, folder.*, front.*) beside it, as it is; else a placeholder of `size` pixels."""
    item = ctx.params.require("id")
    folders = ctx.catalog.folders()
    songs = ctx.songs_of(item)[:20]  # looking further costs more than a placeholder is worth
    for t in songs:
        found = (embedded_picture(t.path) if (t.picture_mime or not t.tags_version) and inside_folders(t.path, folders)
                 else None)  # a track not re-read since step 4 may still hold one
        if found:
            return Response(found[0], media_type=found[1], headers={"Cache-Control": "max-age=86400"})
    for t in songs:
        image = inside_folders(t.folder_image, folders) if t.folder_image else None
        if image is not None:
            return FileResponse(image, media_type=mimetypes.guess_type(image)[0] or "image/jpeg",
                                headers={"Cache-Control": "max-age=86400"})
    size = ctx.params.int("size", 300, 16, 1024)
    return Response(placeholder_png(item, size), media_type="image/png", headers={"Cache-Control": "max-age=3600"})


# ---------------------------------------------------------------------------------------------
# Playing
# ---------------------------------------------------------------------------------------------


@method("stream", "download")
def stream(ctx: Ctx) -> Response:
    t = ctx.song(ctx.params.require("id"))
    path = inside_folders(t.path, ctx.catalog.folders())
    if path is None:
        raise SubsonicError(NOT_FOUND, f"The file of song {t.id} is missing or outside the library's folders.")
    return audio_response(path, ctx.request.headers.get("range"))


@method("scrobble")
def scrobble(ctx: Ctx) -> dict:
    """Plays are recorded when submitted (submission=true, the default); a "now playing"
    notice (submission=false) is accepted and not recorded."""
    ids = ctx.params.getlist("id")
    if not ids:
        raise SubsonicError(MISSING, "Required parameter is missing: id.")
    tracks = [ctx.song(i) for i in ids]
    times = ctx.params.getlist("time")
    if ctx.params.bool("submission", True):
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
    with ctx.writer() as w:
        w.star(ctx.user, items)
    return {}


@method("unstar")
def unstar(ctx: Ctx) -> dict:
    items = _starred_items(ctx)
    with ctx.writer() as w:
        w.star(ctx.user, items, starred=False)
    return {}


def _starred(ctx: Ctx) -> dict:
    v, stars = ctx.view, ctx.marks.stars
    return {"artist": [lib.artist(a, ctx.marks) for i, a in v.artists.items() if i in stars],
            "album": [lib.album(a, ctx.marks) for i, a in v.albums.items() if i in stars],
            "song": ctx.children(t for t in v.songs.values() if str(t.id) in stars)}


@method("getStarred2")
def get_starred2(ctx: Ctx) -> dict:
    return {"starred2": _starred(ctx)}


@method("getStarred")
def get_starred(ctx: Ctx) -> dict:
    return {"starred": _starred(ctx)}


# ---------------------------------------------------------------------------------------------
# Similarity: from the sound
# ---------------------------------------------------------------------------------------------


def _count(ctx: Ctx, name: str, default: int, least: int = 1) -> int:
    """The count asked for, at most what the library can give."""
    return min(ctx.params.int(name, default, least, MAX_LIST), len(ctx.searcher))


def _similar_songs(ctx: Ctx) -> list[Track]:
    """Radio from the sound, seeded by a song, or by the songs of an album or an artist."""
    from ..recommend.radio import radio

    item = ctx.params.require("id")
    searchable = set(ctx.searcher.ids().tolist())
    seeds = [t.id for t in ctx.songs_of(item) if t.id in searchable]
    if not seeds:
        raise SubsonicError(NOT_FOUND, f"Nothing in {item!r} can be searched yet (not analysed by the current model).")
    seeds = seeds[:: max(1, len(seeds) // 20)][:20]  # a big artist: an even sample of their songs
    n = min(ctx.params.int("count", 50, 1, MAX_LIST), len(ctx.searcher) - len(seeds))
    if n < 1:
        return []
    return [m.track for m in radio(ctx.searcher, seeds, n=n, seed=secrets.randbelow(2**31))]


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
    found = similar(ctx.searcher, track, k=max(_count(ctx, "count", 10), 1))
    return {"sonicMatch": [ctx.sonic_match(s.track, s.score) for s in found if s.track.id in ctx.view.songs]}


@method("findSonicPath")
def find_sonic_path(ctx: Ctx) -> dict:
    from ..recommend.path import journey

    start = ctx.song(ctx.params.require("startSongId"))
    end = ctx.song(ctx.params.require("endSongId"))
    trip = journey(ctx.searcher, start, end, n=max(_count(ctx, "count", 25, least=2), 2))
    va = ctx.searcher.vectors([start.id])[0]
    similarity = ctx.searcher.vectors([t.id for t in trip.tracks]) @ va
    return {"sonicMatch": [ctx.sonic_match(t, s) for t, s in zip(trip.tracks, similarity)]}
