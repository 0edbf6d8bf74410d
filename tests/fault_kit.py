"""Fault injection (issue 22), as SQLite's crash tests do it: run a songspace command, kill it
with SIGKILL at a chosen point, run `songspace check`, finish the work, and compare the library
with one a clean run made. Shared by tests/test_fault_injection.py (a few points, in CI) and
bench/fault_injection.py (many points, a table of counts).

How a kill point is chosen: run as a script, this file is `songspace` with a test-only hook.
Every *durable step* the process takes is numbered as it starts: each SQL statement that writes
(INSERT, UPDATE, DELETE, COMMIT, CREATE..., seen through sqlite3's trace callback, whose call
comes just before SQLite runs the statement), each `os.fsync` and each `os.replace` (the
segment sidecar's appends and compactions, the vector index's atomic saves). With
$SONGSPACE_FAULT_LOG set, each step is appended to that file as it starts; with
$SONGSPACE_FAULT_KILL_AT=N the process sends itself SIGKILL as step N starts. A clean run
counts the steps; kills then land on evenly spaced steps of it. Killing just before each step
is killing just after the one before it, so every state the disk can be left in by the process
lies between two such points, and the points are deterministic (unlike timed kills, which
mostly land in the long stretches of decoding and embedding, where nothing is being written,
and never twice on the same step). Nothing in songspace itself knows of the hook.

Workers started with "spawn" re-import this file as `__mp_main__`: the hook is installed in
`main()` only, and only the process that installed it is killed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

KILL_AT = "SONGSPACE_FAULT_KILL_AT"
LOG = "SONGSPACE_FAULT_LOG"
ROOT = "SONGSPACE_FAULT_ROOT"  # the library: fsync and replace count there only (not numba's cache, say)
HERE = Path(__file__).resolve()

# SQL that changes the file (statements of triggers arrive as "-- TRIGGER ..." and are a part of
# the statement that fired them)
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|COMMIT|END|CREATE|DROP|ALTER)\b|^\s*PRAGMA\s+\w+\s*=",
                    re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# The hook: runs inside the songspace process under test
# ---------------------------------------------------------------------------------------------


def install() -> None:
    kill_at = int(os.environ.get(KILL_AT) or 0)
    log_path = os.environ.get(LOG)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND) if log_path else None
    me = os.getpid()
    count = [0]
    root = os.path.realpath(os.environ.get(ROOT) or "/") + os.sep

    def in_library(path) -> bool:
        try:
            return (os.path.realpath(path) + os.sep).startswith(root)
        except (OSError, TypeError, ValueError):
            return False

    def step(kind: str) -> None:
        if os.getpid() != me:  # a forked child is not the process under test
            return
        count[0] += 1
        if log_fd is not None:
            os.write(log_fd, f"{count[0]}\t{kind[:100]!r}\n".encode())
        if count[0] == kill_at:
            os.kill(me, signal.SIGKILL)

    def trace(sql: str) -> None:
        if WRITES.match(sql):
            step(sql.split(None, 1)[0].upper() + " " + sql)

    connect = sqlite3.connect

    def traced_connect(database, *args, **kwargs):
        db = connect(database, *args, **kwargs)
        if "mode=ro" not in str(database):  # a reader's COMMIT ends a read: nothing durable
            db.set_trace_callback(trace)
        return db

    fsync, replace = os.fsync, os.replace

    def traced_fsync(fd):
        name = f"/proc/self/fd/{fd if isinstance(fd, int) else fd.fileno()}"
        if in_library(name):
            step(f"fsync {os.path.basename(os.path.realpath(name))}")
        return fsync(fd)

    def traced_replace(src, dst, *args, **kwargs):
        if in_library(dst):
            step(f"replace {os.path.basename(dst)}")
        return replace(src, dst, *args, **kwargs)

    sqlite3.connect, os.fsync, os.replace = traced_connect, traced_fsync, traced_replace


def main() -> None:
    install()
    from songspace.cli import app

    app(prog_name="songspace")


# ---------------------------------------------------------------------------------------------
# Running songspace
# ---------------------------------------------------------------------------------------------


def environment(**extra: str) -> dict:
    src = str(HERE.parents[1] / "src")
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": src + (os.pathsep + path if path else ""), **extra}


def command(*args) -> list[str]:
    """`songspace ARGS` with the hook."""
    return [sys.executable, str(HERE), *map(str, args)]


def songspace(library: Path, *args, kill_at: int | None = None, log: Path | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess:
    extra = {KILL_AT: str(kill_at or 0), ROOT: str(library)}
    if log is not None:
        extra[LOG] = str(log)
    return subprocess.run(command("--library", library, *args), check=False, env=environment(**extra),
                          capture_output=True, text=True, timeout=timeout)


def killed_after(library: Path, seconds: float, *args) -> subprocess.CompletedProcess:
    """`songspace ARGS`, sent SIGKILL after `seconds` unless it finished first: a timed kill, for
    the stretches with no durable step to stop at (training, writing a model file)."""
    proc = subprocess.Popen(command("--library", library, *args), env=environment(**{ROOT: str(library)}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def steps(log: Path) -> list[str]:
    """The durable steps a run logged, in order."""
    return log.read_text().splitlines() if log.exists() else []


def spread(total: int, n: int) -> list[int]:
    """n step numbers evenly spaced over 1..total (all of them when there are no more than n)."""
    if total <= n:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (n - 1)) for i in range(n)}) if n > 1 else [1 + total // 2]


# ---------------------------------------------------------------------------------------------
# What a library holds, to compare
# ---------------------------------------------------------------------------------------------


@dataclass
class Held:
    """Everything of a library that must survive a fault, keyed by what does not depend on the
    order of writes (paths, names), never by row ids."""

    integrity: str
    model: str | None
    tracks: dict = field(default_factory=dict)  # path -> (status, model id, vector bytes, timbre blob)
    segments: dict = field(default_factory=dict)  # path -> (starts, vectors) bytes of the current model
    users: dict = field(default_factory=dict)  # name -> password
    playlists: list = field(default_factory=list)  # (owner, name, comment, public, [paths])
    stars: set = field(default_factory=set)
    plays: list = field(default_factory=list)  # sorted (user, path, played_at)
    predictions: dict = field(default_factory=dict)  # (name, path) -> (label, confidence, model id): the tags


def held(library: Path, segments: bool = True) -> Held:
    """Read `library`'s catalog (a plain read-only SQLite connection: no songspace code)."""
    path = library / "catalog.sqlite"
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        h = Held(integrity="; ".join(r[0] for r in db.execute("PRAGMA integrity_check")),
                 model=(db.execute("SELECT value FROM meta WHERE key = 'model'").fetchone() or [None])[0])
        paths = dict(db.execute("SELECT id, path FROM tracks"))
        has_timbre = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'timbre'").fetchone() is not None
        for p, status, model, vector, blob in db.execute(
                "SELECT t.path, t.status, e.model_id, e.vector, "
                f"{'(SELECT blob FROM timbre WHERE track_id = t.id)' if has_timbre else 'NULL'} FROM tracks t "
                "LEFT JOIN embeddings e ON e.track_id = t.id"):
            h.tracks[p] = (status, model, vector, blob)  # the timbre blob is stored with the vector
        h.users = dict(db.execute("SELECT name, password FROM users"))
        for pid, owner, name, comment, public in db.execute(
                "SELECT id, owner, name, comment, public FROM playlists ORDER BY id"):
            entries = [paths.get(t) for (t,) in db.execute(
                "SELECT track_id FROM playlist_entries WHERE playlist_id = ? ORDER BY position", (pid,))]
            h.playlists.append((owner, name, comment, public, entries))
        h.stars = set(db.execute("SELECT user, item FROM stars"))
        h.plays = sorted((u, paths.get(t), when) for u, t, when in db.execute("SELECT user, track_id, played_at FROM plays"))
        h.predictions = {(name, paths.get(t)): (label, c, model) for t, name, label, c, model in db.execute(
            "SELECT track_id, name, label, confidence, model_id FROM predictions")}
    finally:
        db.close()
    if segments and h.integrity == "ok":
        h.segments = stored_segments(library)
    return h


def stored_segments(library: Path) -> dict:
    """path -> (starts, vectors) bytes, as the catalog hands them out (decoded from the sidecar)."""
    from songspace.catalog import Catalog

    cat = Catalog(library / "catalog.sqlite", readonly=True)
    try:
        ok = {t.id: t.path for t in cat.ok_tracks()}
        return {ok[i]: (np_bytes(s), np_bytes(v)) for i, (s, v) in cat.segments_of(list(ok)).items()}
    finally:
        cat.close()


def np_bytes(a) -> bytes:
    import numpy as np

    return np.ascontiguousarray(a).tobytes()


@dataclass
class Verdict:
    """One fault, judged: what was lost or differs from the clean run."""

    lost: list[str] = field(default_factory=list)  # tracks of the clean run missing or not ok
    different: list[str] = field(default_factory=list)  # vectors or segments not bit-identical, or extra rows
    corrupt: str = ""  # the integrity check or `check` failed
    other: list[str] = field(default_factory=list)  # users, playlists, stars, plays, the model

    @property
    def sound(self) -> bool:
        return not (self.lost or self.different or self.corrupt or self.other)

    def __str__(self) -> str:
        parts = [f"corrupt: {self.corrupt}"] if self.corrupt else []
        parts += [f"lost {self.lost[:3]}"] if self.lost else []
        parts += [f"different {self.different[:3]}"] if self.different else []
        parts += self.other[:3]
        return "; ".join(parts) or "sound"


def compare(got: Held, clean: Held, listening: bool = True) -> Verdict:
    v = Verdict()
    if got.integrity != "ok":
        v.corrupt = got.integrity
        return v
    for p, (status, model, vector, blob) in clean.tracks.items():
        mine = got.tracks.get(p)
        if mine is None or (status == "ok" and mine[0] != "ok"):
            v.lost.append(p)
        elif mine != (status, model, vector, blob):
            v.different.append(p)
    v.different += [f"extra {p}" for p in got.tracks if p not in clean.tracks]
    if got.segments != clean.segments:
        v.different += [f"segments of {p}" for p in set(clean.segments) | set(got.segments)
                        if got.segments.get(p) != clean.segments.get(p)]
    if got.model != clean.model:
        v.other.append(f"model {got.model} != {clean.model}")
    if got.predictions != clean.predictions:  # the tags of a track stored just before a kill, say
        v.other += [f"tags of {k}: {got.predictions.get(k)} != {clean.predictions.get(k)}"
                    for k in set(got.predictions) | set(clean.predictions) if got.predictions.get(k) != clean.predictions.get(k)]
    if listening:
        for name in ("users", "playlists", "stars", "plays"):
            if getattr(got, name) != getattr(clean, name):
                v.other.append(f"{name} differ: {getattr(got, name)!r:.200} != {getattr(clean, name)!r:.200}")
    return v


# ---------------------------------------------------------------------------------------------
# One kill, judged
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: str
    point: int  # the step killed at
    step: str  # what that step was in the clean run
    reached: bool  # the process died at that step (False: it finished first)
    verdict: Verdict


def copy_library(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    return Path(shutil.copytree(src, dst, symlinks=True))


def check_after(library: Path) -> str:
    """`songspace check` after a fault: "" when it passes, else what it said."""
    done = songspace(library, "check")
    if done.returncode != 0 or "Traceback" in done.stderr:
        return f"check exit {done.returncode}: {(done.stdout + done.stderr).strip()[-300:]}"
    return ""


def kill_and_finish(scenario: str, base: Path, work: Path, args: list, point: int, clean_steps: list[str],
                    finish: list[list], clean, listening: bool = True, after: float | None = None) -> Outcome:
    """Copy `base` to `work`, run `songspace ARGS` killed at `point`, check, run each of `finish`
    (the commands that complete the work: the same command again, or `index`), compare with `clean`
    (a Held, or a function of the finished library giving one). `after`: kill after that many
    seconds instead (a timed kill; `point` then only names it)."""
    library = copy_library(base, work)
    died = songspace(library, *args, kill_at=point) if after is None else killed_after(library, after, *args)
    reached = died.returncode == -signal.SIGKILL
    step = clean_steps[point - 1].split("\t", 1)[-1] if 0 < point <= len(clean_steps) else "?"
    if after is not None:
        step = f"after {after:.1f} s"
    verdict = Verdict()
    if not reached and died.returncode != 0:
        verdict.other.append(f"the run failed without a kill: exit {died.returncode}: {died.stderr.strip()[-300:]}")
    verdict.corrupt = check_after(library)
    if not verdict.corrupt:
        for again in finish:
            done = songspace(library, *again)
            if done.returncode != 0:
                verdict.other.append(f"`{' '.join(map(str, again))}` after the kill: exit {done.returncode}: "
                                     f"{(done.stdout + done.stderr).strip()[-300:]}")
        got = compare(held(library), clean(library) if callable(clean) else clean, listening)
        verdict.lost, verdict.different, verdict.other = got.lost, got.different, verdict.other + got.other
        verdict.corrupt = got.corrupt
    return Outcome(scenario, point, step, reached, verdict)


def summary(outcomes: list[Outcome]) -> dict:
    return {"points": len(outcomes), "reached": sum(o.reached for o in outcomes),
            "lost tracks": sum(len(o.verdict.lost) for o in outcomes),
            "corrupt catalogs": sum(bool(o.verdict.corrupt) for o in outcomes),
            "differences": sum(len(o.verdict.different) + len(o.verdict.other) for o in outcomes)}


if __name__ == "__main__":
    main()
