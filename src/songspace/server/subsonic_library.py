"""What a Subsonic client browses, derived from the catalog: artists, albums, songs, folders.

Ids are opaque to clients, but stable (derived from tags and paths, so a restart or a re-index
keeps them) and each names its kind, so an id of the wrong kind is "not found", never a guess:
- a song: its catalog id as a decimal string ("123");
- an artist: "ar-" + 16 hex digits of a hash of the name (case and outer spaces ignored);
  tracks without an artist tag are by "Unknown artist";
- an album: "al-" + a hash of (album artist, album tag, and the MusicBrainz album id when the
  tracks have one); the album artist is the album artist tag, else "Various Artists" for a
  compilation, else the track's artist. A track without an album tag belongs to an album named
  after its folder (the hash then includes the folder's path, so two folders of the same name
  stay apart): every analysed track appears somewhere, none vanishes. An album's songs are in
  disc and track order (then by path).
Album artists have albums (getArtists lists them); a track artist who is no album artist has
only songs, and their page shows the albums those songs are on.
- a directory: "di-" + a hash of its path; a music folder: its position (1, 2, ...) among the
  library's indexed folders, an integer as Subsonic wants;
- a playlist: "pl-" + its number.
Nothing a request says is ever used as a path: ids are looked up in these maps.

The view is part of the Searcher's snapshot (query.py): rebuilt once when the catalog changes,
shared by every request until then, and answering from the same snapshot as the search.
"""

from __future__ import annotations

import gc
import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import attrgetter
from pathlib import Path

from ..catalog import Track
from ..catalog.search import name_key
from ..query import Searcher
from ..tags import VARIOUS_ARTISTS
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

    @property
    def genres(self) -> list[str]:
        return list(dict.fromkeys(g for t in self.songs for g in (t.genres or ((t.genre,) if t.genre else ()))))

    @property
    def year(self) -> int | None:
        return min((t.year for t in self.songs if t.year), default=None)

    @property
    def compilation(self) -> bool:
        return any(t.compilation for t in self.songs)

    def first(self, name: str):
        """The first song's value of a tag the songs share (MusicBrainz id, sort name, dates)."""
        return next((getattr(t, name) for t in self.songs if getattr(t, name)), None)


@dataclass
class Artist:
    id: str
    name: str
    albums: list[Album] = field(default_factory=list)  # as album artist
    songs: list[Track] = field(default_factory=list)  # as a track's artist
    mbid: str | None = None  # MusicBrainz artist id and sort name, from the first track that tags them
    sort_name: str | None = None


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
    # what search finds artists and albums by (catalog/search.py): folded once per view
    artist_keys: dict[str, str] = field(default_factory=dict)
    album_keys: dict[str, str] = field(default_factory=dict)
    # companion mode: a remote song's path has no suffix; its server's entry said it ("flac")
    remote_suffixes: dict[int, str] = field(default_factory=dict)


def _roots(folders: list[str], tracks: list[Track]) -> list[str]:
    """The music folders: the indexed folders (the folder of an indexed file), plus the folder
    of any track lying outside them all, so that it still appears."""
    roots = {f if os.path.isdir(f) else os.path.dirname(f) for f in folders}
    placed: set[str] = set()  # folders known to lie in a root (one added later never changes that)
    for t in tracks:
        folder = os.path.dirname(t.path)
        if folder not in placed:  # a file lies in the root its folder lies in: looked for once a folder
            if _root_of(t.path, roots) is None:
                roots.add(folder)
            placed.add(folder)
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

    artist_ids: dict[str, str] = {}

    def named(name: str) -> Artist:
        aid = artist_ids.get(name)
        if aid is None:
            aid = artist_ids[name] = artist_id(name)
        found = view.artists.get(aid)
        if found is None:
            found = view.artists[aid] = Artist(aid, name)
        return found

    album_by_key: dict[tuple, Album] = {}

    def filed(t: Track, d: Directory) -> tuple[Album, Artist, tuple[str, str] | None]:
        """The track's album, its album artist, and the tags that name that artist (MusicBrainz
        id, sort name): the album artist's, the track artist's, or none for a compilation's."""
        artist = named(album_artist(t))
        names = (("mb_albumartist_id", "albumartist_sort") if (t.albumartist or "").strip()
                 else None if t.compilation else ("mb_artist_id", "artist_sort"))
        album_name = (t.album or "").strip()
        key = (artist.id, album_name.casefold()) if album_name else (artist.id, "\0folder", d.path)
        if album_name and t.mb_album_id:
            key += (t.mb_album_id,)  # two releases of one name by one artist stay apart
        album = album_by_key.get(key)
        if album is None:
            album_id = "al-" + _hash(*key)
            album = view.albums.get(album_id)
            if album is None:
                album = view.albums[album_id] = Album(album_id, album_name or d.name, artist)
                artist.albums.append(album)
            album_by_key[key] = album
        return album, artist, names

    # A track's directory, credited artists and album are worked out once for all the tracks
    # that share what they depend on (its folder; its artist tags; its folder and album tags):
    # 100,000 tracks are some 10,000 folders and albums and a few thousand artists.
    credits: dict[tuple, list[Artist]] = {}  # by the (artists, artist) tags
    album_by_tags: dict[tuple, tuple] = {}  # by the folder and the tags `filed` reads
    for t in sorted(tracks, key=attrgetter("path")):
        d = by_path.get(folder := os.path.dirname(t.path))
        if d is None:
            d = directory(folder, by_path[_root_of(t.path, roots)])
        d.songs.append(t)
        view.songs[t.id] = t
        view.dir_of[t.id] = d

        credited = credits.get(tags := (t.artists, t.artist))
        if credited is None:
            credited = credits[tags] = [named(name) for name in track_artists(t)]
        for a in credited:
            a.songs.append(t)
        found = album_by_tags.get(filing := (folder, t.albumartist, t.compilation, t.artist, t.album, t.mb_album_id))
        if found is None:
            found = album_by_tags[filing] = filed(t, d)
        album, artist, names = found
        if names and not (artist.mbid and artist.sort_name):  # the first track that tags them names them
            artist.mbid = artist.mbid or getattr(t, names[0])
            artist.sort_name = artist.sort_name or getattr(t, names[1])
        album.songs.append(t)
        view.album_of[t.id] = album
    for a in view.albums.values():
        a.songs.sort(key=lambda t: (t.disc or 1, t.track is None, t.track or 0, t.path))
        view.album_keys[a.id] = name_key(a.name, a.artist.name)
    view.artist_keys = {a.id: name_key(a.name) for a in view.artists.values()}
    return view


def albums_of(v: "View", a: Artist) -> list[Album]:
    """An artist's albums; for a track artist with none of their own, the albums their songs are on."""
    return a.albums or list({x.id: x for x in (v.album_of[t.id] for t in a.songs)}.values())


def artist_id(name: str) -> str:
    return "ar-" + _hash(name.casefold())


def track_artists(t: Track) -> list[str]:
    """The track's artists, each (the ARTISTS tag, or the artist tag)."""
    names = [n.strip() for n in t.artists if n.strip()] or [(t.artist or "").strip() or UNKNOWN_ARTIST]
    return list(dict.fromkeys(names))


def genres_of(t: Track) -> tuple[str, ...]:
    """The genres the file's tags give (all of them; the genre tag when there is no list)."""
    return t.genres or ((t.genre,) if t.genre else ())


def album_artist(t: Track) -> str:
    """Whose album the track is on: the album artist tag, else "Various Artists" for a
    compilation, else the track's artist."""
    return ((t.albumartist or "").strip() or (VARIOUS_ARTISTS if t.compilation else "")
            or (t.artist or "").strip() or UNKNOWN_ARTIST)


def view(searcher: Searcher) -> View:
    """The view of the searcher's library in its current snapshot: built once per snapshot
    (after a change to the catalog), shared by every request until the next."""
    cat = searcher.catalog

    def build() -> View:
        with _collector_paused():
            tracks = cat.ok_tracks()
            v = build_view(cat.generation, tracks, cat.folders())
        v.remote_suffixes = cat.remote_suffixes([t.id for t in tracks if t.remote_id is not None])
        return v

    return searcher.derived("subsonic view", build)


@contextmanager
def _collector_paused():
    """Python's cycle collector held off while a view is built: the view of 100,000 tracks is
    some 150,000 new objects, none of them garbage, and the collector would walk them again and
    again as they pile up (a third of the build's time). It runs again after, if it ran before
    (another thread building a view at the same moment may only find it off, and leave it so
    to the first)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# ---------------------------------------------------------------------------------------------
# The shapes Subsonic clients read: Child (a song or a directory), AlbumID3, ArtistID3
# ---------------------------------------------------------------------------------------------


@dataclass
class Marks:
    """One user's stars and ratings, everyone's plays, and the predicted tags, to show on what is listed."""

    stars: dict[str, float] = field(default_factory=dict)
    plays: dict[int, tuple[int, float]] = field(default_factory=dict)
    ratings: dict[str, int] = field(default_factory=dict)
    predicted: dict[str, dict[int, tuple[str, float]]] = field(default_factory=dict)  # autotags.stored_for
    predicted_read: set[int] = field(default_factory=set)  # the songs whose predictions were read

    def predicted_tags(self, track_id: int) -> list[dict] | None:
        """songspace's own predictions for a song (autotags.py: genre and mood from the sound), in
        a field of their own, `predictedTags`: never mixed into `genre`/`genres`, which are
        the file's tags (OpenSubsonic has no field for guessed tags; clients ignore unknown ones)."""
        found = []
        for group, by_track in self.predicted.items():
            if track_id in by_track:
                tag, p = by_track[track_id]
                found.append({"kind": group, "name": tag, "confidence": round(float(p), 3)})
        return found or None


def _date(text: str | None) -> dict | None:
    """"2004-03-02" as OpenSubsonic's ItemDate {year, month, day} (the parts known)."""
    if not text:
        return None
    return dict(zip(("year", "month", "day"), (int(p) for p in text.split("-"))))


def _artists(names) -> list[dict]:
    return [{"id": artist_id(n), "name": n} for n in names]


def song(v: View, t: Track, marks: Marks) -> dict:
    album, d = v.album_of[t.id], v.dir_of[t.id]
    suffix = Path(t.path).suffix.lower() if t.remote_id is None else "." + v.remote_suffixes.get(t.id, "")
    plays, played = marks.plays.get(t.id, (0, None))
    bit_rate = int(t.size * 8 / t.duration / 1000) if t.size and t.duration else None
    credited = track_artists(t)
    gain = {"trackGain": t.rg_track_gain, "trackPeak": t.rg_track_peak, "albumGain": t.rg_album_gain,
            "albumPeak": t.rg_album_peak}
    return {
        "id": str(t.id), "parent": d.id, "isDir": False, "title": t.title or Path(t.path).stem,
        "album": album.name, "artist": (t.artist or "").strip() or credited[0], "track": t.track, "discNumber": t.disc,
        "year": t.year, "isVideo": False, "coverArt": str(t.id),
        "size": t.size, "contentType": MEDIA_TYPES.get(suffix, "application/octet-stream"), "suffix": suffix[1:],
        "duration": int(round(t.duration or 0)), "bitRate": bit_rate, "genre": t.genre,
        "path": os.path.relpath(t.path, v.roots[d.folder - 1].path), "created": iso(t.mtime),
        "albumId": album.id, "artistId": artist_id(credited[0]), "type": "music", "mediaType": "song",
        "playCount": plays or None, "played": iso(played), "starred": iso(marks.stars.get(str(t.id))),
        "userRating": marks.ratings.get(str(t.id)),
        # OpenSubsonic's additions
        "sortName": t.title_sort, "musicBrainzId": t.mb_track_id,
        "genres": [{"name": g} for g in genres_of(t)],
        "artists": _artists(credited), "displayArtist": (t.artist or "").strip() or credited[0],
        "albumArtists": _artists([album.artist.name]), "displayAlbumArtist": album.artist.name,
        "replayGain": {k: x for k, x in gain.items() if x is not None} or None,
        "predictedTags": marks.predicted_tags(t.id),  # songspace's, not the file's
    }


def directory_child(d: Directory, marks: Marks) -> dict:
    return {"id": d.id, "parent": d.parent, "isDir": True, "title": d.name, "starred": iso(marks.stars.get(d.id))}


def album(a: Album, marks: Marks) -> dict:
    plays = sum(marks.plays.get(t.id, (0, 0))[0] for t in a.songs)
    return {"id": a.id, "name": a.name, "artist": a.artist.name, "artistId": a.artist.id, "coverArt": a.id,
            "songCount": len(a.songs), "duration": a.duration, "created": iso(a.created), "year": a.year,
            "genre": a.genre, "playCount": plays or None, "starred": iso(marks.stars.get(a.id)),
            "userRating": marks.ratings.get(a.id),
            # OpenSubsonic's additions
            "genres": [{"name": g} for g in a.genres], "artists": _artists([a.artist.name]),
            "displayArtist": a.artist.name, "isCompilation": a.compilation, "musicBrainzId": a.first("mb_album_id"),
            "sortName": a.first("album_sort"), "releaseDate": _date(a.first("date")),
            "originalReleaseDate": _date(a.first("original_date"))}


def artist(a: Artist, marks: Marks) -> dict:
    return {"id": a.id, "name": a.name, "albumCount": len(a.albums), "coverArt": a.id,
            "starred": iso(marks.stars.get(a.id)), "userRating": marks.ratings.get(a.id),
            "musicBrainzId": a.mbid, "sortName": a.sort_name}


def album_dir(a: Album, marks: Marks) -> dict:
    """An album as a Child directory (the folder-style API: getAlbumList, search2, getStarred);
    `name` and `songCount` too (AlbumID3's), beside Child's fields: py-opensonic reads
    getAlbumList's entries as albums."""
    return {"id": a.id, "parent": a.artist.id, "isDir": True, "title": a.name, "name": a.name, "album": a.name,
            "artist": a.artist.name, "year": a.year, "coverArt": a.id, "starred": iso(marks.stars.get(a.id)),
            "userRating": marks.ratings.get(a.id), "duration": a.duration, "created": iso(a.created),
            "songCount": len(a.songs)}


def legacy_artist(a: Artist, marks: Marks) -> dict:
    """An artist in the folder-style API's shape (Artist: id, name)."""
    return {"id": a.id, "name": a.name, "starred": iso(marks.stars.get(a.id)), "userRating": marks.ratings.get(a.id)}
