"""songspace.hubness and songspace.timbre: the rescoring and the timbre divergence, checked
against direct formulas and on data built to have a hub."""

import numpy as np
import pytest

from songspace import hubness, timbre


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _hubbed(seed=0):
    """Points on a sphere, one pulled to the centre of the cloud: it is near everyone."""
    rng = np.random.default_rng(seed)
    v = _unit(rng.normal(size=(60, 8)) + np.array([3.0] + [0.0] * 7))
    v[0] = _unit(v[1:].mean(axis=0, keepdims=True))[0]
    return v


def test_k_occurrence_counts_each_rows_top_k():
    s = np.array([[0, 0.9, 0.1], [0.9, 0, 0.2], [0.8, 0.3, 0]], float)
    assert hubness.k_occurrence(s, 1).tolist() == [2, 1, 0]
    stats = hubness.hub_statistics(s, k=1)
    assert stats["orphans_n1"] == pytest.approx(1 / 3) and stats["max_n1"] == 2


def test_neighbourhood_mean_and_csls():
    nn = np.array([[0.9, 0.5, 0.7], [0.2, 0.4, 0.3]])
    assert hubness.neighbourhood_mean(nn, 2).tolist() == pytest.approx([0.8, 0.35])
    with pytest.raises(ValueError, match="k must be"):
        hubness.neighbourhood_mean(nn, 4)
    # A candidate with a crowded neighbourhood (high r) loses to one with the same cosine.
    scores = hubness.csls(np.array([[0.6, 0.6]]), np.array([0.5]), np.array([[0.9, 0.3]]))
    assert scores[0, 1] > scores[0, 0]
    assert scores[0, 0] == pytest.approx(2 * 0.6 - 0.5 - 0.9)


def test_gaussian_mutual_proximity_matches_its_definition():
    from scipy.stats import norm

    mp = hubness.mutual_proximity(np.array([0.7]), 0.5, 0.2, np.array([0.4]), np.array([0.1]))
    d = 0.3
    assert mp[0] == pytest.approx(norm.sf(d, 0.5, 0.2) * norm.sf(d, 0.4, 0.1))
    # Symmetric: swapping query and candidate gives the same score.
    assert hubness.mutual_proximity(np.array([0.7]), 0.4, 0.1, np.array([0.5]), np.array([0.2]))[0] == pytest.approx(mp[0])


def test_empirical_mutual_proximity_is_symmetric_shares():
    s = _unit(np.random.default_rng(1).normal(size=(12, 4)))
    s = s @ s.T
    mp = hubness.empirical_mutual_proximity(s)
    assert np.allclose(mp, mp.T) and mp.min() >= 0 and mp.max() <= 1


def test_rescoring_reduces_a_built_hub():
    v = _hubbed()
    sims = v @ v.T
    before = hubness.k_occurrence(sims, 5)[0]
    r = hubness.neighbourhood_mean(np.where(np.eye(len(v), dtype=bool), -np.inf, sims), 10)
    mu, sd = hubness.distance_moments(sims)
    ls = hubness.rescore_top(sims, lambda i, j, s: hubness.csls(s, r[i], r[j]), 30)
    mp = hubness.rescore_top(sims, lambda i, j, s: hubness.mutual_proximity(s, mu[i], sd[i], mu[j], sd[j]), 30)
    assert before >= 12  # the hub is in far more top-5 lists than the mean, 5
    for rescored in (ls, mp):
        assert hubness.k_occurrence(rescored, 5)[0] < 0.7 * before
        assert hubness.hub_statistics(rescored)["skew_n5"] < hubness.hub_statistics(sims)["skew_n5"]
    # Outside the candidates, cosine order is kept, below every candidate.
    row = np.argsort(-ls[3])
    cand = set(np.argsort(-np.where(np.eye(len(v), dtype=bool), -np.inf, sims)[3])[:30])
    assert set(row[:30]) == cand


def test_timbre_divergence_matches_the_direct_formula():
    rng = np.random.default_rng(2)
    means, covs = [], []
    for _ in range(4):
        S = rng.normal(size=(96, 300)) + rng.normal(size=(96, 1)) * 3
        m, c = timbre.gaussian(S)
        means.append(m)
        covs.append(c)
    t = timbre.TimbreSet(np.stack(means), np.stack(covs), ridge=0.1)
    D = t.divergence()
    p, q = 1, 3
    Cp, Cq, Pp, Pq = t.covs[p], t.covs[q], t.precisions[p], t.precisions[q]
    dm = t.means[p] - t.means[q]
    direct = 0.5 * (np.trace(Pq @ Cp) + np.trace(Pp @ Cq) + dm @ (Pp + Pq) @ dm) - timbre.N_MFCC
    assert D[p, q] == pytest.approx(direct, rel=1e-6)
    assert np.allclose(D, D.T) and np.allclose(np.diag(D), 0, atol=1e-6)
    assert t.divergence(np.array([2]))[0] == pytest.approx(D[2])


def test_timbre_pack_round_trip_and_size():
    rng = np.random.default_rng(3)
    m, c = timbre.gaussian(rng.normal(size=(96, 200)))
    blob = timbre.pack(m, c)
    assert len(blob) == 460
    m2, c2 = timbre.unpack(blob)
    c_ridge = c + timbre.RIDGE * np.eye(len(m))
    assert np.allclose(m2, m, atol=1e-2) and np.allclose(c2, c_ridge, rtol=1e-2, atol=1e-2) and np.allclose(c2, c2.T)
    # A near-singular covariance (a silent stretch) still unpacks positive definite.
    S = rng.normal(size=(96, 200))
    S[:, 100:] = -9.2  # log of the offset: digital silence
    m, c = timbre.gaussian(S)
    assert np.linalg.eigvalsh(timbre.unpack(timbre.pack(m, c))[1]).min() > 0
    with pytest.raises(ValueError, match="numbers"):
        timbre.unpack(blob[:-2])
    with pytest.raises(ValueError, match="frames"):
        timbre.gaussian(np.zeros((96, 1)))


def test_ranking_scores_agree_with_evaluate_on_cosines():
    from songspace.evaluate import retrieval_scores

    rng = np.random.default_rng(4)
    v = _unit(rng.normal(size=(40, 6)))
    labels = [str(i % 7) for i in range(40)]
    labels[0] = "alone"
    assert hubness.ranking_scores(v @ v.T, labels) == pytest.approx(retrieval_scores(v, labels))
