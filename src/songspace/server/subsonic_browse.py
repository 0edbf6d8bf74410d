"""Subsonic handlers for browsing: music folders, artists, albums, songs, genres, album lists,
search, folder views and cover art (the ids and the view come from subsonic_library.py)."""


from __future__ import annotations

import random

from fastapi.responses import Response

from ..catalog.search import matches, name_key, terms
from . import subsonic_library as lib
from .covers import cover_response
from .subsonic_format import (
    GENERIC,
    NOT_FOUND,
    SubsonicError,
)
from .subsonic_request import MAX_LIST, MAX_SEARCH, Ctx, method

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
        for g in lib.genres_of(t):
            songs[g] = songs.get(g, 0) + 1
            albums.setdefault(g, set()).add(ctx.view.album_of[t.id].id)
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




@method("getAlbumList")
def get_album_list(ctx: Ctx) -> dict:
    return {"albumList": {"album": [lib.album_dir(a, ctx.marks) for a in _page(ctx, _album_list(ctx))]}}


@method("getRandomSongs")
def get_random_songs(ctx: Ctx) -> dict:
    songs = list(ctx.view.songs.values())
    genre = ctx.params.get("genre")
    if genre:
        songs = [t for t in songs if (t.genre or "").casefold() == genre.casefold()]
    n = ctx.params.int("size", 10, 0, MAX_LIST)
    return {"randomSongs": {"song": ctx.children(random.sample(songs, min(n, len(songs))))}}


@method("getSongsByGenre")
def get_songs_by_genre(ctx: Ctx) -> dict:
    """Songs whose file tags this genre (any of its genres; case ignored), `count` from `offset`."""
    genre = ctx.params.require("genre").strip().casefold()
    songs = [t for t in ctx.view.songs.values() if genre in {g.casefold() for g in lib.genres_of(t)}]
    folder = ctx.params.get("musicFolderId")
    if folder:
        songs = [t for t in songs if str(ctx.view.dir_of[t.id].folder) == folder]
    return {"songsByGenre": {"song": ctx.children(_page(ctx, songs, "count", "offset", 10, MAX_LIST))}}


def _search(ctx: Ctx, legacy: bool = False) -> dict:
    """Artists, albums and songs matching every word of `query` (catalog/search.py: any order,
    case and accents ignored, `word*` a word's start); an empty query finds everything. Songs
    are found by one SQL scan of the catalog's stored keys; artists and albums by the view's."""
    query = ctx.params.get("query") or ""
    found, v = terms(query), ctx.view
    artists = sorted((a for a in v.artists.values() if matches(found, v.artist_keys[a.id])),
                     key=lambda a: a.name.casefold())
    albums = sorted((a for a in v.albums.values() if matches(found, v.album_keys[a.id])),
                    key=lambda a: a.name.casefold())
    if found:
        songs = [v.songs[i] for i in ctx.catalog.search_ids(query) if i in v.songs]  # in id order: stable pages
    else:
        songs = list(v.songs.values())
    artist_shape = lib.legacy_artist if legacy else lib.artist
    album_shape = lib.album_dir if legacy else lib.album
    return {
        "artist": [artist_shape(a, ctx.marks) for a in _page(ctx, artists, "artistCount", "artistOffset", 20, MAX_SEARCH)],
        "album": [album_shape(a, ctx.marks) for a in _page(ctx, albums, "albumCount", "albumOffset", 20, MAX_SEARCH)],
        "song": ctx.children(_page(ctx, songs, "songCount", "songOffset", 20, MAX_SEARCH)),
    }


@method("search")
def search(ctx: Ctx) -> dict:
    """Subsonic's first search (deprecated, still sent by old clients): songs whose artist,
    album and title hold the words asked of each, and whose text holds those of `any`, matched
    as search3 matches (catalog/search.py); `newerThan` (ms) keeps files changed since."""
    v, p = ctx.view, ctx.params
    fields = {name: terms(p.get(name)) for name in ("artist", "album", "title")}
    songs = ([v.songs[i] for i in ctx.catalog.search_ids(p.get("any") or "") if i in v.songs] if terms(p.get("any"))
             else list(v.songs.values()))
    songs = [t for t in songs
             if matches(fields["artist"], name_key(*lib.track_artists(t), t.artist))
             and matches(fields["album"], name_key(v.album_of[t.id].name)) and matches(fields["title"], name_key(t.title))]
    newer = p.int("newerThan", 0, 0, 2**53)
    if newer:
        songs = [t for t in songs if (t.mtime or 0) * 1000 > newer]
    start = p.int("offset", 0)
    return {"searchResult": {"offset": start, "totalHits": len(songs),
                             "match": ctx.children(songs[start : start + p.int("count", 20, 0, MAX_LIST)])}}


@method("search3")
def search3(ctx: Ctx) -> dict:
    return {"searchResult3": _search(ctx)}


@method("search2")
def search2(ctx: Ctx) -> dict:
    """search3's answer in the folder-style shapes: albums as directories (Child: isDir, title)."""
    return {"searchResult2": _search(ctx, legacy=True)}


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
                              "child": [lib.album_dir(x, ctx.marks) for x in lib.albums_of(v, a)]}}
    if item in v.albums:
        a = v.albums[item]
        return {"directory": {"id": a.id, "parent": a.artist.id, "name": a.name, "child": ctx.children(a.songs)}}
    raise SubsonicError(NOT_FOUND, f"Directory not found: {item!r}.")


@method("getCoverArt")
def get_cover_art(ctx: Ctx) -> Response:
    """The picture embedded in the first file of the item that has one, else the folder image
    (cover.*, folder.*, front.*) beside it; scaled to `size` pixels (its longer side) when asked
    and larger, else as it is; without any, a placeholder of `size` pixels."""
    item = ctx.params.require("id")
    size = ctx.params.int("size", 300, 1, 2048)
    return cover_response(item, ctx.songs_of(item), ctx.catalog.folders(), size, scale=bool(ctx.params.get("size")))
