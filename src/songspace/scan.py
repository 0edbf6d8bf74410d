"""Walk music folders: the audio files in them, and entries that only look like audio."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .audio import AUDIO_EXTENSIONS
from .errors import InputError


def is_audio_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS and not name.startswith("._")


def scan(folders: Iterable[str | Path]) -> tuple[list[str], list[tuple[str, str]]]:
    """(audio file paths, [(path, reason)] for entries that look like audio but are not files).

    A folder given by name must exist; a file given by name is taken whatever its extension."""
    files, bad = [], []
    for folder in folders:
        folder = Path(folder).expanduser().resolve()
        if folder.is_file():
            files.append(str(folder))
            continue
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder")
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for d in dirnames:
                if is_audio_name(d):
                    bad.append((os.path.join(dirpath, d), "is a directory, not an audio file"))
            files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if is_audio_name(f))
    return sorted(set(files)), bad


def is_under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
