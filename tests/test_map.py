"""The library map: a 2-D layout of the searched vectors, stored in the catalog (map.py, map_layout.py)."""

from __future__ import annotations

import numpy as np
import pytest

from songspace import Library
from songspace import map as songmap


def test_map_is_stored_once_and_read_without_computing(indexed_library, monkeypatch):
    with Library.open(indexed_library) as lib:
        assert songmap.needs_refresh(lib.searcher())
        note = songmap.refresh(lib.searcher(), lib.catalog)
        assert "12 tracks laid out by PCA" in note and not songmap.needs_refresh(lib.searcher())
        first = songmap.library_map(lib.searcher())
        assert first["count"] == 12 and first["method"] == "pca"  # 12 tracks: too few for UMAP
        assert first["stored"] and first["final"]
        xy = np.array([(p["x"], p["y"]) for p in first["points"]])
        assert xy.min() >= 0 and xy.max() <= 1 and len({p["id"] for p in first["points"]}) == 12
        assert first["stamp"] == f"{lib.searcher().model_id}@{lib.catalog.generation}"
        assert lib.catalog.get_meta("map") == first["stamp"] and lib.catalog.map_method() == "pca"
        assert {"artist", "album", "genre", "title", "predicted"} <= set(first["points"][0])

    def no_layout(*a, **k):
        raise AssertionError("the map was computed again")

    monkeypatch.setattr(songmap, "quick_layout", no_layout)
    monkeypatch.setattr(songmap, "place", no_layout)
    with Library.open(indexed_library) as lib:  # a new process would see the same: it is in the catalog
        assert songmap.library_map(lib.searcher()) == first
        assert songmap.refresh(lib.searcher(), lib.catalog, run_umap=no_layout)


def test_a_map_behind_the_catalog_is_answered_in_memory_and_stored_by_refresh(indexed_library):
    with Library.open(indexed_library) as lib:
        songmap.refresh(lib.searcher(), lib.catalog)
        before = songmap.library_map(lib.searcher())
        gone = before["points"][0]["id"]
        lib.catalog.remove([gone])
        after = songmap.library_map(lib.searcher())
        assert after["stamp"] != before["stamp"] and after["count"] == 11 and not after["stored"]
        assert gone not in {p["id"] for p in after["points"]}
        songmap.refresh(lib.searcher(), lib.catalog)
        stamp, points = lib.catalog.map_points()
        assert stamp == after["stamp"] and len(points) == 11
        assert songmap.library_map(lib.searcher())["stored"]


def test_no_map_before_any_vector(library_dir):
    from songspace.errors import QueryError

    with Library.open(library_dir) as lib:
        with pytest.raises(QueryError, match="no track has been analysed"):
            songmap.library_map(lib.searcher())
        assert songmap.refresh(lib.searcher(), lib.catalog) == "no track to map"


def test_new_tracks_are_placed_among_their_nearest_neighbours():
    """place(): a copy lands on its original; a track between two groups lands between them;
    the mapped points are the only input, so nothing mapped moves."""
    from songspace.map_layout import place

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 16))
    known = np.concatenate([a + 0.05 * rng.normal(size=(10, 16)), b + 0.05 * rng.normal(size=(10, 16))])
    known_xy = np.concatenate([np.full((10, 2), 0.1), np.full((10, 2), 0.9)]) + 0.01 * rng.normal(size=(20, 2))
    xy = place(np.stack([known[3], b + 0.05 * rng.normal(size=16), a]), known, known_xy)
    np.testing.assert_allclose(xy[0], known_xy[3], atol=1e-6)
    assert np.all(np.abs(xy[1] - 0.9) < 0.05) and np.all(np.abs(xy[2] - 0.1) < 0.05)


def test_predicted_labels_join_the_map_without_a_new_layout(indexed_library, monkeypatch):
    with Library.open(indexed_library) as lib:
        songmap.refresh(lib.searcher(), lib.catalog)
        before = songmap.library_map(lib.searcher())
        ids = [p["id"] for p in before["points"]]
        lib.catalog.put_predictions("mood", lib.model_id, [(i, "calm" if i % 2 else "busy", 0.9) for i in ids])
        monkeypatch.setattr(songmap, "quick_layout", lambda *a, **k: pytest.fail("predictions changed no vector"))
        after = songmap.library_map(lib.searcher())
    assert after["predicted_names"] == ["auto-genre", "auto-mood", "mood"]  # index predicts the auto ones
    assert {p["id"]: p["predicted"]["mood"] for p in after["points"]} == {i: "calm" if i % 2 else "busy" for i in ids}
    assert [(p["x"], p["y"]) for p in after["points"]] == [(p["x"], p["y"]) for p in before["points"]]


def test_tiny_libraries_still_draw():
    assert songmap.layout(np.zeros((0, 8))).shape == (0, 2)
    assert songmap.layout(np.ones((1, 8))).tolist() == [[0.5, 0.5]]
    two = songmap.layout(np.eye(8)[:2])
    assert two.shape == (2, 2) and np.all((two >= 0) & (two <= 1)) and not np.allclose(two[0], two[1])


@pytest.mark.slow
def test_umap_keeps_groups_apart():
    """Above MIN_UMAP tracks the layout is UMAP (cosine): three groups of similar vectors land
    as three separate clouds, and the same input draws the same map."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32))
    vectors = np.concatenate([c + 0.15 * rng.normal(size=(20, 32)) for c in centres]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    groups = np.repeat(np.arange(3), 20)
    assert songmap.layout_method(len(vectors)) == "umap"
    xy = songmap.layout(vectors)
    assert np.all((xy >= 0) & (xy <= 1))
    middles = np.stack([xy[groups == g].mean(axis=0) for g in range(3)])
    nearest = np.argmin(((xy[:, None, :] - middles[None]) ** 2).sum(-1), axis=1)
    assert (nearest == groups).mean() == 1.0
    np.testing.assert_allclose(songmap.layout(vectors), xy)
