"""What a Subsonic client browses, derived from the catalog: artists, albums, songs, folders.

Ids are opaque to clients, but stable (derived from tags and paths, so a restart or a re-index
keeps them) and each names its kind, so an id of the wrong kind is "not found", never a guess:
- a song: its catalog id as a decimal string ("123");
- an artist: "ar-" + 16 hex digits of a hash of the artist tag (case and outer spaces ignored);
  tracks without an artist tag are by "Unknown artist";
- an album: "al-" + a hash of (artist, album tag); a track without an album tag belongs to an
  album named after its folder (the hash then includes the folder's path, so two folders of the
  same name stay apart): every analysed track appears somewhere, none vanishes;
- a directory: "di-" + a hash of its path; a music folder: its position (1, 2, ...) among the
  library's indexed folders, an integer as Subsonic wants;
- a playlist: "pl-" + its number.
Nothing a request says is ever used as a path: ids are looked up in these maps.

The view is part of the Searcher's snapshot (query.py): rebuilt once when the catalog changes,
shared by every request until then, and answering from the same snapshot as the search.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..catalog import Track
from ..query import Searcher
from .streaming import MEDIA_TYPES

UNKNOWN_ARTIST = "Unknown artist"
IGNORED_ARTICLES = "The El La Los Las Le Les"


def _hash(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:16]


def iso(t: float | None) -> str | None:
    """Seconds since the epoch as Subsonic's ISO 8601 time, UTC."""
    if t is None:
        return None
    try:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    except (OverflowError, ValueError, OSError):  # NaN, or beyond year 9999 (an old scrobble, a file's mtime)
        return None


def index_letter(name: str) -> str:
    """The index heading of a name: its first letter after a leading article, '#' if none."""
    words = name.split(maxsplit=1)
    if len(words) == 2 and words[0].casefold() in {a.casefold() for a in IGNORED_ARTICLES.split()}:
        name = words[1]
    first = name[:1].upper()
    return first if first.isalpha() else "#"


@dataclass
class Album:
    id: str
    name: str
    artist: "Artist"
    songs: list[Track] = field(default_factory=list)

    @property
    def duration(self) -> int:
        return int(round(sum(t.duration or 0 for t in self.songs)))

    @property
    def created(self) -> float:
        return min((t.mtime or 0) for t in self.songs)

    @property
    def genre(self) -> str | None:
        return next((t.genre for t in self.songs if t.genre), None)


@dataclass
class Artist:
    id: str
    name: str
    albums: list[Album] = field(default_factory=list)


@dataclass
class Directory:
    id: str
    path: str
    folder: int  # the music folder it lies in
    parent: str | None  # the directory above, None for a music folder itself
    dirs: list["Directory"] = field(default_factory=list)
    songs: list[Track] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path


@dataclass
class View:
    generation: int
    songs: dict[int, Track]
    album_of: dict[int, Album]  # song id -> album
    dir_of: dict[int, Directory]  # song id -> directory
    artists: dict[str, Artist]
    albums: dict[str, Album]
    dirs: dict[str, Directory]
    roots: list[Directory]  # the music folders, by id - 1


def _roots(folders: list[str], tracks: list[Track]) -> list[str]:
    """The music folders: the indexed folders (the folder of an indexed file), plus the folder
    of any track lying outside them all, so that it still appears."""
    roots = {f if os.path.isdir(f) else os.path.dirname(f) for f in folders}
    for t in tracks:
        if _root_of(t.path, roots) is None:
            roots.add(os.path.dirname(t.path))
    return sorted(roots)


def _root_of(path: str, roots) -> str | None:
    best = None
    for r in roots:
        if path.startswith(r.rstrip(os.sep) + os.sep) and (best is None or len(r) > len(best)):
            best = r
    return best


def build_view(generation: int, tracks: list[Track], folders: list[str]) -> View:
    roots = _roots(folders, tracks)
    view = View(generation, {}, {}, {}, {}, {}, {}, [])
    for n, r in enumerate(roots, 1):
        d = Directory("di-" + _hash(r), r, n, None)
        view.roots.append(d)
        view.dirs[d.id] = d
    by_path = {d.path: d for d in view.roots}

    def directory(path: str, folder: Directory) -> Directory:
        if path in by_path:
            return by_path[path]
        parent = directory(os.path.dirname(path), folder)
        d = by_path[path] = Directory("di-" + _hash(path), path, folder.folder, parent.id)
        parent.dirs.append(d)
        view.dirs[d.id] = d
        return d

    for t in sorted(tracks, key=lambda t: t.path):
        root = by_path[_root_of(t.path, roots)]
        d = directory(os.path.dirname(t.path), root)
        d.songs.append(t)
        view.songs[t.id] = t
        view.dir_of[t.id] = d

        artist_name = (t.artist or "").strip() or UNKNOWN_ARTIST
        artist_id = "ar-" + _hash(artist_name.casefold())
        artist = view.artists.setdefault(artist_id, Artist(artist_id, artist_name))
        album_name = (t.album or "").strip()
        key = (artist_id, album_name.casefold()) if album_name else (artist_id, "\0folder", d.path)
        album_id = "al-" + _hash(*key)
        album = view.albums.get(album_id)
        if album is None:
            album = view.albums[album_id] = Album(album_id, album_name or d.name, artist)
            artist.albums.append(album)
        album.songs.append(t)
        view.album_of[t.id] = album
    return view


def view(searcher: Searcher) -> View:
    """The view of the searcher's library in its current snapshot: built once per snapshot
    (after a change to the catalog), shared by every request until the next."""
    cat = searcher.catalog
    return searcher.derived("subsonic view", lambda: build_view(cat.generation, cat.ok_tracks(), cat.folders()))


# ---------------------------------------------------------------------------------------------
# The shapes Subsonic clients read: Child (a song or a directory), AlbumID3, ArtistID3
# ---------------------------------------------------------------------------------------------


@dataclass
class Marks:
    """One user's stars and everyone's plays, to show on what is listed."""

    stars: dict[str, float] = field(default_factory=dict)
    plays: dict[int, tuple[int, float]] = field(default_factory=dict)


def song(v: View, t: Track, marks: Marks) -> dict:
    album, d = v.album_of[t.id], v.dir_of[t.id]
    suffix = Path(t.path).suffix.lower()
    plays, played = marks.plays.get(t.id, (0, None))
    bit_rate = int(t.size * 8 / t.duration / 1000) if t.size and t.duration else None
    return {
        "id": str(t.id), "parent": d.id, "isDir": False, "title": t.title or Path(t.path).stem,
        "album": album.name, "artist": album.artist.name, "isVideo": False, "coverArt": str(t.id),
        "size": t.size, "contentType": MEDIA_TYPES.get(suffix, "application/octet-stream"), "suffix": suffix[1:],
        "duration": int(round(t.duration or 0)), "bitRate": bit_rate, "genre": t.genre,
        "path": os.path.relpath(t.path, v.roots[d.folder - 1].path), "created": iso(t.mtime),
        "albumId": album.id, "artistId": album.artist.id, "type": "music", "mediaType": "song",
        "playCount": plays or None, "played": iso(played), "starred": iso(marks.stars.get(str(t.id))),
    }


def directory_child(d: Directory, marks: Marks) -> dict:
    return {"id": d.id, "parent": d.parent, "isDir": True, "title": d.name, "starred": iso(marks.stars.get(d.id))}


def album(a: Album, marks: Marks) -> dict:
    plays = sum(marks.plays.get(t.id, (0, 0))[0] for t in a.songs)
    return {"id": a.id, "name": a.name, "artist": a.artist.name, "artistId": a.artist.id, "coverArt": a.id,
            "songCount": len(a.songs), "duration": a.duration, "created": iso(a.created), "genre": a.genre,
            "playCount": plays or None, "starred": iso(marks.stars.get(a.id))}


def artist(a: Artist, marks: Marks) -> dict:
    return {"id": a.id, "name": a.name, "albumCount": len(a.albums), "coverArt": a.id,
            "starred": iso(marks.stars.get(a.id))}
