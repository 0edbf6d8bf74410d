"""The page's library views as JSON: the track list (paged, searched), albums, artists, covers.

Albums and artists are the Subsonic view's (subsonic_library.py: albums by album artist and
album, compilations under "Various Artists", songs in disc and track order), so the page and a
Subsonic player group a library the same way; the view is built once per search snapshot and
shared. Search is the catalog's (`Catalog.search_text`: the words of the query), so the page
finds what `songspace` finds.

Lists are paged (`offset`, `limit`, and `total`): the page asks only for the rows it shows, and
the track list reads only the ids of the whole library (once per snapshot) and the rows of the
page asked for, so a library of 100,000 tracks answers its first page at once. Albums and
artists wait for the Subsonic view the first time (seconds for 100,000 tracks, then shared). Every list is in a
stable order: tracks by catalog id, albums by album artist, year and name, artists by name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from .. import shapes
from ..catalog import Track
from ..query import Searcher
from . import subsonic_library as lib
from .api import Search, m3u8_response
from .covers import cover_response

router = APIRouter(prefix="/api")

Offset = Annotated[int, Query(ge=0, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=500, description="rows to return")]
SEARCHES_KEPT = 16  # answers to recent queries kept per snapshot: scrolling a result asks for page after page


def _page(rows: list, offset: int, limit: int) -> tuple[int, list]:
    return len(rows), rows[offset : offset + limit]


def _sort_key(name: str | None) -> str:
    return (name or "").casefold()


# ---------------------------------------------------------------------------------------------
# What one snapshot holds, derived once: the tracks in order, albums and artists sorted, searches
# ---------------------------------------------------------------------------------------------


def _ids(searcher: Searcher) -> list[int]:
    """The analysed tracks' ids, in id order: read once per snapshot, without building the tracks
    (the first page of 100,000 tracks waits for one small query, not for the library's view)."""
    return searcher.derived("page ids", searcher.catalog.ok_ids)


def _albums(searcher: Searcher, v: lib.View) -> list[lib.Album]:
    def build():
        return sorted(v.albums.values(), key=lambda a: (_sort_key(a.artist.sort_name or a.artist.name),
                                                        a.year or 0, _sort_key(a.name), a.id))
    return searcher.derived("page albums", build)


def _artists(searcher: Searcher, v: lib.View) -> list[lib.Artist]:
    return searcher.derived("page artists", lambda: sorted(v.artists.values(),
                                                           key=lambda a: (_sort_key(a.sort_name or a.name), a.id)))


def _found(searcher: Searcher, text: str) -> list[int]:
    """The ids of the analysed tracks the catalog's search finds for `text`, in id order;
    remembered for this snapshot (the page asks for the pages of one answer as it scrolls)."""
    kept = searcher.derived("page searches", dict)
    if text not in kept:
        if len(kept) >= SEARCHES_KEPT:
            kept.pop(next(iter(kept)))
        ids = _ids(searcher)  # (not inside another derived build: one lock per snapshot)
        listed = searcher.derived("page id set", lambda: frozenset(ids))
        kept[text] = [i for i in searcher.catalog.search_ids(text) if i in listed]
    return kept[text]


def _listed(searcher: Searcher, q: str) -> list[int]:
    """The ids /api/tracks lists for `q`: every analysed track, or those the search finds."""
    text = q.strip()
    return _found(searcher, text) if text else _ids(searcher)


def _rows(searcher: Searcher, ids: list[int]) -> list[Track]:
    return [t for t in searcher.catalog.tracks_by_id(ids) if t is not None]


# ---------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------


@router.get("/tracks")
def tracks(searcher: Search, q: str = "", offset: Offset = 0, limit: Limit = 50) -> dict:
    """Analysed tracks, by id; with `q`, those the library's search finds (every word, in the
    title, artist, album or genre, any case or accent, a word's start will do); paged."""
    with searcher.snapshot():
        total, ids = _page(_listed(searcher, q), offset, limit)
        rows = _rows(searcher, ids)
    return {"total": total, "items": [shapes.track_row(t) for t in rows]}


@router.get("/search.m3u8", response_class=Response, responses={200: {"content": {"audio/x-mpegurl": {}}}})
def search_playlist(request: Request, searcher: Search, q: str = "") -> Response:
    """Every track of /api/tracks?q= (all of them, not a page) as an M3U8 download, in its order."""
    with searcher.snapshot():
        found = _rows(searcher, _listed(searcher, q))
    return m3u8_response(found, request)


@router.get("/albums")
def albums(searcher: Search, offset: Offset = 0, limit: Limit = 60) -> dict:
    """Albums by album artist (compilations under "Various Artists"), year and name; paged.
    Each has `cover`, the URL of its picture (a placeholder when no file has one: `picture`)."""
    with searcher.snapshot():
        v = lib.view(searcher)
        total, rows = _page(_albums(searcher, v), offset, limit)
    return {"total": total, "items": [shapes.album_row(a, cover=_cover_url(a.id)) for a in rows]}


@router.get("/albums/{album_id}")
def album(album_id: str, searcher: Search) -> dict:
    """One album and its tracks, in disc and track order."""
    with searcher.snapshot():
        a = _known_album(lib.view(searcher), album_id)
    return shapes.album_row(a, cover=_cover_url(a.id), tracks=[shapes.album_track_row(t) for t in a.songs])


@router.get("/albums/{album_id}/cover", response_class=Response,
            responses={200: {"content": {"image/*": {}}}, 404: {"description": "no such album"}})
def album_cover(album_id: str, request: Request, searcher: Search,
                size: Annotated[int, Query(ge=16, le=1024, description="the largest side in pixels")] = 300) -> Response:
    """The album's picture: embedded in one of its files, else the folder image beside them
    (cover.*, folder.*, front.*), no larger than `size` pixels; else a placeholder of that size
    in the album's own colours."""
    with searcher.snapshot():
        a = _known_album(lib.view(searcher), album_id)
    return cover_response(a.id, a.songs, searcher.catalog.folders(), size, scale=True)


@router.get("/artists")
def artists(searcher: Search, offset: Offset = 0, limit: Limit = 100) -> dict:
    """Every artist (album artists and the artists tracks credit), by name; paged."""
    with searcher.snapshot():
        v = lib.view(searcher)
        total, rows = _page(_artists(searcher, v), offset, limit)
        items = [shapes.artist_row(a, len(lib.albums_of(v, a)), _song_count(a)) for a in rows]
    return {"total": total, "items": items}


@router.get("/artists/{artist_id}")
def artist(artist_id: str, searcher: Search) -> dict:
    """One artist and their albums (for an artist with no album of their own, the albums their
    tracks are on), by year and name."""
    with searcher.snapshot():
        v = lib.view(searcher)
        a = v.artists.get(artist_id)
        if a is None:
            raise HTTPException(404, f"no artist with id {artist_id!r} in the library")
        found = sorted(lib.albums_of(v, a), key=lambda x: (x.year or 0, _sort_key(x.name), x.id))
    return shapes.artist_row(a, len(found), _song_count(a), albums=[shapes.album_row(x, cover=_cover_url(x.id)) for x in found])


def _song_count(a: lib.Artist) -> int:
    """The songs of the artist's own albums, else those that credit them (as Subsonic's songs of an artist)."""
    return sum(len(x.songs) for x in a.albums) or len(a.songs)


def _known_album(v: lib.View, album_id: str) -> lib.Album:
    found = v.albums.get(album_id)
    if found is None:
        raise HTTPException(404, f"no album with id {album_id!r} in the library")
    return found


def _cover_url(album_id: str) -> str:
    return f"/api/albums/{album_id}/cover"
