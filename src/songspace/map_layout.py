"""Laying out the library map: vectors in, (n, 2) coordinates in [0, 1] out.

Three ways, from quick to good:
- `quick_layout`: PCA (numpy, well under a second at 100k tracks). Shown while UMAP runs, and
  the whole layout of a library too small for UMAP (fewer than MIN_UMAP tracks: its neighbour
  graph is ill-posed, it warns or its spectral start fails).
- `umap_layout`: UMAP (cosine, fixed seed), so the map and "more like this" agree. Slow: minutes
  at 100k, and importing umap compiles its numba code. It runs in a child process
  (`umap_in_child`) that can be killed at any moment: a server asked to stop kills it at once
  instead of waiting it out, and Ctrl-C reaches it with the parent's process group.
- `place`: a track added to an existing map goes where its nearest mapped neighbours are
  (weighted by closeness in the searched space, cosine), so nothing already drawn moves.

numba's compilation is cached on disk (NUMBA_CACHE_DIR, by default in the user's cache dir):
umap and pynndescent mark few of their functions `cache=True`, so the child makes every numba
function it compiles cacheable. A second process then starts in seconds instead of compiling
for tens of seconds (bench/map_scale.py measures both).
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from pathlib import Path

import numpy as np

MIN_UMAP = 15  # fewer tracks than this: PCA
SEED = 42  # the same library draws the same map every time
N_NEIGHBORS = 15
MIN_DIST = 0.1
PLACE_K = 5  # mapped neighbours a new track is placed among


class MapCancelled(Exception):
    """The layout was stopped before it finished (a server shutting down)."""


def layout_method(n: int) -> str:
    return "umap" if n >= MIN_UMAP else "pca"


def layout(vectors: np.ndarray, seed: int = SEED) -> np.ndarray:
    """The final layout of `vectors` in this process: PCA below MIN_UMAP rows, else UMAP."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if layout_method(len(vectors)) == "pca":
        return quick_layout(vectors)
    return umap_layout(vectors, seed)


# ---------------------------------------------------------------------------------------------
# PCA and UMAP
# ---------------------------------------------------------------------------------------------


def quick_layout(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components, scaled into [0, 1]; signs fixed so the same vectors
    always draw the same way round."""
    x = np.asarray(vectors, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2))
    if n == 1:
        return np.full((1, 2), 0.5)
    x = x - x.mean(axis=0)
    # The covariance's eigenvectors (d x d) rather than an SVD of the (n x d) data: far less
    # memory at 100k tracks, the same axes.
    values, vecs = np.linalg.eigh(x.T @ x)
    axes = vecs[:, np.argsort(values)[::-1][:2]]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    axes = axes * np.where(signs == 0, 1, signs)  # the largest loading of each axis positive
    xy = x @ axes
    if xy.shape[1] < 2:
        xy = np.column_stack([xy, np.zeros(n)])
    return unit_square(xy)


def umap_layout(vectors: np.ndarray, seed: int = SEED) -> np.ndarray:
    """UMAP (cosine) of `vectors`, scaled into [0, 1]; PCA where UMAP gives up."""
    import warnings

    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) < MIN_UMAP:
        return quick_layout(vectors)
    import umap  # lazily: seconds to import, tens of seconds the first time (numba compiles)

    def fit(init: str) -> np.ndarray:
        reducer = umap.UMAP(n_components=2, metric="cosine", n_neighbors=min(N_NEIGHBORS, len(vectors) - 1),
                            min_dist=MIN_DIST, random_state=seed, init=init)
        return reducer.fit_transform(vectors)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state": wanted, for a fixed map
        try:
            xy = fit("spectral")
        except Exception:  # the spectral start fails on some disconnected neighbour graphs
            xy = fit("random")
    if not np.all(np.isfinite(xy)):
        return quick_layout(vectors)
    return unit_square(xy)


def unit_square(xy: np.ndarray) -> np.ndarray:
    """Shift and scale by one factor (distances keep their proportions), centred in [0, 1]."""
    xy = np.asarray(xy, dtype=np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = float((hi - lo).max())
    if span <= 0:
        return np.full_like(xy, 0.5)
    return (xy - lo) / span + (1 - (hi - lo) / span) / 2


# ---------------------------------------------------------------------------------------------
# New tracks on an existing map
# ---------------------------------------------------------------------------------------------


def place(new: np.ndarray, known: np.ndarray, known_xy: np.ndarray, k: int = PLACE_K) -> np.ndarray:
    """(len(new), 2) positions for `new` vectors on a map where `known` vectors sit at
    `known_xy`: the mean of their k most similar known tracks' positions, weighted by
    1 / cosine distance squared (a copy of a mapped track lands on it). Inside the known
    points' hull, so inside [0, 1]."""
    new, known = _unit_rows(new), _unit_rows(known)
    known_xy = np.asarray(known_xy, dtype=np.float64)
    if len(new) == 0:
        return np.zeros((0, 2))
    if len(known) == 0:
        return np.full((len(new), 2), 0.5)
    k = min(k, len(known))
    out = np.empty((len(new), 2))
    rows = max(1, (1 << 23) // len(known))  # similarity blocks of ~32 MB
    for s in range(0, len(new), rows):
        sims = new[s : s + rows] @ known.T
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        distance = np.maximum(1.0 - np.take_along_axis(sims, nearest, axis=1).astype(np.float64), 1e-6)
        weights = 1.0 / distance**2
        out[s : s + rows] = (weights[:, :, None] * known_xy[nearest]).sum(axis=1) / weights.sum(axis=1, keepdims=True)
    return out


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ---------------------------------------------------------------------------------------------
# UMAP in a child process that can be killed
# ---------------------------------------------------------------------------------------------


def numba_cache_dir() -> Path:
    """$NUMBA_CACHE_DIR, else songspace's folder in the user's cache dir (~/.cache/songspace/numba)."""
    import platformdirs

    return Path(os.environ.get("NUMBA_CACHE_DIR") or Path(platformdirs.user_cache_dir("songspace")) / "numba")


def cache_numba() -> bool:
    """Before umap is imported: have every numba function compiled from now on cached on disk.
    False (and nothing changed) where the cache folder cannot be made."""
    folder = numba_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    os.environ["NUMBA_CACHE_DIR"] = str(folder)  # read by numba when it is imported
    import numba

    def caching(decorator):
        @functools.wraps(decorator)
        def wrapped(*args, **kwargs):
            kwargs.setdefault("cache", True)
            return decorator(*args, **kwargs)

        return wrapped

    numba.njit, numba.jit = caching(numba.njit), caching(numba.jit)
    return True


def _child(conn, vectors: np.ndarray, seed: int, parent: int) -> None:
    from .workers import die_with_parent

    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent decides, and kills us
    try:
        os.nice(10)  # background work: queries and playback come first
    except OSError:
        pass
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba: "cannot cache function ..." for a few closures
            cache_numba()
            conn.send(("ok", umap_layout(vectors, seed)))
    except BaseException as e:  # anything: the parent says what went wrong
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def umap_in_child(vectors: np.ndarray, seed: int = SEED, cancel: threading.Event | None = None,
                  on_start=None) -> np.ndarray:
    """`umap_layout(vectors)` computed in a child process. Setting `cancel` (from any thread),
    an exception here (KeyboardInterrupt) or this process dying kills the child at once, and
    `cancel` raises MapCancelled. `on_start(pid)` is called once the child runs."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no copy of a threaded server's state
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, np.ascontiguousarray(vectors, dtype=np.float32), seed, os.getpid()),
                       name="songspace-map", daemon=True)
    try:
        proc.start()
        send.close()
        if on_start is not None:
            on_start(proc.pid)
        while not receive.poll(0.1):
            if cancel is not None and cancel.is_set():
                raise MapCancelled("the map was not finished: stopped")
            if not proc.is_alive() and not receive.poll(0):
                raise RuntimeError(f"the map's process ended without an answer (exit code {proc.exitcode})")
        try:
            kind, value = receive.recv()
        except EOFError:
            raise RuntimeError(f"the map's process ended without an answer (exit code {proc.exitcode})") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        receive.close()
    if kind != "ok":
        raise RuntimeError(f"UMAP failed: {value}")
    return value
