"""Run one function over many items in worker processes, yielding results as they finish.

One thread per process: on these 2-core machines a spin-waiting thread pool slows down 4-12x
whenever the second core is busy elsewhere, while two single-threaded processes keep going.
`workers=0` runs everything in this process (no start-up cost, easy to debug; it imports torch
here), `workers=1` in one worker process, so the caller stays free of torch.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# glibc returns freed memory to the OS eagerly and then pays to fault it back in on the next
# batch; high thresholds gave 2-2.5x on batched torch work here. Set before workers start.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def default_workers() -> int:
    """One per CPU this process may use, up to 16: the most measured (5,839x real time on a
    16-CPU machine, docs/results.md); each worker holds 300-600 MB."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(16, cpus))


def one_thread() -> None:
    """One compute thread in this process, for torch and for numpy's BLAS (the resampler's
    matrix products) alike: see the module docstring for why. With OpenBLAS's default thread
    pool, decoding ran 2.8x slower whenever the other core was busy."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1, user_api="blas")


def _init_worker(parent: int) -> None:
    die_with_parent(parent)
    one_thread()
    # Ctrl-C reaches the whole process group; the parent alone decides what to do about it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux's PR_SET_PDEATHSIG). A
    worker holds both ends of the pool's pipes, so it never sees them close: after a kill -9 of
    `index` it would finish its file and wait for more, holding its 300-600 MB. Elsewhere a no-op."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl here (not Linux)
        return
    if os.getppid() != parent:  # the parent died before the request above was made
        os._exit(1)


@contextmanager
def unwind_on_sigterm() -> Iterator[None]:
    """Inside, SIGTERM raises SystemExit(143) in the main thread rather than ending the process
    on the spot, so `finally` blocks and context managers run: a training run's temporary
    corpus (hundreds of MB in /tmp) is removed, workers are stopped. Elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_parallel(func: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> Iterator[R]:
    """Yield func(item) for every item, in completion order. Ctrl-C stops the workers at once."""
    workers = default_workers() if workers is None else workers
    if workers <= 0:
        one_thread()  # also in-process: torch's 2-thread pool cost 2.2-2.6x the CPU here
        yield from map(func, items)
        return
    for key, value in MALLOC_ENV.items():
        os.environ.setdefault(key, value)
    # spawn, not fork: the parent holds SQLite and FAISS handles and maybe threads.
    pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(os.getpid(),))
    try:
        yield from pool.imap_unordered(func, items, chunksize=1)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
