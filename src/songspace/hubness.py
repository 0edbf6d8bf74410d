"""Hubness reduction by rescoring nearest-neighbour candidates (experimental, not yet in search).

In a high-dimensional space a few tracks ("hubs") are close to very many others and turn up in
everyone's results, while others ("anti-hubs") are in no one's. Both methods here rescale a
similarity by statistics of the two tracks' own neighbourhoods, so that each is judged against
how close things usually are to it:

- local scaling, CSLS-style (Conneau et al. 2018, "Word translation without parallel data";
  local scaling of Zelnik-Manor & Perona 2004 in the form Schnitzer et al. 2012 compare):
  score(x, y) = 2 cos(x, y) - r(x) - r(y), r = the mean cosine of a track to its k nearest
  neighbours. For one query r(x) is a constant, so this re-ranks by 2 cos - r(y).
- mutual proximity, Gaussian approximation (Schnitzer, Flexer, Schedl & Widmer, JMLR 2012):
  MP(x, y) = P(D_x > d) * P(D_y > d), d = 1 - cos(x, y), D_x ~ Normal(mu_x, sd_x) the distances
  from x to the collection (estimated from a sample of it). Two tracks are close when each is
  among the other's closest, not when one is merely close to everything.

Both need only a few numbers per track, computed once from its neighbours and kept beside the
vector, and they apply to a short list of ANN candidates: search stays a top-N query plus an
O(N) rescoring. Everything here is pure numpy over candidate lists.

`k_occurrence` and `hub_statistics` measure hubness itself: how often each track is in the
others' top k, and how skewed that is.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr  # the standard normal CDF, vectorised


def _top(sims: np.ndarray, k: int) -> np.ndarray:
    """The k largest of each row (any order)."""
    k = min(k, sims.shape[1])
    return np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]


def neighbourhood_mean(neighbour_sims: np.ndarray, k: int) -> np.ndarray:
    """r(x) for local scaling: the mean similarity of each row's k largest entries.

    `neighbour_sims` (n, m): each track's similarities to its m >= k nearest candidates, itself
    left out (as an ANN query for k+1 neighbours gives, less the track itself)."""
    neighbour_sims = np.asarray(neighbour_sims, dtype=np.float64)
    if k < 1 or k > neighbour_sims.shape[1]:
        raise ValueError(f"k must be between 1 and the {neighbour_sims.shape[1]} neighbours given, not {k}")
    return _top(neighbour_sims, k).mean(axis=1)


def distance_moments(sample_sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sd) of each row's distances 1 - cos to a sample of the collection, for mutual
    proximity. A few hundred random tracks per row estimate them well (Schnitzer et al. 2012)."""
    d = 1.0 - np.asarray(sample_sims, dtype=np.float64)
    return d.mean(axis=1), np.maximum(d.std(axis=1), 1e-6)


def csls(sims: np.ndarray, r_query: np.ndarray | float, r_candidates: np.ndarray) -> np.ndarray:
    """Local-scaling scores of candidate lists: 2 sims - r(query) - r(candidate).

    sims (q, n) or (n,): cosine of each query to its candidates; r_query (q,) or a float;
    r_candidates: the candidates' r, the same shape as sims."""
    sims = np.asarray(sims, dtype=np.float64)
    r_query = np.asarray(r_query, dtype=np.float64)
    if r_query.ndim == 1 and sims.ndim == 2:
        r_query = r_query[:, None]
    return 2.0 * sims - r_query - np.asarray(r_candidates, dtype=np.float64)


def mutual_proximity(sims: np.ndarray, mu_query, sd_query, mu_candidates: np.ndarray,
                     sd_candidates: np.ndarray) -> np.ndarray:
    """Gaussian mutual proximity of candidate lists, in [0, 1], higher = closer.

    sims as for `csls`; (mu, sd) from `distance_moments`, of the queries ((q,) or floats) and
    of the candidates (the shape of sims)."""
    d = 1.0 - np.asarray(sims, dtype=np.float64)
    mu_query, sd_query = np.asarray(mu_query, dtype=np.float64), np.asarray(sd_query, dtype=np.float64)
    if mu_query.ndim == 1 and d.ndim == 2:
        mu_query, sd_query = mu_query[:, None], sd_query[:, None]
    # P(D_x > d) = 1 - Phi((d - mu) / sd) = Phi((mu - d) / sd)
    return ndtr((mu_query - d) / sd_query) * ndtr((np.asarray(mu_candidates) - d) / np.asarray(sd_candidates))


def empirical_mutual_proximity(sims: np.ndarray) -> np.ndarray:
    """Exact (empirical) mutual proximity over a whole square similarity matrix: the share of
    the collection farther from x than y is, times the share farther from y than x is. O(n^2)
    memory: for measuring the Gaussian approximation on small sets, not for search."""
    s = np.asarray(sims, dtype=np.float64).copy()
    n = len(s)
    np.fill_diagonal(s, np.inf)  # a track is nearer itself than anything: never "farther"
    # rank[i, j] = how many of row i are strictly less similar than j (= farther from i).
    order = np.argsort(s, axis=1, kind="stable")
    below = np.empty_like(order)
    below[np.arange(n)[:, None], order] = np.arange(n)[None, :]
    share = below / max(n - 2, 1)  # n - 2 others besides i and j
    mp = share * share.T
    np.fill_diagonal(mp, 1.0)
    return mp


def rescore_top(sims: np.ndarray, scores_fn, n_candidates: int) -> np.ndarray:
    """A full square similarity matrix re-ranked as search would: each row's top n_candidates
    by cosine are rescored with scores_fn(rows, cols, sims_of_those) -> new scores and put
    first, in their new order; the rest keep cosine order below them. Returns a score matrix
    whose row order is that ranking (the diagonal: -inf)."""
    sims = np.asarray(sims, dtype=np.float64)
    n = len(sims)
    s = sims.copy()
    np.fill_diagonal(s, -np.inf)
    m = min(n_candidates, n - 1)
    cand = np.argpartition(-s, m - 1, axis=1)[:, :m]
    rows = np.repeat(np.arange(n)[:, None], m, axis=1)
    new = scores_fn(rows, cand, s[rows, cand])
    out = s - 1e6  # below any rescored candidate, cosine order kept among the rest
    lo = new.min()
    out[rows, cand] = new - lo  # >= 0 > anything outside the candidates
    np.fill_diagonal(out, -np.inf)
    return out


def k_occurrence(scores: np.ndarray, k: int) -> np.ndarray:
    """N_k: how many rows have each column in their top k (the diagonal never counts)."""
    s = np.asarray(scores, dtype=np.float64).copy()
    np.fill_diagonal(s, -np.inf)
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    return np.bincount(top.ravel(), minlength=len(s))


def hub_statistics(scores: np.ndarray, k: int = 5) -> dict[str, float]:
    """Skewness of N_k (0 for no hubs; Radovanovic et al. 2010 call > 1 strong hubness), the
    share of tracks in no one's top k, and the largest N_k."""
    nk = k_occurrence(scores, k).astype(np.float64)
    sd = nk.std()
    skew = float(((nk - nk.mean()) ** 3).mean() / sd**3) if sd > 0 else 0.0
    return {f"skew_n{k}": skew, f"orphans_n{k}": float((nk == 0).mean()), f"max_n{k}": float(nk.max())}


def ranking_scores(scores: np.ndarray, labels, ks=(1, 5, 10)) -> dict[str, float]:
    """evaluate.retrieval_scores over a given square score matrix instead of cosines of vectors
    (the same leave-one-out P@k and mAP, the same skipped queries), for rescored rankings."""
    s = np.asarray(scores, dtype=np.float64).copy()
    labels = np.asarray(labels)
    np.fill_diagonal(s, -np.inf)
    precision = {k: [] for k in ks}
    average_precision = []
    for i in range(len(s)):
        relevant = labels == labels[i]
        relevant[i] = False
        if not relevant.any():
            continue
        order = np.argsort(-s[i], kind="stable")[: len(s) - 1]
        hits = relevant[order]
        for k in ks:
            precision[k].append(hits[:k].mean())
        ranks = np.flatnonzero(hits) + 1
        average_precision.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    out = {f"p@{k}": float(np.mean(p)) for k, p in precision.items()}
    out["map"] = float(np.mean(average_precision))
    out["queries"] = len(average_precision)
    return out
