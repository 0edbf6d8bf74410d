"""Where the analyse stage runs: one interface, three places.

An executor takes the planned tasks and yields each file's `Analysis` as it finishes, in
completion order; closing the iterator (an interrupted run) stops its workers at once. Whatever
the executor, the results come back to the indexing process, the catalog's one writer.

  LocalPool  worker processes on this machine (workers.py); workers=0: in this process
  OnGpu      workers decode, this process embeds several files per batch on a GPU (gpu.py)
  OnRay      analyser actors across a Ray cluster (distributed.py)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from ..analysis import Analysis, Task, analyse
from ..errors import InputError
from ..gpu import embed_in_batches, embedding_device
from ..method import Method
from ..workers import run_parallel

if TYPE_CHECKING:
    from ..distributed import RayConfig


class Executor(Protocol):
    def analyse(self, tasks: Sequence[Task], model: str) -> Iterator[Analysis]:
        """The Analysis of every task (all for `model`), in completion order."""


@dataclass(frozen=True)
class LocalPool:
    """Worker processes on this machine, each hashing, decoding and embedding whole files."""

    workers: int | None = None  # None: one per CPU (workers.default_workers)

    def analyse(self, tasks: Sequence[Task], model: str) -> Iterator[Analysis]:
        return run_parallel(analyse, tasks, self.workers)


@dataclass(frozen=True)
class OnGpu:
    """Worker processes decode; this process embeds the decoded files in batches on `device`."""

    device: str
    workers: int | None = None

    def analyse(self, tasks: Sequence[Task], model: str) -> Iterator[Analysis]:
        decode = [replace(t, decode_only=True) for t in tasks]
        return embed_in_batches(run_parallel(analyse, decode, self.workers), model, self.device)


@dataclass(frozen=True)
class OnRay:
    """Analyser actors on a Ray cluster; this process may send them files' bytes."""

    config: "RayConfig"
    workers: int | None = None  # None: one per CPU of the cluster

    def analyse(self, tasks: Sequence[Task], model: str) -> Iterator[Analysis]:
        from ..distributed import analyse_on_ray

        return analyse_on_ray(tasks, self.config, workers=self.workers)


def choose_executor(method: Method, *, workers: int | None, ray: "RayConfig | None", device: str) -> Executor:
    """The executor for a run, checked before anything is scanned or written: MissingDependency
    when `ray` is asked for and Ray is not installed; InputError for a `device` that cannot be
    had. `device`: "auto" embeds on a CUDA GPU when there is one, "cpu" in the workers,
    "cuda[:N]" on that GPU; a GPU only without Ray and with a model (not MFCC statistics)."""
    if ray is not None:
        from ..distributed import require_ray

        require_ray()
    if ray is None and method.file is not None:
        gpu = embedding_device(device)
        return LocalPool(workers) if gpu is None else OnGpu(gpu, workers)
    if device not in ("auto", "cpu"):
        raise InputError(f"device {device}: a GPU is used only without Ray and with a model (not mfcc)",
                         param="device")
    return LocalPool(workers) if ray is None else OnRay(ray, workers)
