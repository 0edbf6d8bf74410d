"""The timbre companion fused with the CNN's cosine: how search ranks tracks (pure numpy).

Two views of a pair of tracks: the cosine distance of their CNN vectors (1 - cos), and the
timbre distance of their Gaussians over MFCCs (log(1 + symmetric KL), timbre.py). Each is turned
into Gaussian mutual proximity (hubness.py: the chance that each track finds the other closer
than it finds a track of the library in general, from each track's mean and spread of distances
to a sample of the library), and the two are mixed with weight `WEIGHT` on the cosine side:

  score(x, y) = WEIGHT * MP(cosine distance) + (1 - WEIGHT) * MP(timbre distance)

Search takes the `CANDIDATES` nearest tracks by cosine from the vector index (exact or ANN) and
re-ranks them by this score (rerank.py), so a query stays a top-N search plus O(N) work.
Measured in docs/results.md ("Hubness and timbre on package-CV folds"): with models that never
heard the held-out packages it won every run (8 of 8 at 120 steps: fold mAP +0.038, ost-dev
album mAP +0.025; the 1,000-step fold models +0.006 and +0.015 fold mAP); with the shipped v3
on ost-dev album mAP +0.005, artist mAP +0.046. w = 0.7 was fixed before those runs ("A timbre
companion").
"""

from __future__ import annotations

import math

import numpy as np

WEIGHT = 0.7  # the cosine side's share
CANDIDATES = 50  # the nearest tracks by cosine that are re-ranked (at least)
SAMPLE = 500  # library tracks each track's moments are measured against
MIN_SD = 1e-6


def timbre_distance(divergence: np.ndarray) -> np.ndarray:
    """The timbre side's distance: log(1 + SKL) (SKL is heavy-tailed; measured that way)."""
    return np.log1p(np.asarray(divergence, dtype=np.float64))


def moments(cos_distances: np.ndarray, timbre_distances: np.ndarray, leave_out: np.ndarray | None = None) -> np.ndarray:
    """(n, 4): each row's (cos mu, cos sd, timbre mu, timbre sd) over its distances to a sample
    ((n, m) each); `leave_out` (n, m) bool marks entries not to count (a track against itself)."""
    out = np.empty((len(cos_distances), 4))
    for col, d in ((0, cos_distances), (2, timbre_distances)):
        d = np.asarray(d, dtype=np.float64)
        if leave_out is not None and leave_out.any():
            d = np.ma.masked_array(d, mask=leave_out)
            mu, sd = d.mean(axis=1).filled(0.0), d.std(axis=1).filled(0.0)
        else:
            mu, sd = d.mean(axis=1), d.std(axis=1)
        out[:, col], out[:, col + 1] = mu, np.maximum(sd, MIN_SD)
    return out


_erfc = np.frompyfunc(math.erfc, 1, 1)


def _survival(mu, sd, d) -> np.ndarray:
    """P(D > d) for D ~ Normal(mu, sd): Phi((mu - d) / sd), by math.erfc (scipy.special's ndtr,
    as hubness.py uses, costs `similar` 0.15 s of imports; a few hundred values need no ufunc)."""
    z = np.asarray((np.asarray(mu) - d) / np.asarray(sd), dtype=np.float64)
    return 0.5 * _erfc(-z / math.sqrt(2.0)).astype(np.float64)


def mutual_proximity(cos_or_sim: np.ndarray, mu_q, sd_q, mu_c, sd_c) -> np.ndarray:
    """hubness.mutual_proximity (Gaussian MP) of one query's candidates: sims (n,), the query's
    (mu, sd) floats, the candidates' (n,) each."""
    d = 1.0 - np.asarray(cos_or_sim, dtype=np.float64)
    return _survival(mu_q, sd_q, d) * _survival(mu_c, sd_c, d)


def scores(cos: np.ndarray, timbre_dist: np.ndarray, query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The fused score of a query's candidates: cos (n,) cosine similarities, timbre_dist (n,)
    timbre distances, query (4,) its moments, candidates (n, 4) theirs. In [0, 1], higher = closer."""
    query, candidates = np.asarray(query, dtype=np.float64), np.asarray(candidates, dtype=np.float64)
    mp_cos = mutual_proximity(cos, query[0], query[1], candidates[:, 0], candidates[:, 1])
    mp_timbre = mutual_proximity(1.0 - np.asarray(timbre_dist), query[2], query[3], candidates[:, 2], candidates[:, 3])
    return WEIGHT * mp_cos + (1.0 - WEIGHT) * mp_timbre
