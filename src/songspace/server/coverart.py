"""Cover art: pictures scaled to the size a client asks for (Pillow), and a placeholder drawn here
(the pictures of the files themselves: tags.embedded_picture and the folder images tags.beside finds).

The placeholder is a small PNG written with zlib alone (no image library, nothing downloaded):
a two-colour diagonal gradient whose colours come from the id, so each album keeps its own.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
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


MAX_PIXELS = 40_000_000  # a picture larger than this (a decompression bomb, a scan at 600 dpi) is sent as it is


def scaled(data: bytes, size: int) -> tuple[bytes, str] | None:
    """The picture in `data` scaled down so that its longer side is `size` pixels (never up), as
    JPEG (PNG when it has transparency), with its media type; None when it is already that small
    or cannot be read as a picture (the caller then sends it as it is)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_PIXELS or max(im.width, im.height) <= size:
                    return None
                im.draft("RGB", (size, size))  # a JPEG decodes at a reduced scale: fast, little memory
                im = im.copy()
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if im.mode in ("RGBA", "LA", "P") and ("A" in im.mode or "transparency" in im.info):
            im.save(out, "PNG", optimize=True)
            return out.getvalue(), "image/png"
        im.convert("RGB").save(out, "JPEG", quality=88)
        return out.getvalue(), "image/jpeg"
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError, SyntaxError):
        return None
