"""The segment sidecar: every track's segment vectors, compact, in one append-only file beside the
catalog, memory-mapped for reading.

Segments (one unit vector per few-second patch, used by duplicates, identify and explain) were
80 KB per 4-minute track as float16 rows inside SQLite. Here each segment is projected onto the
top `DIMS` directions of the model's own segments (an uncentred PCA: the projection that best
keeps inner products) and stored as int8 with one scale per segment. Cosines are all that is ever
asked of them, so the scale is not even stored: vectors are renormalised on read. A 4-minute
track (~156 segments) costs 64 bytes a segment plus a 32-byte header: ~10 KB.

A projection needs segments to be fitted from, so a model's first segments (at least
`FIT_SEGMENTS`) are stored as float16 in full; then the catalog fits the projection and re-encodes
them (`Catalog.upkeep`, between the indexer's writes). Which projection belongs to which model is
the catalog's business (a row per model id, in SQLite); this module only knows the bytes.

A record: a 32-byte header (magic, track id, count, dims, codec, how starts are kept, CRC-32 of
header and payload, hop and last start), then the starts (float32, only when they are not on a
regular grid), then the vectors. Every read checks magic, track id, size and CRC, so bytes past
the end, a torn append or a stale offset are detected, never returned as vectors. The catalog
keeps (track id → offset, size); bytes are appended and fsynced before that row commits, so a
row never points at missing bytes, and bytes no row points at are dead: `compact` copies the
live records into a new file.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import SongspaceError

DEFAULT_FILE = "segments.bin"  # beside the catalog; a compaction writes segments.<n>.bin
FILE_MAGIC = b"SONGSEG1"
RECORD_MAGIC = b"SEGR"
HEADER = struct.Struct("<4sqIHBBIff")  # magic, track id, n, dim, codec, starts kind, crc, hop, last start
assert HEADER.size == 32
F16, I8 = 1, 2  # codecs: float16 in full (before the projection is fitted), int8 projected
GRID, RAW = 1, 2  # starts: i * hop with the last one given (the usual case), or float32 each
DIMS = 64  # projected dimensions: 64 bytes a segment
FIT_SEGMENTS = 4096  # a model's segments stored in full before its projection is fitted from them
GRID_TOLERANCE = 1e-3  # seconds: starts this close to the grid are kept as the grid


class SegmentStoreError(SongspaceError):
    """A record that is not what the catalog says it is (truncated, overwritten, stale)."""


# -- the projection ----------------------------------------------------------------------------


def fit_projection(vectors: np.ndarray, dims: int = DIMS) -> np.ndarray:
    """(dims, dim) float32 orthonormal rows: the top eigenvectors of the segments' second-moment
    matrix (uncentred: inner products, not variances, are what must survive)."""
    x = np.asarray(vectors, dtype=np.float64)
    dims = min(dims, x.shape[1])
    w, v = np.linalg.eigh(x.T @ x)
    return np.ascontiguousarray(v[:, np.argsort(w)[::-1][:dims]].T, dtype=np.float32)


def project(vectors: np.ndarray, projection: np.ndarray | None) -> np.ndarray:
    """Vectors in the space stored segments are compared in: projected (when there is a
    projection) and renormalised, (n, dims) float32."""
    y = np.asarray(vectors, dtype=np.float32)
    if projection is not None:
        y = y @ projection.T
    return _unit(y)


def _unit(y: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(y, axis=1, keepdims=True)
    return (y / np.where(norms > 0, norms, 1)).astype(np.float32)


# -- one record --------------------------------------------------------------------------------


def encode(track_id: int, starts: np.ndarray, vectors: np.ndarray, projection: np.ndarray | None) -> bytes:
    """A record's bytes: int8 projected when `projection` is given, else float16 in full."""
    starts = np.asarray(starts, dtype=np.float32)
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(starts)
    if vectors.shape[0] != n:
        raise ValueError(f"{n} starts but {vectors.shape[0]} vectors")
    if projection is None:
        codec, body = F16, vectors.astype(np.float16)
    else:
        y = vectors @ projection.T
        scale = np.abs(y).max(axis=1, keepdims=True) / 127.0
        codec, body = I8, np.rint(y / np.where(scale > 0, scale, 1)).astype(np.int8)
    dim = body.shape[1] if n else 0
    hop = float(starts[1] - starts[0]) if n > 1 else 0.0
    grid = n > 0 and abs(float(starts[0])) <= GRID_TOLERANCE and bool(
        np.all(np.abs(starts[:-1] - np.arange(n - 1) * hop) <= GRID_TOLERANCE))
    payload = (b"" if grid else starts.tobytes()) + body.tobytes()
    last = float(starts[-1]) if n else 0.0
    header = HEADER.pack(RECORD_MAGIC, int(track_id), n, dim, codec, GRID if grid else RAW, 0, hop, last)
    crc = zlib.crc32(payload, zlib.crc32(header))
    return HEADER.pack(RECORD_MAGIC, int(track_id), n, dim, codec, GRID if grid else RAW, crc, hop, last) + payload


def decode(buf, track_id: int, projection: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(starts float32 seconds, (n, dim) float32 unit vectors) of one record; SegmentStoreError
    when the bytes are not a sound record of `track_id`."""
    buf = memoryview(buf)
    if len(buf) < HEADER.size:
        raise SegmentStoreError(f"track {track_id}: segment record cut short ({len(buf)} bytes)")
    magic, tid, n, dim, codec, kind, crc, hop, last = HEADER.unpack_from(buf)
    if magic != RECORD_MAGIC or tid != track_id or codec not in (F16, I8) or kind not in (GRID, RAW):
        raise SegmentStoreError(f"track {track_id}: no segment record of it at this offset")
    width = {F16: 2, I8: 1}[codec]
    size = HEADER.size + (4 * n if kind == RAW else 0) + n * dim * width
    if len(buf) != size:
        raise SegmentStoreError(f"track {track_id}: segment record is {len(buf)} bytes, its header says {size}")
    payload = buf[HEADER.size:]
    header = HEADER.pack(magic, tid, n, dim, codec, kind, 0, hop, last)
    if zlib.crc32(payload, zlib.crc32(header)) != crc:
        raise SegmentStoreError(f"track {track_id}: segment record damaged (CRC mismatch)")
    if kind == GRID:
        starts = (np.arange(n, dtype=np.float64) * np.float64(np.float32(hop))).astype(np.float32)
        if n:
            starts[-1] = last
        body = payload
    else:
        starts = np.frombuffer(payload[: 4 * n], dtype=np.float32).copy()
        body = payload[4 * n:]
    vectors = np.frombuffer(body, dtype=np.float16 if codec == F16 else np.int8).reshape(n, dim).astype(np.float32)
    if codec == I8 and projection is not None and projection.shape[0] != dim:
        raise SegmentStoreError(f"track {track_id}: record has {dim} dims, the projection {projection.shape[0]}")
    return starts, _unit(vectors) if codec == I8 else vectors


# -- the file ----------------------------------------------------------------------------------


class SegmentFile:
    """One sidecar file: appended by the single writer, memory-mapped by readers (re-mapped when
    a record lies past what was mapped: the file grew since)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._map: np.memmap | None = None

    def append(self, records: list[bytes]) -> list[tuple[int, int]]:
        """Append records, fsync, and return their (offset, size): only then may a catalog row
        point at them."""
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "ab") as f:
            if new:
                f.write(FILE_MAGIC)
            offset = f.tell()
            found = []
            for r in records:
                found.append((offset, len(r)))
                offset += len(r)
            f.write(b"".join(records))
            f.flush()
            os.fsync(f.fileno())
        return found

    def read(self, offset: int, size: int, track_id: int, projection: np.ndarray | None = None):
        """(starts, vectors) of the record at offset; SegmentStoreError if it is not there."""
        if offset < len(FILE_MAGIC) or size < HEADER.size:
            raise SegmentStoreError(f"track {track_id}: bad segment offset {offset} ({size} bytes)")
        m = self._mapped(offset + size)
        if m is None:
            raise SegmentStoreError(f"track {track_id}: segment record at {offset} lies past the end of {self.path}")
        return decode(m[offset: offset + size], track_id, projection)

    def _mapped(self, end: int):
        if self._map is None or len(self._map) < end:
            self._map = None
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                return None
            if size < end:
                return None
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r", shape=(size,))
        return self._map

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def close(self) -> None:
        self._map = None


def compact(source: SegmentFile, target: Path, live: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Copy the live records [(track id, offset, size)] into a new file at `target` (written to a
    temporary name, fsynced, renamed); their new [(track id, offset, size)]. Records that no
    longer read back are left out (the caller's rows for them are dropped)."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    out, at = [], len(FILE_MAGIC)
    with open(tmp, "wb") as f:  # record by record: a million tracks' records never sit in memory
        f.write(FILE_MAGIC)
        for track_id, offset, size in live:
            m = source._mapped(offset + size)
            if m is None:
                continue
            raw = bytes(m[offset: offset + size])
            try:
                decode(raw, track_id)
            except SegmentStoreError:
                continue
            f.write(raw)
            out.append((track_id, at, len(raw)))
            at += len(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return out
