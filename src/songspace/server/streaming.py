"""Audio files over HTTP with byte ranges, so a browser's audio element can seek.

Only catalog tracks are served, and only when the file's real path (symlinks resolved) lies
inside one of the library's indexed folders: nothing a request says ever names a file.
One range per request (what players ask for); a multi-range or malformed Range header is
ignored and the whole file sent, as RFC 9110 allows. `stream_response` sends the file itself or,
when the request asks for a format, a bit rate or an offset the file does not fit, a transcode
(transcode.py: no ranges there).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import Response, StreamingResponse

from . import transcode

CHUNK = 64 * 1024

MEDIA_TYPES = {
    ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
    ".m4a": "audio/mp4", ".mp4": "audio/mp4", ".aac": "audio/aac", ".wav": "audio/wav", ".aif": "audio/aiff",
    ".aiff": "audio/aiff", ".wma": "audio/x-ms-wma", ".webm": "audio/webm", ".mka": "audio/x-matroska",
}

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def inside_folders(path: str, folders: list[str]) -> Path | None:
    """The real path of `path` if it is a file inside one of `folders` (also real paths), else
    None: a symlink pointing out of the indexed folders, or a file that vanished."""
    real = os.path.realpath(path)
    for folder in folders:
        root = os.path.realpath(folder)
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return Path(real) if os.path.isfile(real) else None
    return None


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, of a single `bytes=` range; None for the whole file.
    Raises 416 for a range that lies outside the file."""
    m = _RANGE.match((header or "").strip())
    if m is None or m.group(1) == m.group(2) == "":
        return None
    first, last = m.group(1), m.group(2)
    if first == "":  # bytes=-n: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(size - n, 0), size - 1
    first = int(first)
    last = size - 1 if last == "" else min(int(last), size - 1)
    if first >= size or first > last:
        raise _unsatisfiable(size)
    return first, last


def _unsatisfiable(size: int) -> HTTPException:
    return HTTPException(416, f"range not satisfiable: the file has {size} bytes",
                         headers={"Content-Range": f"bytes */{size}"})


def _read(f, first: int, length: int) -> Iterator[bytes]:
    with f:
        f.seek(first)
        while length > 0:
            chunk = f.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk


def audio_response(path: Path, range_header: str | None) -> StreamingResponse:
    """The file, or the requested part of it (206 with Content-Range)."""
    try:
        f = open(path, "rb")
    except OSError:
        raise HTTPException(404, "the track's file cannot be read") from None
    size = os.fstat(f.fileno()).st_size
    try:
        part = byte_range(range_header, size)
    except HTTPException:
        f.close()
        raise
    first, last = part if part is not None else (0, size - 1)
    length = max(last - first + 1, 0)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(length)}
    if part is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    media_type = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return StreamingResponse(_read(f, first, length), status_code=206 if part else 200, headers=headers,
                             media_type=media_type)


def stream_response(path: Path, size: int | None, duration: float | None, range_header: str | None,
                    format: str | None = None, max_bit_rate: int = 0, offset: float = 0.0,
                    defaults: transcode.Defaults | None = None, head: bool = False) -> Response:
    """The file with ranges, or its transcode when `transcode.plan` asks for one. An unknown
    format or one this FFmpeg build lacks, a bad offset, and every slot busy raise a
    SongspaceError (InputError, transcode.Busy) before anything is sent. For a HEAD (`head`) a
    transcode is only planned: its headers, without a length (not known ahead), and no slot taken."""
    p = transcode.plan(path.suffix, transcode.source_kbps(size, duration), format, max_bit_rate, offset,
                       defaults or transcode.Defaults())
    if p is None:
        return audio_response(path, range_header)
    if head:
        return transcode.head_response(p)
    return transcode.transcoded_response(path, p)
