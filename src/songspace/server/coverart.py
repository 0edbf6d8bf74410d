"""Cover art: a placeholder drawn here (the pictures of the files themselves: tags.embedded_picture
and the folder images tags.beside finds).

The placeholder is a small PNG written with zlib alone (no image library, nothing downloaded):
a two-colour diagonal gradient whose colours come from the id, so each album keeps its own.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

import numpy as np


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
