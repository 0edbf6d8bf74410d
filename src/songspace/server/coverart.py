"""Cover art: the picture embedded in an audio file (mutagen), or a placeholder drawn here.

The placeholder is a small PNG written with zlib alone (no image library, nothing downloaded):
a two-colour diagonal gradient whose colours come from the id, so each album keeps its own.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib

import mutagen
import numpy as np


def embedded_picture(path: str) -> tuple[bytes, str] | None:
    """(image bytes, media type) of the first picture embedded in the file, or None."""
    try:
        f = mutagen.File(path)
    except Exception:  # mutagen raises many types on odd files; a picture is optional
        return None
    if f is None:
        return None
    pictures = getattr(f, "pictures", None)  # FLAC
    if pictures:
        return pictures[0].data, pictures[0].mime or "image/jpeg"
    tags = f.tags
    if tags is None:
        return None
    if hasattr(tags, "getall"):  # ID3 (mp3, aiff, wav)
        apic = tags.getall("APIC")
        if apic:
            return apic[0].data, apic[0].mime or "image/jpeg"
    try:
        covers = tags.get("covr")  # MP4
        if covers:
            data = bytes(covers[0])
            return data, "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        blocks = tags.get("metadata_block_picture")  # Ogg Vorbis / Opus
        if blocks:
            from mutagen.flac import Picture

            picture = Picture(base64.b64decode(blocks[0]))
            return picture.data, picture.mime or "image/jpeg"
    except Exception:
        return None
    return None


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
