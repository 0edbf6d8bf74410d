"""Tags (title, artist, album, genre) read with mutagen's easy interface.

Tags are a convenience for finding tracks by name; similarity never looks at them. A file
whose tags cannot be read is still indexed, just untagged.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import mutagen

TAG_NAMES = ("title", "artist", "album", "genre")


def read_tags(path: str | Path | BinaryIO) -> dict[str, str]:
    """`path` may also be a seekable binary file object already open (read from its start): the
    indexer reads each file through one open (analysis.py)."""
    try:
        if hasattr(path, "read"):
            path.seek(0)
            f = mutagen.File(path, easy=True)
        else:
            f = mutagen.File(str(path), easy=True)
    except Exception:  # mutagen raises many types on odd files; tags are optional
        return {}
    if f is None or f.tags is None:
        return {}
    tags = {}
    for name in TAG_NAMES:
        try:
            values = f.tags.get(name)
        except (KeyError, ValueError):
            values = None
        if values:
            tags[name] = str(values[0] if isinstance(values, list) else values).strip() or None
    return {k: v for k, v in tags.items() if v}
