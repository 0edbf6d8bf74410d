"""The vector index: incremental updates from the change log, exact removal, approximate search
that keeps its recall, and a saved index that is never trusted blindly."""

import json
import logging
import subprocess
import sys
import textwrap

import faiss
import numpy as np
import pytest

from songspace.catalog import Catalog
from songspace.query import Searcher
from songspace.recommend.radio import radio
from songspace.recommend.similar import Manners, similar
from songspace.vectors import INDEX_FILE, STAMP_FILE, VectorIndex

RAW = Manners(collapse_copies=False)

MODEL = "test-model"


def clustered(n, dim=64, seed=0):
    """Unit vectors in n/50 tight clusters, each with a few directions of its own."""
    rng = np.random.default_rng(seed)
    k = max(4, n // 50)
    centres = rng.standard_normal((k, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = rng.standard_normal((k, dim, 4)) / np.sqrt(dim)
    labels = rng.integers(0, k, n)
    x = centres[labels] + np.einsum("ndr,nr->nd", bases[labels], rng.standard_normal((n, 4)) * 0.4)
    x += rng.standard_normal((n, dim)) * 0.1 / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def put(cat, name, vector, model=MODEL):
    return cat.put_ok(f"/music/{name}.flac", size=1, mtime=1.0, content_hash=name, duration=60.0,
                      tags={"artist": f"artist {name}", "title": name}, model_id=model, vector=vector)


@pytest.fixture
def catalog(tmp_path):
    """A writer catalog of 400 tracks of clustered 64-d vectors (ids 1..400 = rows 0..399)."""
    cat = Catalog(tmp_path / "catalog.sqlite")
    vectors = clustered(400)
    for i, v in enumerate(vectors):
        put(cat, f"t{i}", v)
    yield cat, vectors
    cat.close()


def exact_top(vectors, ids, queries, k):
    _, rows = faiss.knn(np.ascontiguousarray(queries), np.ascontiguousarray(vectors), k, metric=faiss.METRIC_INNER_PRODUCT)
    return ids[rows]


@pytest.mark.parametrize("exact_limit", [10**6, 100], ids=["exact", "ivf"])
def test_add_reembed_remove_are_applied_in_place(catalog, exact_limit):
    cat, vectors = catalog
    s = Searcher(cat.path, exact_limit=exact_limit)
    index = s.space().index
    assert index.kind == ("exact" if exact_limit > 400 else "ivf")
    builds = VectorIndex.builds

    new_vector = clustered(1, seed=7)[0]
    added = put(cat, "new", new_vector)
    reembedded_vector = -vectors[9]
    assert put(cat, "t9", reembedded_vector) == 10  # same path: same id, new vector
    cat.remove([20, 21])
    cat.put_failed("/music/t30.flac", "now undecodable")

    assert len(s) == 400 + 1 - 2 - 1
    assert VectorIndex.builds == builds and s.space().index is index  # no rebuild
    assert s.search(new_vector, 1)[0][0][0] == added
    np.testing.assert_allclose(s.vectors([10])[0], reembedded_vector, atol=1e-6)
    assert s.search(reembedded_vector, 1)[0][0][0] == 10
    assert not {20, 21, 31} & set(s.ids().tolist())
    for gone in (21, 31):  # their own vectors find everything but them
        assert gone not in [i for i, _ in s.search(vectors[gone - 1], 50)[0]]


def test_removed_tracks_never_returned_before_compaction(catalog):
    cat, vectors = catalog
    s = Searcher(cat.path, exact_limit=100)
    index = s.space().index
    # Remove the 60 nearest neighbours of track 1, a little below the compaction point.
    near = [i for i, _ in s.search(vectors[0], 61)[0] if i != 1]
    cat.remove(near)
    assert s.space().index is index and index.changed < index.built_n // 2
    hits = s.search(vectors[0], 100)[0]
    assert len(hits) == 100 and not set(near) & {i for i, _ in hits}
    assert not set(near) & {m.track.id for m in similar(s, 1, 50, RAW)}
    assert not set(near) & {m.track.id for m in radio(s, [1], n=40)}
    assert not set(near) & set(s.ids().tolist()) and len(s) == 340
    with pytest.raises(LookupError, match="not searchable"):
        s.vectors([near[0]])


def test_compaction_rebuilds_once_changes_pile_up(catalog):
    cat, vectors = catalog
    s = Searcher(cat.path, exact_limit=100)
    index = s.space().index
    cat.remove(list(range(1, 251)))  # more than half of the build: the cells are retrained
    assert s.space().index is not index and len(s) == 150
    assert s.space().index.changed == 0 and min(s.ids()) == 251


def test_approximate_search_keeps_recall(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    vectors = clustered(3000, dim=128, seed=3)
    ids = np.array([put(cat, f"t{i}", v) for i, v in enumerate(vectors)])
    s = Searcher(cat.path, exact_limit=500)
    assert s.space().index.kind == "ivf"
    queries = vectors[np.random.default_rng(0).choice(3000, 300, replace=False)]
    truth = exact_top(vectors, ids, queries, 10)
    found = s.search(queries, 10)
    recall = np.mean([len(set(t) & {i for i, _ in f}) / 10 for t, f in zip(truth, found)])
    assert recall >= 0.95
    # An exclude set is honoured exactly and still fills k.
    excluded = set(truth[0][:5].tolist())
    hits = s.search(queries[0], 10, exclude=excluded)[0]
    assert len(hits) == 10 and not excluded & {i for i, _ in hits}
    cat.close()


def test_saved_index_is_loaded_and_caught_up(catalog):
    cat, vectors = catalog
    Searcher(cat.path, exact_limit=100).space()
    assert (cat.path.parent / INDEX_FILE).exists() and (cat.path.parent / STAMP_FILE).exists()
    added = put(cat, "later", clustered(1, seed=11)[0])
    cat.remove([5])
    builds = VectorIndex.builds
    s = Searcher(cat.path, exact_limit=100)  # a fresh process would do the same
    assert len(s) == 400 and VectorIndex.builds == builds  # loaded, the two changes applied
    assert added in s.ids() and 5 not in s.ids()


def corrupt_truncate(folder):
    data = (folder / INDEX_FILE).read_bytes()
    (folder / INDEX_FILE).write_bytes(data[: len(data) // 2])


def corrupt_garbage(folder):
    (folder / INDEX_FILE).write_bytes(b"\x00garbage" * 1000)


def corrupt_flip(folder):
    data = bytearray((folder / INDEX_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / INDEX_FILE).write_bytes(bytes(data))


def corrupt_stamp(folder):
    (folder / STAMP_FILE).write_text("{not json")


def stale_count(folder):
    stamp = json.loads((folder / STAMP_FILE).read_text())
    stamp["count"] += 1
    (folder / STAMP_FILE).write_text(json.dumps(stamp))


@pytest.mark.parametrize("damage", [corrupt_truncate, corrupt_garbage, corrupt_flip, corrupt_stamp, stale_count])
def test_damaged_index_is_rebuilt_with_a_warning(catalog, damage, caplog):
    cat, vectors = catalog
    Searcher(cat.path, exact_limit=100).space()
    damage(cat.path.parent)
    builds = VectorIndex.builds
    with caplog.at_level(logging.WARNING, logger="songspace"):
        s = Searcher(cat.path, exact_limit=100)
        assert len(s) == 400
    assert VectorIndex.builds == builds + 1
    assert "cannot be trusted" in caplog.text and "rebuilding it from the catalog" in caplog.text
    assert s.search(vectors[0], 1)[0][0][0] == 1
    np.testing.assert_allclose(s.vectors([7])[0], vectors[6], atol=1e-6)
    # The rebuilt index was saved: the next Searcher trusts it again.
    caplog.clear()
    assert len(Searcher(cat.path, exact_limit=100)) == 400 and VectorIndex.builds == builds + 1
    assert "cannot be trusted" not in caplog.text


def test_an_index_saved_after_the_catalog_changed_behind_it_is_not_trusted(catalog, caplog):
    cat, vectors = catalog
    Searcher(cat.path, exact_limit=100).space()
    saved = {f: (cat.path.parent / f).read_bytes() for f in (INDEX_FILE, STAMP_FILE)}
    # A catalog restored from an older backup: the saved index claims changes it never saw.
    stamp = json.loads(saved[STAMP_FILE])
    stamp["seq"] = cat.last_change() + 5
    (cat.path.parent / STAMP_FILE).write_text(json.dumps(stamp))
    with caplog.at_level(logging.WARNING, logger="songspace"):
        assert len(Searcher(cat.path, exact_limit=100)) == 400
    assert "newer than the catalog" in caplog.text


KILL_DURING_SAVE = textwrap.dedent("""
    import os, signal, sys
    from songspace.catalog import Catalog
    from songspace.query import Searcher
    import songspace.vectors as vectors

    path, when = sys.argv[1], sys.argv[2]
    s = Searcher(path, exact_limit=100)
    s.space()  # builds and saves a good pair
    cat = Catalog(path)
    cat.remove([1, 2, 3])
    s.space()
    calls = []
    real_replace = os.replace
    def dying_replace(src, dst):
        calls.append(dst)
        if (when == "before-index" and len(calls) == 1) or (when == "between" and len(calls) == 2):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)
    vectors.os.replace = dying_replace
    s.space().index.save(os.path.dirname(path))
""")


@pytest.mark.parametrize("when", ["before-index", "between"])
def test_kill_during_save_leaves_answers_correct(catalog, when, tmp_path):
    cat, vectors = catalog
    script = tmp_path / "kill.py"
    script.write_text(KILL_DURING_SAVE)
    proc = subprocess.run([sys.executable, str(script), str(cat.path), when], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert list(cat.path.parent.glob("vectors.*.tmp-*"))  # the dead process's temporary file is left
    s = Searcher(cat.path, exact_limit=100)
    assert len(s) == 397 and not {1, 2, 3} & set(s.ids().tolist())
    assert s.search(vectors[3], 1)[0][0][0] == 4
    s._save(s.space().index)
    assert not list(cat.path.parent.glob("vectors.*.tmp-*"))  # cleaned up by the next save


def test_model_switch_is_a_new_index(catalog):
    cat, vectors = catalog
    s = Searcher(cat.path)
    assert s.model_id == MODEL
    other = clustered(401, dim=32, seed=5)
    for i, v in enumerate(other):  # a new model re-embeds every track (and one more)
        put(cat, f"t{i}", v, model="other-model")
    builds = VectorIndex.builds
    assert s.model_id == "other-model" and len(s) == 401 and VectorIndex.builds == builds + 1
    np.testing.assert_allclose(s.vectors([1])[0], other[0], atol=1e-6)


def test_an_empty_library_then_tracks(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    s = Searcher(cat.path)
    assert len(s) == 0 and s.search(np.ones(8, np.float32), 3) == [[]]
    vector = clustered(1, dim=8)[0]
    first = put(cat, "a", vector)
    assert len(s) == 1 and s.search(vector, 3)[0][0][0] == first
    cat.close()
