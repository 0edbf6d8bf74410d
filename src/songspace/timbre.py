"""A Musly-style timbre model (experimental, not yet in the catalog): one Gaussian per track.

The frames of a track's MFCCs are summarised by their mean and full covariance, and two tracks
are compared with the symmetric Kullback-Leibler divergence of their Gaussians (Mandel & Ellis
2005; Pampalk 2006; Musly's "timbre" method uses the same model with a Jensen-Shannon-like
divergence). It carries the "album effect" (production, instrumentation) cheaply, a different
view from the CNN's 3-s patches, so it may help as a companion at score level.

The MFCCs come from the log-mel spectrogram the pipeline already computes (`features.log_mel`):
a DCT-II of its frames, so the model costs a DCT and a covariance, no second decode. c0 (the
frame's overall level) is left out, so loudness does not move the model, as levelled patches do
not move the CNN's vector; on ost-dev that also scored better (album P@1 0.732 against 0.688).

Stored as float16 mean + the lower triangle of the Cholesky factor of the covariance (plus a
ridge): 20 MFCCs take (20 + 210) * 2 = 460 bytes. The factor, not the covariance itself: a
near-singular covariance (a track with silent stretches) rounded to float16 stops being positive
definite and its inverse is garbage (album P@1 fell from 0.69 to 0.31 on ost-dev); L L' of a
rounded factor is always positive definite, and scored the same as float64.
"""

from __future__ import annotations

import numpy as np

N_MFCC = 20
RIDGE = 0.1  # added to the covariance's diagonal: keeps a near-constant coefficient from dominating


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) orthonormal DCT-II, as scipy.fft.dct(norm="ortho") keeps the first n_out."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return m


def gaussian(log_mel: np.ndarray, n_mfcc: int = N_MFCC) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), covariance (d, d)) of MFCCs 1..n_mfcc (c0 left out) of a (n_mels, frames) log-mel."""
    S = np.asarray(log_mel, dtype=np.float64)
    if S.ndim != 2 or S.shape[1] < 2:
        raise ValueError(f"need a (n_mels, frames) log-mel with 2 or more frames, not shape {S.shape}")
    mfcc = dct_matrix(S.shape[0], n_mfcc + 1)[1:] @ S
    return mfcc.mean(axis=1), np.cov(mfcc)


def pack(mean: np.ndarray, cov: np.ndarray, ridge: float = RIDGE) -> bytes:
    """float16 mean + lower triangle of the Cholesky factor of cov + ridge * I."""
    L = np.linalg.cholesky(np.asarray(cov, dtype=np.float64) + ridge * np.eye(len(mean)))
    return np.concatenate([mean, L[np.tril_indices(len(mean))]]).astype(np.float16).tobytes()


def unpack(blob: bytes, n_mfcc: int = N_MFCC) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance with its ridge) from `pack`'s bytes."""
    v = np.frombuffer(blob, dtype=np.float16).astype(np.float64)
    if len(v) != n_mfcc + n_mfcc * (n_mfcc + 1) // 2:
        raise ValueError(f"a timbre model of {n_mfcc} MFCCs has {n_mfcc + n_mfcc * (n_mfcc + 1) // 2} numbers, not {len(v)}")
    mean, tri = v[:n_mfcc], v[n_mfcc:]
    L = np.zeros((n_mfcc, n_mfcc))
    L[np.tril_indices(n_mfcc)] = tri
    return mean, L @ L.T


class TimbreSet:
    """Many tracks' Gaussians, ready to compare: precisions computed once. `ridge` is added to
    each covariance (0 for covariances from `unpack`, which carry theirs)."""

    def __init__(self, means: np.ndarray, covs: np.ndarray, ridge: float = 0.0, precisions: np.ndarray | None = None):
        self.means = np.asarray(means, dtype=np.float64)
        d = self.means.shape[1]
        covs = np.asarray(covs, dtype=np.float64) + ridge * np.eye(d)
        self.covs = covs
        self.precisions = np.linalg.inv(covs) if precisions is None else precisions
        # Per track: mu' P mu, used to expand the Mahalanobis terms into matrix products.
        self._mpm = np.einsum("ni,nij,nj->n", self.means, self.precisions, self.means)
        self._pm = np.einsum("nij,nj->ni", self.precisions, self.means)

    def __len__(self) -> int:
        return len(self.means)

    def divergence(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Symmetric KL divergence between the given tracks (default all) and every track:
        (len(rows), n), >= 0, 0 on identical Gaussians.

        2 SKL(p, q) = tr(Pq Cp) + tr(Pp Cq) + (mp - mq)' (Pp + Pq) (mp - mq) - 2d."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        n, d = len(self), self.means.shape[1]
        C = self.covs.reshape(n, d * d)
        P = self.precisions.reshape(n, d * d)
        trace = P[rows] @ C.T + C[rows] @ P.T
        # (mp - mq)' Pp (mp - mq) = mp'Pp mp - 2 mq'Pp mp + mq'Pp mq  (and the same with Pq)
        mm = np.einsum("ni,nj->nij", self.means, self.means).reshape(n, d * d)  # mu mu' flattened
        maha_p = self._mpm[rows][:, None] - 2 * self._pm[rows] @ self.means.T + P[rows] @ mm.T
        maha_q = self._mpm[None, :] - 2 * self.means[rows] @ self._pm.T + mm[rows] @ P.T
        return np.maximum(0.5 * (trace + maha_p + maha_q) - d, 0.0)

    def similarity(self, rows: np.ndarray | None = None, gamma: float = 0.01) -> np.ndarray:
        """exp(-gamma * SKL) in (0, 1]: a monotone turn of the divergence into a similarity."""
        return np.exp(-gamma * self.divergence(rows))


def divergence_between(a: TimbreSet, b: TimbreSet) -> np.ndarray:
    """Symmetric KL divergence of each of a's tracks to each of b's: (len(a), len(b)), as
    `TimbreSet.divergence` computes it within one set (a query or a batch of tracks against
    candidates or a sample, without putting them in one set)."""
    d = a.means.shape[1]
    Ca, Pa = a.covs.reshape(len(a), d * d), a.precisions.reshape(len(a), d * d)
    Cb, Pb = b.covs.reshape(len(b), d * d), b.precisions.reshape(len(b), d * d)
    mma = np.einsum("ni,nj->nij", a.means, a.means).reshape(len(a), d * d)
    mmb = np.einsum("ni,nj->nij", b.means, b.means).reshape(len(b), d * d)
    trace = Pa @ Cb.T + Ca @ Pb.T
    maha_a = a._mpm[:, None] - 2 * a._pm @ b.means.T + Pa @ mmb.T  # (ma - mb)' Pa (ma - mb)
    maha_b = b._mpm[None, :] - 2 * a.means @ b._pm.T + mma @ Pb.T  # (ma - mb)' Pb (ma - mb)
    return np.maximum(0.5 * (trace + maha_a + maha_b) - d, 0.0)


_TRIL = np.tril_indices(N_MFCC)


def timbre_set(blobs) -> TimbreSet:
    """A TimbreSet of packed Gaussians (`pack`'s bytes of N_MFCC MFCCs, ridge inside): `unpack`
    of them all at once (one at a time it was most of a search's re-ranking)."""
    blobs = list(blobs)
    n, size = len(blobs), N_MFCC + N_MFCC * (N_MFCC + 1) // 2
    v = np.frombuffer(b"".join(blobs), dtype=np.float16).astype(np.float64)
    if len(v) != n * size:
        raise ValueError(f"a timbre model of {N_MFCC} MFCCs has {size} numbers; these {n} hold {len(v)}")
    v = v.reshape(n, size)
    L = np.zeros((n, N_MFCC, N_MFCC))
    L[:, _TRIL[0], _TRIL[1]] = v[:, N_MFCC:]
    Linv = lower_inverse(L)  # precision = L^-T L^-1: np.linalg.inv took 1 ms for 90 tracks, this 0.2
    return TimbreSet(v[:, :N_MFCC], L @ L.transpose(0, 2, 1), precisions=Linv.transpose(0, 2, 1) @ Linv)


def lower_inverse(L: np.ndarray) -> np.ndarray:
    """Inverses of a batch (n, d, d) of lower-triangular matrices with a positive diagonal (the
    Cholesky factors `pack` stores: the ridge keeps each diagonal entry >= sqrt(RIDGE)), by forward
    substitution, one row for the whole batch at a time."""
    n, d, _ = L.shape
    X = np.zeros_like(L)
    for i in range(d):
        X[:, i, i] = 1.0
        if i:
            X[:, i, :i] -= np.einsum("nk,nkj->nj", L[:, i, :i], X[:, :i, :i])
        X[:, i, : i + 1] /= L[:, i, i, None]
    return X
