"""Indexing on a Ray cluster: a pool of analyser actors, results back to the one writer.

`Library.index(..., ray=RayConfig(...))` (`songspace index --ray`) plans as always, then hands
the files to Ray instead of the local process pool. Each actor takes one CPU, runs one torch
thread (as the local workers do), loads the model once, and analyses file after file with
`analysis.analyse`: the function the local path runs, so both give the same vectors. Every
result comes back to this process, which stays the catalog's only writer and commits it as it
arrives: the incremental plan, the failure records, the progress bar and kill -9 safety are
those of the local path.

Why an actor pool and not Ray Data's `map_batches`: indexing needs each result as soon as it is
done (to commit it), a per-file decision about sending bytes, and to know which file a dying
worker held. Ray Data streams blocks, retries whole batches and owns its own scheduling; it is
the right tool for the catalog-free batch job (`dataset.embed_to_dataset`), and
`bench/ray_index.py` measures both on the same files.

Files the workers can reach. A worker first looks for the file at its own path: with the music
mounted at the same path on every node (NFS, SMB), it reads it there. When the file is missing
there, or has another size or mtime than the planner saw, the worker says so and this process
sends the file's bytes through Ray's object store, for files up to `ship_below` bytes; a larger
one is reported ("skipped"), not recorded, and tried again by the next run. `always_ship` sends
every file up to that size, for nodes where the same path holds something else.

Faults. Ray does not restart the actors (max_restarts=0); this process does. When an actor
dies (its process killed, out of memory, its node gone), the file it held goes back to the
queue and a fresh actor is started wherever the cluster has a CPU free; restarting in place, as
Ray would, waits forever for a node that has left. A file in flight when its worker died
`MAX_ATTEMPTS` times is reported ("skipped"), not recorded as failed, and tried again by the
next run: a death does not say whether the file killed the worker or the node went away, and a
good file recorded as failed would stay out of the library until it changed. An unexpected
error inside an actor (a full disk on one node, say) skips that one file the same way; the
actor goes on with the next.

Temporary files. Files sent as bytes are analysed from memory; the model's files are written
under a name holding the node and the worker's pid, and an actor that starts removes those of
workers that are gone, so a killed worker leaves nothing behind for long.

Ray is an optional extra (`pip install 'songspace[ray]'`) and is imported only when asked for.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from .analysis import Analysis, Task, analyse, analyse_bytes, remove_stale_temp_files, temp_prefix, unreadable
from .errors import ClusterError, MissingDependency
from .method import embedder, resolve
from .models.files import config_path
from .status import Outcome
from .workers import MALLOC_ENV, one_thread

MiB = 1 << 20
# Larger than nearly every track (a 3-hour 128 kbit/s mp3 is 170 MB), small enough that a few in
# flight per node never crowd Ray's object store.
DEFAULT_SHIP_BELOW = 256 * MiB
MAX_ATTEMPTS = 3  # a file whose worker died this many times is skipped until the next run
INSTALL_HINT = "pip install 'songspace[ray]'"
# mtimes seen over SMB or FAT-backed mounts are rounded to as much as 2 s.
MTIME_TOLERANCE = 2.0


@dataclass(frozen=True)
class RayConfig:
    """Where and how to analyse on Ray.

    `address`: "local" starts a cluster on this machine for the run (stopped at the end);
    "auto" joins the running cluster that $RAY_ADDRESS names (or the one started on this
    machine with `ray start`); anything else is a cluster address, HOST:PORT or ray://HOST:10001.
    A process already connected to Ray (a notebook, a test) runs on that cluster whatever this says.
    `ship_below`: files no worker can read at their path, up to this many bytes, are sent.
    `always_ship`: send every file up to `ship_below`, even where workers could read the path."""

    address: str = "local"
    ship_below: int = DEFAULT_SHIP_BELOW
    always_ship: bool = False


def require_ray():
    """The ray module; MissingDependency naming the install command when Ray is not installed."""
    try:
        import ray
    except ImportError:
        raise MissingDependency(f"Ray is not installed; to run on a cluster: {INSTALL_HINT}") from None
    return ray


# ---------------------------------------------------------------------------------------------
# Connecting
# ---------------------------------------------------------------------------------------------


@contextmanager
def connected(address: str = "local"):
    """Ray, connected for the duration (see `RayConfig.address`). A connection made here is
    closed at the end, which also stops a local cluster started here; one that was already
    open is used as it is and left open."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = "a local cluster" if address == "local" else f"the Ray cluster at {address!r}"
        raise ClusterError(f"cannot connect to {where}: {first_line(e)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """A cluster address (HOST:PORT, ray://HOST:PORT) must answer on its port: Ray itself keeps
    retrying an address where nothing listens for minutes before it gives up."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # "local", "auto": Ray finds (or starts) the cluster itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ClusterError(f"cannot connect to the Ray cluster at {address!r}: nothing answers there "
                           f"({e.strerror or e})") from None


def first_line(e: BaseException) -> str:
    """Ray's messages run to many lines (and tracebacks); the first says what happened."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ---------------------------------------------------------------------------------------------
# Models travel with the work: a node may not hold the driver's path (a fitted model lives in
# the library directory), so the files are sent, and kept once per node.
# ---------------------------------------------------------------------------------------------


def model_files(model: str) -> dict[str, bytes]:
    """{file name: bytes} of a method's model file and its config; {} for a method without one."""
    weights = resolve(model).file
    if weights is None:
        return {}
    config = config_path(weights)
    return {weights.name: weights.read_bytes(), config.name: config.read_bytes()}


def install_model(model: str, files: dict[str, bytes]) -> str:
    """The path on this node of a model sent as `model_files`, in a folder of this process's
    own (a model is a few MB): removed by the next actor to start here once this one is gone."""
    if not files:
        return model
    folder = Path(tempfile.mkdtemp(prefix=temp_prefix()))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return str(folder / next(n for n in files if n.endswith(".safetensors")))


# ---------------------------------------------------------------------------------------------
# The actor
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Elsewhere:
    """A worker's answer when its node does not hold the file the planner saw."""

    node: str
    why: str


class Analyser:
    """One per CPU of the cluster (a Ray actor): loads the model once, then analyses file after
    file, reading it at its path or from bytes sent to it."""

    def __init__(self, model: str, files: dict[str, bytes]):
        one_thread()
        remove_stale_temp_files()
        self.model = install_model(model, files)
        embedder(self.model)  # now, so that a model that cannot load fails the start, not every file
        self.node = socket.gethostname()

    def ready(self) -> tuple[str, int]:
        """(node, pid): answered once the model is loaded."""
        return self.node, os.getpid()

    def analyse(self, task: Task) -> Analysis | Elsewhere:
        why = self.not_here(task)
        if why:
            return Elsewhere(self.node, why)
        r = analyse(replace(task, model=self.model))
        # The planner compares mtimes exactly: store what it saw (the same file, within
        # MTIME_TOLERANCE), or a mount that rounds mtimes would have it re-hashed on every run.
        if r.mtime is not None and task.mtime is not None:
            r = replace(r, size=task.size, mtime=task.mtime)
        return r

    def analyse_bytes(self, task: Task, data: bytes) -> Analysis:
        return analyse_bytes(replace(task, model=self.model), data)

    def not_here(self, task: Task) -> str | None:
        """Why the file at `task.path` on this node is not the one the planner saw (None: it is)."""
        try:
            st = os.stat(task.path)
        except FileNotFoundError:
            return "no such file there"
        except OSError as e:
            return f"cannot read it there: {e.strerror or e}"
        if task.size is not None and st.st_size != task.size:
            return f"another file there ({st.st_size} bytes, not {task.size})"
        if task.mtime is not None and abs(st.st_mtime - task.mtime) > MTIME_TOLERANCE:
            return "another file there (modified at another time)"
        return None


# ---------------------------------------------------------------------------------------------
# The pool, driven from this process
# ---------------------------------------------------------------------------------------------


def analyse_on_ray(tasks: Sequence[Task], config: RayConfig, workers: int | None = None) -> Iterator[Analysis]:
    """Yield the `Analysis` of every task, in completion order, analysed by `workers` actors on
    the cluster `config` names (default: one per CPU of the cluster). Closing the generator (or
    Ctrl-C) stops the actors at once."""
    if not tasks:
        return
    models = {t.model for t in tasks}
    if len(models) != 1:
        raise ValueError(f"one model per run, not {sorted(models)}")
    with connected(config.address) as ray:
        pool = _Pool(ray, models.pop(), config, workers)
        try:
            yield from pool.run(tasks)
        finally:
            pool.stop()


class _Pool:
    def __init__(self, ray, model: str, config: RayConfig, size: int | None):
        self.ray = ray
        self.config = config
        self.files = ray.put(model_files(model))  # once in the object store, however many actors
        self.model = model
        # max_restarts=0: a dead actor is replaced here, anywhere there is a CPU (module docstring).
        self.actor_class = ray.remote(Analyser).options(
            num_cpus=1, max_restarts=0, max_task_retries=0, runtime_env={"env_vars": MALLOC_ENV})
        cpus = cluster_cpus(ray)  # whatever `size` says: with no CPU, no actor would ever start
        if not size or size < 1:
            size = cpus
        self.starting: dict = {}  # ready() ref -> actor
        self.idle: deque = deque()
        self.busy: dict = {}  # result ref -> (actor, task, attempt, bytes ref or None)
        # Actors dying before they are ready, over the run: past this, something kills every one
        # (memory too small for torch and the model, say), and replacing them would never end.
        self.start_deaths, self.max_start_deaths = 0, 3 * size + 3
        for _ in range(size):
            self.start_actor()

    def start_actor(self) -> None:
        actor = self.actor_class.remote(self.model, self.files)
        self.starting[actor.ready.remote()] = actor

    def run(self, tasks: Sequence[Task]) -> Iterator[Analysis]:
        ray = self.ray
        from ray.exceptions import RayActorError, RayTaskError

        queue: deque[tuple[Task, int]] = deque((t, 1) for t in tasks)
        while queue or self.busy:
            self.dispatch(queue)
            ready, _ = ray.wait([*self.busy, *self.starting], num_returns=1)
            ref = ready[0]
            if ref in self.starting:
                actor = self.starting.pop(ref)
                try:
                    ray.get(ref)
                except RayActorError as e:
                    if e.actor_init_failed:  # the same on every try: songspace missing on a node, a model that cannot load
                        raise ClusterError(f"Ray workers cannot start: {worker_error(e)}") from None
                    self.start_deaths += 1
                    if self.start_deaths > self.max_start_deaths:
                        raise ClusterError(f"Ray workers keep dying while they start ({self.start_deaths} so far; "
                                           f"out of memory?): {first_line(e)}") from None
                    self.start_actor()  # killed while starting: another takes its place
                    continue
                self.idle.append(actor)
                continue
            actor, task, attempt, _ = self.busy.pop(ref)
            try:
                out = ray.get(ref)
            except RayActorError as e:
                self.start_actor()
                if attempt >= MAX_ATTEMPTS:  # skipped, not failed: see the module docstring
                    yield Analysis(task.path, Outcome.SKIPPED, size=task.size, mtime=task.mtime,
                                   error=f"the worker analysing it died {attempt} times ({first_line(e)})")
                else:
                    queue.appendleft((task, attempt + 1))
                continue
            except RayTaskError as e:  # raised in the actor, which lives on: this file only
                self.idle.append(actor)
                yield Analysis(task.path, Outcome.SKIPPED, size=task.size, mtime=task.mtime,
                               error=f"the worker failed: {worker_error(e)}")
                continue
            if isinstance(out, Elsewhere):
                out = self.ship(actor, task, attempt, out)
                if out is None:  # on its way to the actor as bytes
                    continue
            self.idle.append(actor)
            self.dispatch(queue)  # the actor starts its next file while this one is stored
            yield out

    def dispatch(self, queue: deque) -> None:
        while self.idle and queue:
            actor = self.idle.popleft()
            task, attempt = queue.popleft()
            if self.config.always_ship and (task.size or 0) <= self.config.ship_below:
                if self.ship(actor, task, attempt, None) is None:
                    continue  # sent
                # grown past the limit, or unreadable here: the worker tries its path, and says why not
            self.submit(actor, task, attempt)

    def submit(self, actor, task: Task, attempt: int) -> None:
        self.busy[actor.analyse.remote(task)] = (actor, task, attempt, None)

    def ship(self, actor, task: Task, attempt: int, elsewhere: Elsewhere | None) -> Analysis | None:
        """Send the file's bytes to `actor` (None), or say why not (an Analysis to report)."""
        limit = self.config.ship_below
        try:
            st = os.stat(task.path)
            if st.st_size <= limit:
                data = Path(task.path).read_bytes()
        except OSError as e:
            return Analysis(task.path, Outcome.FAILED, error=unreadable(e))
        if st.st_size > limit:
            where = f"on {elsewhere.node} ({elsewhere.why})" if elsewhere else "on the workers"
            return Analysis(task.path, Outcome.SKIPPED, size=st.st_size, mtime=st.st_mtime,
                            error=f"not readable at this path {where}, and at {st.st_size / MiB:.0f} MiB over the "
                                  f"{limit / MiB:.0f} MiB limit for sending files to workers: mount the music at the "
                                  f"same path on every node, or raise the limit")
        data_ref = self.ray.put(data)
        shipped = replace(task, size=st.st_size, mtime=st.st_mtime)
        self.busy[actor.analyse_bytes.remote(shipped, data_ref)] = (actor, task, attempt, data_ref)
        return None

    def stop(self) -> None:
        """Kill every actor now (their files are in flight, not lost: the next run redoes them)."""
        actors = [*self.starting.values(), *self.idle, *(b[0] for b in self.busy.values())]
        self.starting.clear()
        self.idle.clear()
        self.busy.clear()
        for actor in {id(a): a for a in actors}.values():
            try:
                self.ray.kill(actor)
            except Exception:  # Ray itself may be going down (Ctrl-C reaches its processes too)
                pass


def cluster_cpus(ray) -> int:
    """The cluster's CPUs: one analyser each. ClusterError when there are none, as every actor
    would wait for one forever."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise ClusterError("the Ray cluster has no CPUs to run workers on (no worker node has joined?)")
    return cpus


def worker_error(e: BaseException) -> str:
    """The user's part of an actor's start-up failure: the exception raised in it, not Ray's frame."""
    lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
    errors = [l for l in lines if not l.startswith(("File ", "Traceback", "^", "ray::")) and ":" in l]
    return errors[-1] if errors else first_line(e)
