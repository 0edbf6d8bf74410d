"""Indexing a library that lives in another Subsonic server (companion mode): the same stages as
a folder's (pipeline.py), with the server's song list for the folders and its `download` for
the disk.

  list     every song entry of the server (remote.SubsonicClient.songs); failing to list, the
           run stops before anything is written
  prune    tracks of this server (and user) whose song is gone are removed, as deleted files
           are; a server that lists no song at all while tracks were indexed from it keeps them
           (a library being rescanned looks the same) unless `allow_empty`
  plan     a song whose id, size and created/changed time are unchanged, embedded by the current
           model, is not downloaded again (only its tags taken again from its entry); the rest
           are downloaded (a song whose entry has no time, each run: the same bytes as stored
           are then not analysed again, by their content hash)
  analyse  one song at a time: downloaded into a temporary file (the next one downloads while
           this one is analysed, so at most two are ever on disk), analysed by analysis.py as a
           local file is, then deleted. A download that fails (the server down, an error
           answer, a transfer that broke off, a size other than the entry says) is reported for
           that song and retried by the next run, never recorded: what was stored stays
  store    pipeline.store, as for local files

A song's track path is `subsonic://USER@HOST:PORT[/BASE]/SONG_ID` (remote.RemoteServer.track_path;
Track.remote_id gives the id back); its tags are the file's, overridden by what the server's
song entry says (title, artist, album, albumArtist, track, discNumber, year, genre(s)), as that
is what the user's apps show. Analysis runs in this process (one file at a time, one thread).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from .. import method as methods
from .. import proximity
from ..analysis import Analysis, Task, analyse, remove_stale_temp_files, temp_prefix
from ..catalog import Catalog, Track
from ..progress import Phase, Report, silent
from ..remote import RemoteError, RemoteServer, SubsonicClient
from ..status import SET_ASIDE, Outcome, TrackStatus
from ..tags import MAX_VALUES, clean
from ..workers import one_thread
from .pipeline import store
from .report import IndexReport

# Downloads in a row that cannot reach the server before the run stops asking (the rest are
# reported in one line and left for the next run).
UNREACHABLE_IN_A_ROW = 3


@dataclass(frozen=True)
class Song:
    """One song entry of the server, as planned."""

    id: str
    path: str  # the track path (RemoteServer.track_path)
    size: int | None  # as the entry declares
    mtime: float | None  # its created (or changed) time, as a timestamp
    suffix: str  # ".flac": decoders guess a format by the file name
    tags: dict  # the entry's tags, in the catalog's fields
    label: str  # "artist - title", for messages
    artist_id: str | None = None  # the server's ids of its artist and album (catalog/companion.py)
    album_id: str | None = None


@dataclass(frozen=True)
class Download:
    song: Song
    task: Task  # the analysis task, minus the file (filled once downloaded)


def run_remote(catalog: Catalog, client: SubsonicClient, *, allow_empty: bool = False,
               report: Report | None = None) -> IndexReport:
    """Bring the catalog's tracks from `client`'s server up to date (module docstring). The
    caller holds the library's writer lock and has signed the client in."""
    report = report or silent
    result = IndexReport()
    method = methods.current(catalog)
    songs = list_songs(client, report)
    methods.remember(catalog, method)
    catalog.add_remote_server(str(client.server))
    known = prune(catalog, client.server, songs, allow_empty, result)
    downloads = plan(catalog, method, songs, known, result)
    try:
        with closing(analyse_songs(client, downloads, report, result)) as results:
            for r in results:
                store(catalog, r, known, result)
    except KeyboardInterrupt:
        result.interrupted = True
    # every song's artist and album ids, the unchanged ones' too (a library indexed before they were kept)
    catalog.put_remote_ids([(s.path, s.artist_id, s.album_id, s.suffix.lstrip(".") or None) for s in songs])
    catalog.upkeep()
    return result


# ---------------------------------------------------------------------------------------------
# list, prune, plan
# ---------------------------------------------------------------------------------------------


def list_songs(client: SubsonicClient, report: Report) -> list[Song]:
    songs = [song_of(client.server, entry) for entry in client.songs()]
    report(Phase.SCAN, len(songs), len(songs), f"{len(songs)} songs on {client.server}")
    return songs


def song_of(server: RemoteServer, entry: dict) -> Song:
    """A song entry as planned: its path, declared size and time, and its tags."""
    song_id = str(entry["id"])
    size = entry.get("size")
    size = size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None
    times = [t for t in (timestamp(entry.get("created")), timestamp(entry.get("changed"))) if t is not None]
    suffix = text(entry.get("suffix")) or os.path.splitext(text(entry.get("path")) or "")[1].lstrip(".")
    suffix = "." + suffix.lower() if suffix and suffix.isalnum() and len(suffix) <= 10 else ""
    tags = entry_tags(entry)
    label = f"{tags.get('artist') or '?'} - {tags.get('title') or song_id}"
    return Song(song_id, server.track_path(song_id), size, max(times) if times else None, suffix, tags, label,
                an_id(entry.get("artistId")), an_id(entry.get("albumId")))


def an_id(value) -> str | None:
    """A server's id of an artist or album as kept: text of at most 200 characters, or None."""
    found = text(value)
    return found if found is not None and len(found) <= 200 else None


def timestamp(value) -> float | None:
    """An ISO 8601 time from a song entry as seconds since the epoch; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def entry_tags(entry: dict) -> dict:
    """The catalog's tag fields a Subsonic song entry fills (made sane as tags.py makes a file's)."""
    tags: dict = {}
    for field, name in (("title", "title"), ("artist", "artist"), ("album", "album"),
                        ("albumArtist", "albumartist"), ("genre", "genre"), ("musicBrainzId", "mb_track_id")):
        if (value := text(entry.get(field))) is not None:
            tags[name] = value
    for field, name, most in (("track", "track", 9999), ("discNumber", "disc", 999)):
        n = entry.get(field)
        if isinstance(n, int) and not isinstance(n, bool) and 0 < n <= most:
            tags[name] = n
    year = entry.get("year")
    if isinstance(year, int) and not isinstance(year, bool) and 0 < year < 10000:
        tags["year"] = year  # the file's full date, if any, stays
    genres = entry.get("genres")  # OpenSubsonic: [{"name": ...}]
    if isinstance(genres, list):
        names = [text(g.get("name")) for g in genres if isinstance(g, dict)]
        names = list(dict.fromkeys(n for n in names if n))[:MAX_VALUES]
        if names:
            tags["genres"] = tuple(names)
            tags.setdefault("genre", names[0])
    return tags


def text(value) -> str | None:
    """A JSON value that should be text, as stored (tags.clean); None for null, lists, objects."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return clean(str(value))


def prune(catalog: Catalog, server: RemoteServer, songs: list[Song], allow_empty: bool,
          result: IndexReport) -> dict[str, Track]:
    """Remove this server's tracks whose song is gone; the remaining ones by path."""
    known = {t.path: t for t in catalog.tracks() if server.holds(t.path)}
    present = {s.path for s in songs}
    if not songs and known and not allow_empty:
        result.kept_empty.append((str(server), len(known)))
        return known
    gone = [t.id for p, t in known.items() if p not in present]
    if gone:
        catalog.remove(gone)
        result.removed = len(gone)
        known = {p: t for p, t in known.items() if p in present}
    return known


def plan(catalog: Catalog, method: methods.Method, songs: list[Song], known: dict[str, Track],
         result: IndexReport) -> list[Download]:
    """The songs to download; the others counted as unchanged (their entry's tags stored when
    they changed on the server), or as failed or set aside as before."""
    downloads = []
    no_timbre = catalog.without_timbre() if proximity.applies(method) else set()  # embedded before the timbre companion
    for song in songs:
        t = known.get(song.path)
        retagged = t is not None and any(getattr(t, k) != v for k, v in stored_form(song.tags).items())
        if retagged:  # retagged on the server: its entry's tags stored now, whether or not it is downloaded
            catalog.put_tags(t.id, song.tags)
        same = t is not None and t.size == song.size and t.mtime == song.mtime and song.mtime is not None
        if same and t.status == TrackStatus.FAILED:
            result.failed.append((song.path, t.error))  # tried again once the song changes
            continue
        if same and t.status in SET_ASIDE:
            result.set_aside.append((song.path, t.error))
            continue
        if same and t.model_id == method.id and t.id not in no_timbre:
            result.unchanged += 1
            result.retagged += retagged
            continue
        ok_here = t is not None and t.status == TrackStatus.OK and t.model_id == method.id
        if same and ok_here:  # downloaded once more for its timbre Gaussian alone (no CNN)
            result.retagged += retagged
        downloads.append(Download(song, Task(song.path, method.name, t.content_hash if ok_here else None,
                                             song.size, song.mtime,
                                             known_audio_hash=t.audio_hash if ok_here else None,
                                             timbre_only=ok_here and t.id in no_timbre)))
    return downloads


def stored_form(tags: dict) -> dict:
    """Tags as a Track holds them (lists as tuples), to compare with what is stored."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in tags.items()}


# ---------------------------------------------------------------------------------------------
# analyse: download one, analyse it while the next downloads, delete it
# ---------------------------------------------------------------------------------------------


def analyse_songs(client: SubsonicClient, downloads: list[Download], report: Report,
                  result: IndexReport) -> Iterator[Analysis]:
    """Each planned song's Analysis, in order, named by its track path; progress in bytes."""
    if not downloads:
        return
    total = sum(d.song.size or 0 for d in downloads) or 1
    done = 0
    report(Phase.ANALYSE, 0, total, "")
    remove_stale_temp_files()  # a killed run's downloads
    folder = tempfile.mkdtemp(prefix=temp_prefix())
    one_thread()  # analysed in this process, as workers=0 does: one torch and one BLAS thread
    pool = ThreadPoolExecutor(1, thread_name_prefix="songspace-download")
    stop = threading.Event()  # set when the run ends early: a download under way ends at its next block
    try:
        unreachable = 0
        pending = pool.submit(fetch, client, downloads[0], os.path.join(folder, f"0{downloads[0].song.suffix}"), stop)
        for i, d in enumerate(downloads):
            path, error = pending.result()
            if i + 1 < len(downloads):
                after = downloads[i + 1]
                pending = pool.submit(fetch, client, after, os.path.join(folder, f"{i + 1}{after.song.suffix}"), stop)
            if error is not None:
                unreachable = unreachable + 1 if error.unreachable else 0
                if unreachable >= UNREACHABLE_IN_A_ROW:
                    pending.cancel()
                    left = len(downloads) - i - 1
                    why = f"stopped: {reason(error, client.server, d.song)}"
                    if left:
                        why += f"; {left} song{plural(left)} left for the next run"
                    result.failed.append((str(client.server), why))
                    return
                yield Analysis(d.song.path, Outcome.SKIPPED, error=reason(error, client.server, d.song))
            else:
                unreachable = 0
                try:
                    yield as_song(analyse(replace(d.task, path=path)), d.song)
                finally:
                    os.unlink(path)
            done += d.song.size or 0
            report(Phase.ANALYSE, done, total, d.song.label)
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(folder, ignore_errors=True)


def fetch(client: SubsonicClient, d: Download, path: str,
          stop: threading.Event) -> tuple[str | None, RemoteError | None]:
    """Download one song into the file `path`: (path, None), or (None, why not)."""
    try:
        with open(path, "wb") as f:
            client.download(d.song.id, f, d.song.size, stop)
        return path, None
    except RemoteError as e:
        _unlink(path)
        return None, e
    except OSError as e:  # the temporary folder's disk
        _unlink(path)
        return None, RemoteError(f"cannot write the download to {path} ({e.strerror or e})")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def as_song(r: Analysis, song: Song) -> Analysis:
    """A temporary file's analysis as the song's: its track path, declared size and time, its
    entry's tags over the file's, and the song named in a failure's reason."""
    error = f"{r.error} ({song.label})" if r.error else r.error
    tags = {**r.tags, **song.tags} if r.tags else r.tags  # tags read (OK, RETAGGED, set aside): the entry's win
    return replace(r, path=song.path, size=song.size or r.size, mtime=song.mtime, error=error, tags=tags)


def plural(n: int) -> str:
    return "" if n == 1 else "s"


def reason(e: RemoteError, server: RemoteServer, song: Song) -> str:
    """A download's failure for the song's line (which already names the server and the song)."""
    text = str(e).removeprefix(f"{server}: ").removeprefix(f"song {song.id}: ")
    return f"{text} ({song.label})"
