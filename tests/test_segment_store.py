"""The segment sidecar: compact records, crash safety, migration from BLOB rows, no stale segments."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from songspace import segment_store as ss
from songspace.catalog import Catalog

DIM = 256
HOP = 1.536


def segments(n: int, seed: int, rank: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """(starts on the 1.536-s grid with an end-aligned last one, (n, DIM) unit vectors with the
    low-rank structure real segment vectors have)."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(0).standard_normal((rank, DIM))
    x = rng.standard_normal((n, rank)) @ basis + 0.3 * rng.standard_normal((n, DIM))
    starts = (np.arange(n) * HOP).astype(np.float32)
    starts[-1] -= 0.4  # the last patch ends where the track ends, off the grid
    return starts, (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def put(cat: Catalog, name: str, n: int, seed: int, model: str = "m1", with_segments: bool = True) -> int:
    starts, vecs = segments(n, seed)
    return cat.put_ok(f"/music/{name}.mp3", size=1, mtime=1.0, content_hash=name, duration=float(n * HOP), tags={},
                      model_id=model, vector=vecs.mean(0) / np.linalg.norm(vecs.mean(0)),
                      segments=vecs if with_segments else None, segment_starts=starts if with_segments else None)


def fill(cat: Catalog, tracks: int = 30, n: int = 156, model: str = "m1") -> list[int]:
    """Enough segments for the model's projection to be fitted by `upkeep` (30 x 156 > FIT_SEGMENTS)."""
    return [put(cat, f"{model}-{i}", n, seed=i, model=model) for i in range(tracks)]


# -- records -------------------------------------------------------------------------------------


def test_round_trip_full_and_projected():
    starts, vecs = segments(156, 1)
    got_starts, got = ss.decode(ss.encode(7, starts, vecs, None), 7)
    assert np.abs(got_starts - starts).max() <= 1e-3  # grid starts, stated tolerance
    assert np.abs(got - vecs).max() <= 1e-3  # float16
    proj = ss.fit_projection(np.concatenate([segments(156, s)[1] for s in range(30)]))
    assert proj.shape == (ss.DIMS, DIM) and np.allclose(proj @ proj.T, np.eye(ss.DIMS), atol=1e-5)
    got_starts, got = ss.decode(ss.encode(7, starts, vecs, proj), 7)
    assert np.abs(got_starts - starts).max() <= 1e-3
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    # int8 in the projected space: each segment within cosine 0.999 of its exact projection
    assert (np.sum(got * ss.project(vecs, proj), axis=1) >= 0.999).all()
    # cosines between segments, as the stored ones are compared, stay those of the originals
    exact = vecs @ vecs.T
    assert np.abs(got @ got.T - exact).max() < 0.05
    # irregular starts are kept as they are
    odd = np.sort(np.random.default_rng(3).uniform(0, 100, 156)).astype(np.float32)
    assert np.array_equal(ss.decode(ss.encode(7, odd, vecs, proj), 7)[0], odd)


def test_projected_track_fits_in_10_kb():
    starts, vecs = segments(156, 1)  # a 4-minute track
    proj = ss.fit_projection(vecs)
    record = ss.encode(1, starts, vecs, proj)
    assert len(record) <= 10_240 and len(record) == ss.HEADER.size + 156 * ss.DIMS


def test_a_record_that_is_not_what_the_row_says_is_refused():
    starts, vecs = segments(20, 1)
    record = ss.encode(5, starts, vecs, None)
    with pytest.raises(ss.SegmentStoreError):
        ss.decode(record[:-10], 5)  # cut short
    with pytest.raises(ss.SegmentStoreError):
        ss.decode(record, 6)  # another track's bytes
    flipped = bytearray(record)
    flipped[-3] ^= 0xFF
    with pytest.raises(ss.SegmentStoreError):
        ss.decode(bytes(flipped), 5)  # overwritten


# -- through the catalog -----------------------------------------------------------------------------


def test_projection_fitted_once_enough_segments_and_size_per_track(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    first = put(cat, "first", 156, seed=100)
    before = cat.segments_of([first])[first][1]
    assert cat.segment_projection("m1") is None and before.shape == (156, DIM)  # full until fitted
    ids = fill(cat)
    assert cat.segment_projection("m1") is None  # a write never fits: the indexer's upkeep does, between writes
    cat.upkeep()
    proj = cat.segment_projection("m1")
    assert proj is not None and proj.shape == (ss.DIMS, DIM)
    found = cat.segments_of([first, *ids], "m1")
    assert set(found) == {first, *ids}
    starts, vecs = found[first]
    original_starts, original = segments(156, 100)
    assert vecs.shape == (156, ss.DIMS) and np.abs(starts - original_starts).max() <= 1e-3
    assert (np.sum(vecs * ss.project(original, proj), axis=1) >= 0.999).all()
    sizes = cat.db.execute("SELECT nbytes FROM segment_records WHERE codec = ?", (ss.I8,)).fetchall()
    assert len(sizes) == 31 and max(s for (s,) in sizes) <= 10_240
    assert cat.db.execute("SELECT COUNT(*) FROM embeddings WHERE segments IS NOT NULL").fetchone()[0] == 0
    cat.compact_segments(force=True)  # the full-precision records were re-encoded: dead now
    assert (tmp_path / cat.get_meta("segments_file")).stat().st_size <= 31 * 10_240 + 8
    assert set(cat.segments_of([first, *ids], "m1")) == {first, *ids}
    # readers in other connections see the same
    ro = Catalog(tmp_path / "catalog.sqlite", readonly=True)
    assert np.array_equal(ro.segments_of([first], "m1")[first][1], vecs)
    ro.close()
    cat.close()


def test_truncated_tail_and_row_past_the_end_are_detected(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    a, b = put(cat, "a", 40, seed=1), put(cat, "b", 40, seed=2)
    sidecar = tmp_path / ss.DEFAULT_FILE
    with open(sidecar, "r+b") as f:  # b's record torn, as by a crash mid-write (were it committed)
        f.truncate(sidecar.stat().st_size - 100)
    with pytest.warns(UserWarning, match="track"):
        found = cat.segments_of([a, b])
    assert set(found) == {a}
    cat.db.execute("UPDATE segment_records SET offset = offset + 1000000 WHERE track_id = ?", (a,))
    with pytest.warns(UserWarning):
        assert cat.segments_of([a]) == {}
    checked, problems = cat.check_segments()
    assert checked == 2 and len(problems) == 2
    # an orphaned tail (appended, never committed) is harmless: the next put goes after it
    with open(sidecar, "ab") as f:
        f.write(b"\x00garbage")
    c = put(cat, "c", 40, seed=3)
    assert np.allclose(cat.segments_of([c])[c][1], segments(40, 3)[1], atol=1e-3)
    # compaction drops what cannot be read back, keeps the rest
    _, _, dropped = cat.compact_segments(force=True)
    assert dropped == [a, b] and set(cat.segments_of([a, b, c])) == {c}
    cat.close()


def test_reembedding_and_removal_leave_no_stale_segments(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    t = put(cat, "x", 30, seed=1)
    assert put(cat, "x", 12, seed=2) == t  # re-embedded: other audio now
    starts, vecs = cat.segments_of([t])[t]
    assert len(starts) == 12 and np.allclose(vecs, segments(12, 2)[1], atol=1e-3)
    put(cat, "x", 12, seed=3, with_segments=False)  # a method that stores none (MFCC)
    assert cat.segments_of([t]) == {} and cat.segments(t) is None
    u = put(cat, "y", 20, seed=4)
    cat.remove([u])
    assert cat.segments_of([u]) == {}
    assert cat.db.execute("SELECT COUNT(*) FROM segment_records").fetchone()[0] == 0
    cat.close()


def test_model_switch(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    ids = fill(cat, model="old")
    cat.upkeep()
    assert cat.segment_projection("old") is not None
    new = put(cat, "old-0", 50, seed=9, model="new")  # the same file, embedded by another model
    assert new == ids[0]
    assert new not in cat.segments_of(ids, "old") and len(cat.segments_of(ids, "old")) == len(ids) - 1
    starts, vecs = cat.segments_of([new], "new")[new]
    assert cat.segment_projection("new") is None and vecs.shape == (50, DIM)  # not under the old model's projection
    assert np.allclose(vecs, segments(50, 9)[1], atol=1e-3)
    cat.close()


# -- migration ---------------------------------------------------------------------------------------


OLD_SCHEMA = """
CREATE TABLE tracks (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER, mtime REAL, content_hash TEXT,
    duration REAL, title TEXT, artist TEXT, album TEXT, genre TEXT, status TEXT NOT NULL, error TEXT, updated_at REAL NOT NULL);
CREATE TABLE embeddings (track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE, model_id TEXT NOT NULL,
    vector BLOB NOT NULL, segments BLOB, segment_starts BLOB);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('generation', '7');
"""


def old_catalog(path, tracks: int = 30) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A catalog as songspace wrote it before the sidecar: segments as float16 BLOB rows."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    written = {}
    for i in range(1, tracks + 1):
        starts, vecs = segments(156, seed=i)
        db.execute("INSERT INTO tracks VALUES (?, ?, 1, 1.0, 'h', 240.0, NULL, NULL, NULL, NULL, 'ok', NULL, 5.0)",
                   (i, f"/music/{i}.mp3"))
        db.execute("INSERT INTO embeddings VALUES (?, 'm1', ?, ?, ?)", (i, vecs.mean(0).tobytes(),
                   vecs.astype(np.float16).tobytes(), starts.tobytes()))
        written[i] = starts, vecs.astype(np.float16).astype(np.float32)
    db.execute("INSERT INTO tracks VALUES (99, '/music/mfcc.mp3', 1, 1.0, 'h', 240.0, NULL, NULL, NULL, NULL, 'ok', NULL, 5.0)")
    db.execute("INSERT INTO embeddings VALUES (99, 'mfcc', ?, x'', x'')", (np.ones(4, np.float32).tobytes(),))
    db.commit()
    db.close()
    return written


def test_migration_moves_blobs_into_the_sidecar(tmp_path):
    path = tmp_path / "catalog.sqlite"
    written = old_catalog(path)
    ro = Catalog(path, readonly=True)  # a reader of a catalog not yet migrated reads the BLOBs
    assert np.array_equal(ro.segments_of([1])[1][1], written[1][1])
    ro.close()
    size_before = path.stat().st_size

    cat = Catalog(path)  # the writer migrates on open
    assert cat.db.execute("SELECT COUNT(*) FROM embeddings WHERE segments IS NOT NULL").fetchone()[0] == 0
    assert cat.db.execute("SELECT MAX(updated_at) FROM tracks").fetchone()[0] == 5.0  # nothing analysed again
    assert cat.last_change() == 0 and cat.generation == 8  # no track changed; segment caches reload
    proj = cat.segment_projection("m1")
    assert proj is not None  # 30 x 156 segments: enough to fit the projection from
    found = cat.segments_of(list(written) + [99], "m1")
    assert set(found) == set(written)
    for i, (starts, vecs) in written.items():
        assert np.abs(found[i][0] - starts).max() <= 1e-3
        assert (np.sum(found[i][1] * ss.project(vecs, proj), axis=1) >= 0.999).all()
    assert cat.segments_of([99]) == {}
    cat.close()
    assert path.stat().st_size < size_before / 4  # vacuumed: the BLOBs' space given back
    cat = Catalog(path)  # opening again migrates nothing more
    assert set(cat.segments_of(list(written), "m1")) == set(written)
    assert cat.generation == 8
    cat.close()


def test_an_index_run_fits_the_projection_after_its_writes(music, tmp_path, monkeypatch):
    from songspace import Library

    monkeypatch.setattr(ss, "FIT_SEGMENTS", 20)  # the demo music's ~60 segments are then enough
    with Library(tmp_path / "lib") as lib:
        lib.index([music], workers=0)
        cat = lib.catalog
        assert cat.segment_projection(lib.model_id) is not None
        codecs = cat.db.execute("SELECT codec, COUNT(*) FROM segment_records GROUP BY codec").fetchall()
        assert codecs == [(ss.I8, 12)]  # every track's segments re-encoded under it
        assert len(cat.segments_of([t.id for t in cat.ok_tracks()], lib.model_id)) == 12
