"""What the server may tell a client about an error: the message without this machine's
absolute paths (they tell a stranger the user name, the disk layout and where the library
lives). A path becomes its last part ("song.flac")."""

from __future__ import annotations

import re

# A slash at the start, or after a space, quote, parenthesis or '=', then the rest of that word.
# (A path with spaces keeps its words after the first as plain text: still no folder names before.)
ABSOLUTE_PATH = re.compile(r"(?:^|(?<=[\s'\"(=]))/[^\s'\"():;,]*")


def without_paths(message: str) -> str:
    return ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "/", message)
