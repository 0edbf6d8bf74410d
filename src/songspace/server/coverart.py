"""Cover art for a group of songs (an album, an artist, one track), shared by the page's API
and Subsonic's getCoverArt: the picture embedded in the first file that has one, else the folder
image beside it (tags.embedded_picture, and the folder images tags.beside finds), else a
placeholder drawn here.

The placeholder is a small PNG written with zlib alone (no image library, nothing downloaded):
a two-colour diagonal gradient whose colours come from the id, so each album keeps its own.
"""

from __future__ import annotations

import hashlib
import mimetypes
import struct
import zlib

import numpy as np
from fastapi.responses import FileResponse, Response

from ..catalog import Track
from ..tags import embedded_picture
from .streaming import inside_folders

MAX_LOOKED_AT = 20  # songs whose files are opened for a picture: looking further costs more than a placeholder is worth


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def placeholder_png(key: str, size: int = 300) -> bytes:
    """A `size` x `size` PNG gradient between two colours chosen by `key`."""
    h = hashlib.sha1(key.encode()).digest()
    a = np.array([60 + h[0] % 160, 60 + h[1] % 160, 60 + h[2] % 160], dtype=np.float32)
    b = np.array([20 + h[3] % 100, 20 + h[4] % 100, 20 + h[5] % 100], dtype=np.float32)
    ramp = np.add.outer(np.arange(size), np.arange(size)) / max(2 * size - 2, 1)  # 0 at top left, 1 at bottom right
    pixels = (a + (b - a) * ramp[..., None]).astype(np.uint8)
    rows = np.concatenate([np.zeros((size, 1), dtype=np.uint8), pixels.reshape(size, -1)], axis=1)  # filter 0
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes()))
            + _chunk(b"IEND", b""))


def cover_response(key: str, songs: list[Track], folders: list[str], size: int = 300) -> Response:
    """The picture embedded in the first of `songs` that has one, else the folder image beside
    one of them, as it is; else a placeholder of `size` pixels whose colours come from `key`.
    Only files inside the library's `folders` are read."""
    songs = songs[:MAX_LOOKED_AT]
    for t in songs:
        found = (embedded_picture(t.path) if (t.picture_mime or not t.tags_version) and inside_folders(t.path, folders)
                 else None)  # a track not re-read since step 4 may still hold one
        if found:
            return Response(found[0], media_type=found[1], headers={"Cache-Control": "max-age=86400"})
    for t in songs:
        image = inside_folders(t.folder_image, folders) if t.folder_image else None
        if image is not None:
            return FileResponse(image, media_type=mimetypes.guess_type(image)[0] or "image/jpeg",
                                headers={"Cache-Control": "max-age=86400"})
    return Response(placeholder_png(key, size), media_type="image/png", headers={"Cache-Control": "max-age=3600"})
