"""Leave-one-out retrieval quality of a set of track vectors against labels.

For each track, every other track is ranked by cosine similarity; P@k is the share of the top
k that carry the same label, and AP the average precision over the whole ranking (mAP is its
mean over queries). Queries whose label no other track shares are skipped: they cannot be
answered right.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def retrieval_scores(vectors: np.ndarray, labels: Sequence[str], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    precision = {k: [] for k in ks}
    average_precision = []
    for i in range(len(v)):
        relevant = labels == labels[i]
        relevant[i] = False
        if not relevant.any():
            continue
        order = np.argsort(-sims[i], kind="stable")[: len(v) - 1]  # the query itself sorts last
        hits = relevant[order]
        for k in ks:
            precision[k].append(hits[:k].mean())
        ranks = np.flatnonzero(hits) + 1
        average_precision.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    scores = {f"p@{k}": float(np.mean(p)) for k, p in precision.items()}
    scores["map"] = float(np.mean(average_precision))
    scores["queries"] = len(average_precision)
    return scores
