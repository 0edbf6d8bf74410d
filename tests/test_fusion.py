"""The timbre companion in the product: index stores each track's Gaussian, and search ranks by
the CNN's cosine fused with timbre (rerank.py), checked against the fusion computed here from
scratch with numpy and songspace.hubness / songspace.timbre; an old library ranks by cosine
until `index` gives its tracks their Gaussians."""

from __future__ import annotations

import json

import numpy as np
import pytest

from songspace import Library, audio, hubness, timbre
from songspace.recommend.radio import radio
from songspace.recommend.similar import Manners, similar
from songspace.synth import synth_track, write_audio

EVERY = Manners(collapse_copies=False)


def fused_from_scratch(lib: Library, query_id: int | None = None, vector=None, blob=None) -> list[int]:
    """Every other searchable track, best first, by 0.7 MP(1 - cos) + 0.3 MP(log1p SKL), each
    track's moments over its distances to the stored sample (itself left out)."""
    cat = lib.catalog
    ids, vectors = cat.vectors(lib.model_id)
    blobs = cat.timbres_of(ids)
    sample = np.asarray(json.loads(cat.get_meta("proximity"))["sample"])
    if query_id is None:  # an outside file: one more row, first
        ids = np.concatenate([[-1], ids])
        vectors = np.vstack([vector[None], vectors])
        blobs = {**blobs, -1: blob}
        query_id = -1
    gaussians = [timbre.unpack(blobs[i]) for i in ids.tolist()]
    t = np.log1p(timbre.TimbreSet(np.stack([m for m, _ in gaussians]), np.stack([c for _, c in gaussians])).divergence())
    d = 1.0 - vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    cols = np.searchsorted(ids[1:] if ids[0] == -1 else ids, sample) + (1 if ids[0] == -1 else 0)

    def moments(m):
        keep = np.ones((len(ids), len(cols)), dtype=bool)
        keep[ids[:, None] == sample[None, :]] = False  # a track against itself does not count
        sub = np.where(keep, m[:, cols], np.nan)
        return np.nanmean(sub, axis=1), np.maximum(np.nanstd(sub, axis=1), 1e-6)

    q = int(np.flatnonzero(ids == query_id)[0])
    score = 0.0
    for w, m in ((0.7, d), (0.3, t)):
        mu, sd = moments(m)
        score = score + w * hubness.mutual_proximity(1.0 - m[q], mu[q], sd[q], mu, sd)
    order = [int(i) for i in ids[np.argsort(-score, kind="stable")] if i not in (query_id,)]
    return order


def cosine_order(lib: Library, query_id: int) -> list[int]:
    ids, vectors = lib.catalog.vectors(lib.model_id)
    sims = vectors @ vectors[ids.tolist().index(query_id)]
    return [int(i) for i in ids[np.argsort(-sims, kind="stable")] if i != query_id]


def test_index_stores_each_tracks_gaussian_from_its_log_mel(indexed_library):
    with Library.open(indexed_library) as lib:
        tracks = lib.catalog.ok_tracks()
        blobs = lib.catalog.timbres_of([t.id for t in tracks])
        assert set(blobs) == {t.id for t in tracks} and {len(b) for b in blobs.values()} == {460}
        embedder = lib.method.new_embedder()
        t = tracks[0]
        assert blobs[t.id] == embedder.timbre_of(audio.load(t.path, sr=embedder.sr).y)  # the track's own
        assert lib.status()["ranking"] == {"by": "fused", "lacking_timbre": 0, "note": "the CNN fused with timbre"}
        n = len(tracks)
        assert lib.catalog.db.execute("SELECT COUNT(*) FROM proximity WHERE model_id = ?",
                                      (lib.model_id,)).fetchone()[0] == n


def test_similar_and_radio_rank_by_the_fused_score(indexed_library):
    with Library.open(indexed_library) as lib:
        s = lib.searcher()
        ids = lib.catalog.ok_ids()
        differs = 0
        for q in ids:
            expected = fused_from_scratch(lib, q)
            found = similar(s, q, k=len(ids) - 1, manners=EVERY)
            assert [m.track.id for m in found] == expected
            scores = [m.score for m in found]  # the list is best first by its score, the cosine beside it
            assert scores == sorted(scores, reverse=True) and all(0 <= x <= 1 for x in scores)
            vectors = s.vectors([q] + expected)
            assert [m.cosine for m in found] == pytest.approx((vectors[1:] @ vectors[0]).tolist(), abs=1e-5)
            differs += expected != cosine_order(lib, q)
        assert differs > 0  # timbre moves something: the check above is not cosine order twice
        # A radio of one seed with no variety and no jitter plays the fused order.
        q = ids[0]
        picks = radio(s, [q], n=5, diversity=0.0, jitter=0.0, artist_window=1)
        assert [m.track.id for m in picks] == fused_from_scratch(lib, q)[:5]
        vectors = s.vectors([q] + [m.track.id for m in picks])
        assert [m.score for m in picks] == pytest.approx((vectors[1:] @ vectors[0]).tolist(), abs=1e-5)  # cosine shown


def test_similar_to_a_file_outside_the_library(indexed_library, tmp_path):
    outside = tmp_path / "outside.flac"
    write_audio(outside, synth_track("mid_chords", 8.0, seed=77), 16000)
    with Library.open(indexed_library) as lib:
        s = lib.searcher()
        emb = s.embed_file(outside)
        assert emb.timbre is not None
        found = similar(s, str(outside), k=len(s), manners=EVERY)
        assert [m.track.id for m in found] == fused_from_scratch(lib, vector=emb.vector, blob=emb.timbre)


def test_an_old_library_ranks_by_cosine_until_index_gives_it_timbre(indexed_library, demo_music, songspace):
    with Library.open(indexed_library) as lib:  # as catalog step 13 leaves a library indexed before it
        before = lib.catalog.timbres_of(lib.catalog.ok_ids())
        lib.catalog.db.execute("DELETE FROM timbre")
        lib.catalog.db.execute("DELETE FROM proximity")
        lib.catalog.db.execute("DELETE FROM meta WHERE key = 'proximity'")
    shown = songspace("status", check=True).stdout
    assert f"ranking:    cosine ({len(before)} tracks have no timbre model yet" in shown
    with Library.open(indexed_library) as lib:
        s = lib.searcher()
        q = lib.catalog.ok_ids()[0]
        assert [m.track.id for m in similar(s, q, k=len(s) - 1, manners=EVERY)] == cosine_order(lib, q)
    shown = songspace("index", demo_music, "--workers", "0", check=True).stderr  # messages, not an answer
    assert f"added 0, updated 0, unchanged {len(before)}" in shown and f"timbre added {len(before)}" in shown
    assert "search ranks by the CNN fused with timbre" in shown
    with Library.open(indexed_library) as lib:
        s = lib.searcher()
        assert lib.catalog.timbres_of(lib.catalog.ok_ids()) == before  # the same Gaussians, no CNN run
        assert lib.status()["ranking"]["by"] == "fused"
        assert [m.track.id for m in similar(s, q, k=len(s) - 1, manners=EVERY)] == fused_from_scratch(lib, q)
        again = lib.index([demo_music], workers=0)
        assert again.timbre_added == 0 and again.unchanged == len(before)


def test_gaussians_from_blobs_in_bulk_are_unpack_s_and_compare_as_one_set():
    rng = np.random.default_rng(3)
    blobs = []
    for _ in range(7):
        A = rng.normal(size=(timbre.N_MFCC, timbre.N_MFCC))
        blobs.append(timbre.pack(rng.normal(scale=4.0, size=timbre.N_MFCC), A @ A.T / timbre.N_MFCC))
    bulk = timbre.timbre_set(blobs)
    one = [timbre.unpack(b) for b in blobs]
    assert np.array_equal(bulk.means, np.stack([m for m, _ in one]))
    assert np.allclose(bulk.covs, np.stack([c for _, c in one]), rtol=1e-12, atol=0)
    assert np.allclose(bulk.precisions, np.linalg.inv(bulk.covs), rtol=1e-9, atol=1e-12)
    whole = timbre.TimbreSet(np.stack([m for m, _ in one]), np.stack([c for _, c in one])).divergence()
    between = timbre.divergence_between(timbre.timbre_set(blobs[:2]), timbre.timbre_set(blobs[2:]))
    assert np.allclose(between, whole[:2, 2:], rtol=1e-9)
    with pytest.raises(ValueError, match="230 numbers"):
        timbre.timbre_set([b"\x00" * 10])
