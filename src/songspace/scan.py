"""Walk music folders: the audio files in them, entries that only look like audio, and the
folders that cannot be read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .audio import AUDIO_EXTENSIONS
from .errors import InputError
from .tags import is_beside_name


def is_audio_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS and not name.startswith("._")


def storable(path: str) -> bool:
    """Whether the catalog can hold this path. SQLite keeps text as UTF-8, and a name made of
    other bytes (an old Latin-1 file name, b'caf\\xe9.wav') reaches Python as a str with lone
    surrogates that no UTF-8 text can carry. Such files are reported on every run, not stored."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(path: str) -> str:
    """A path as it can be printed and sent as JSON: bytes that are not UTF-8 as \\xNN."""
    return path if storable(path) else os.fsencode(path).decode("utf-8", "backslashreplace")


NOT_UTF8 = "file name is not valid UTF-8, so the catalog cannot store it: rename it (e.g. convmv -f latin1 -t utf8)"


def not_a_file(path: str) -> str | None:
    """Why an entry with an audio name is not an audio file (None: it is a regular file, or a
    link to one). A FIFO would block a worker's open() for good; a device is no music either."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"broken symbolic link (to {shown(os.readlink(path))}, which does not exist)"
        return None  # gone since the walk: the worker says so
    except OSError as e:
        return f"cannot read file: {e.strerror or e}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not an audio file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not an audio file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not an audio file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not an audio file"
    return "is not a regular file"


def scan(folders: Iterable[str | Path], unreadable: list[tuple[str, str]] | None = None,
         listings: dict[str, list[str]] | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """(audio file paths, [(path, reason)] for entries that look like audio but are not files:
    directories, FIFOs, sockets, devices, broken links, and names the catalog cannot store).
    Folders that cannot be read are added to `unreadable` as (folder, reason), never skipped
    silently: what they held is unknown, not gone. `listings`, when given, gets each folder
    walked's pictures and .lrc files ({folder: names}: what `tags.beside` looks for).

    A folder given by name must exist; a file given by name is taken whatever its extension.
    Links to folders are followed; a folder reached twice (a link loop, or two links to one
    folder) is walked once."""
    files, bad = [], []
    unreadable = unreadable if unreadable is not None else []
    for folder in folders:
        given = os.path.expanduser(str(folder))
        if not storable(given):
            raise InputError(f"{shown(given)}: {NOT_UTF8}")
        if not os.path.lexists(given):
            raise InputError(f"{given}: no such folder or file")
        folder = Path(given).resolve()
        if folder.is_dir():
            _walk(folder, files, bad, unreadable, listings)
            continue
        why = not_a_file(given)
        if why is not None:
            raise InputError(f"{given}: {why}, nor a folder")
        files.append(str(folder))
    return sorted(set(files)), bad


def _walk(folder: Path, files: list[str], bad: list[tuple[str, str]], unreadable: list[tuple[str, str]],
          listings: dict[str, list[str]] | None) -> None:
    def cannot_read(e: OSError) -> None:
        unreadable.append((shown(e.filename or str(folder)), f"cannot read folder: {e.strerror or e}"))

    walked: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(folder, onerror=cannot_read, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError as e:
            cannot_read(e)
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in walked:  # a link loop, or a second way to a folder walked already
            dirnames[:] = []
            continue
        walked.add((st.st_dev, st.st_ino))
        dirnames.sort()
        if listings is not None:
            listings[dirpath] = [f for f in filenames if is_beside_name(f)]
        for d in dirnames:
            if is_audio_name(d):
                bad.append((os.path.join(dirpath, d), "is a directory, not an audio file"))
        for f in sorted(filenames):
            if not is_audio_name(f):
                continue
            path = os.path.join(dirpath, f)
            why = NOT_UTF8 if not storable(path) else not_a_file(path)
            if why is None:
                files.append(path)
            else:
                bad.append((path, why))


def is_under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
