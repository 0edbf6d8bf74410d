"""A Subsonic request as the handlers see it: its parameters (`Params`), its user and what it reads
(`Ctx`: the searcher, the library view, the user's stars; ids looked up, never used as paths), and
the registry the handlers join with `@method("name")` (subsonic.py dispatches to it)."""


from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response

from .. import autotags
from ..catalog import Catalog, Track
from ..query import Searcher
from . import subsonic_library as lib
from . import transcode
from .subsonic_format import (
    GENERIC,
    MISSING,
    NOT_AUTHORIZED,
    NOT_FOUND,
    SubsonicError,
)

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
        self._follow_regrouped()
        return lib.Marks(self.catalog.stars(self.user), self.catalog.play_counts(), self.catalog.ratings(self.user))

    def _follow_regrouped(self) -> None:
        """A starred or rated album whose id is gone (re-read tags regrouped its songs, as a new
        album artist does) follows the song noted when it was starred or rated: its star and its
        rating move, once and together, to the album that song is in now."""
        v = self.view

        def moves(songs: dict[str, int]) -> dict[str, str]:
            return {item: v.album_of[song].id for item, song in songs.items()
                    if item not in v.albums and song in v.album_of}

        stars, ratings = moves(self.catalog.star_songs(self.user)), moves(self.catalog.rating_songs(self.user))
        if stars or ratings:
            with self.writer() as w:
                w.move_album_marks(self.user, stars, ratings)

    def _predicted(self, track_ids: list[int]) -> None:
        """Read the predicted tags (autotags.py) of the songs about to be shown that are not read
        yet: only theirs, so a request showing one song never reads the whole library's."""
        marks = self.marks
        wanted = [i for i in track_ids if i not in marks.predicted_read]
        if wanted:
            for group, by_track in autotags.stored_for(self.catalog, wanted).items():
                marks.predicted.setdefault(group, {}).update(by_track)
            marks.predicted_read.update(wanted)

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
        self._predicted([t.id])
        return lib.song(self.view, t, self.marks) | self.transcoded(t)

    # -- transcoding (server/transcode.py): the user's stream defaults and what they make of a song

    @cached_property
    def stream_defaults(self) -> transcode.Defaults:
        return transcode.Defaults(*self.catalog.stream_defaults(self.user))

    def transcoded(self, t: Track) -> dict:
        return transcode.transcoded_fields(Path(t.path).suffix, transcode.source_kbps(t.size, t.duration),
                                           self.stream_defaults)

    def children(self, tracks) -> list[dict]:
        tracks = list(tracks)
        self._predicted([t.id for t in tracks])
        return [lib.song(self.view, t, self.marks) | self.transcoded(t) for t in tracks]

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
