"""Interrupting `songspace index` for real (kill -9, Ctrl-C), then running it again."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest

from helpers import ok_rows
from songspace.synth import STYLES, synth_track, write_audio


N = 64  # enough work that a quiet machine is still indexing when the signal comes


@pytest.fixture(scope="module")
def many_tracks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    for i in range(N):
        write_audio(folder / f"t{i:02d}.wav", synth_track(STYLES[i % 4], 30.0, seed=i), 16000)
    return folder


def start_index(folder, library_dir, *extra):
    env = {**os.environ, "SONGSPACE_LIBRARY": str(library_dir), "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "songspace", "index", str(folder), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=default_ctrl_c)


def default_ctrl_c() -> None:
    """Ctrl-C as a terminal gives it: a test run started in the background by a shell without
    job control (`cmd &` in a script) ignores SIGINT, and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_rows(proc, db_path, n, timeout=120):
    deadline = time.monotonic() + timeout
    while ok_rows(db_path) < n:
        assert proc.poll() is None, "index finished before it could be interrupted: give it more work"
        assert time.monotonic() < deadline, "index made no progress"
        time.sleep(0.02)


def snapshot(db_path) -> dict[str, tuple[int, bytes]]:
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {p: (i, v) for p, i, v in db.execute(
            "SELECT t.path, t.id, e.vector FROM tracks t JOIN embeddings e ON e.track_id = t.id WHERE t.status = 'ok'")}


def resume_and_check(folder, library_dir, before):
    proc = start_index(folder, library_dir, "--workers", "1")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    after = snapshot(library_dir / "catalog.sqlite")
    assert len(after) == N  # every file exactly once: paths are unique and all are there
    assert f"added {N - len(before)}," in err  # only the rest was analysed
    for path, (track_id, vector) in before.items():  # nothing stored before the kill was lost
        assert after[path] == (track_id, vector)


@pytest.mark.slow
def test_kill_9_then_resume(many_tracks, tmp_path):
    library_dir = tmp_path / "lib"
    proc = start_index(many_tracks, library_dir)  # default: 2 worker processes
    wait_for_rows(proc, library_dir / "catalog.sqlite", 3)
    children = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = snapshot(library_dir / "catalog.sqlite")
    assert 3 <= len(before) < N
    psutil.wait_procs(children, timeout=30)  # orphaned workers exit on their own
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    resume_and_check(many_tracks, library_dir, before)


@pytest.mark.slow
def test_ctrl_c_then_resume(many_tracks, tmp_path):
    library_dir = tmp_path / "lib"
    proc = start_index(many_tracks, library_dir)
    wait_for_rows(proc, library_dir / "catalog.sqlite", 3)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again" in err
    assert "Traceback" not in err
    before = snapshot(library_dir / "catalog.sqlite")
    assert 3 <= len(before) < N
    resume_and_check(many_tracks, library_dir, before)


WORKERS_SCRIPT = """
import multiprocessing as mp, sys, threading, time
from songspace.workers import run_parallel

def forever(x):
    time.sleep(3600)

if __name__ == "__main__":
    threading.Thread(target=lambda: list(run_parallel(forever, range(4), workers=2)), daemon=True).start()
    while len(mp.active_children()) < 2:
        time.sleep(0.05)
    print(" ".join(str(p.pid) for p in mp.active_children()), flush=True)
    time.sleep(3600)
"""


def test_workers_die_with_a_killed_parent(tmp_path):
    """kill -9 of the indexing process: its workers go with it, busy or not (they kept running,
    up to 15 s per file here, forever when idle)."""
    script = tmp_path / "pool.py"
    script.write_text(WORKERS_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    workers = [psutil.Process(int(pid)) for pid in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(w.ppid() == parent.pid for w in workers)
    parent.kill()
    parent.wait()
    # Busy in a task for an hour: without the kernel's help they would outlive this wait.
    gone, alive = psutil.wait_procs(workers, timeout=120)
    for w in alive:
        w.kill()
    assert not alive


def test_sigterm_during_training_removes_its_temporary_files(many_tracks, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "songspace", "train", str(many_tracks), "--out",
                             str(tmp_path / "m.safetensors"), "--minutes", "30", "--workers", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(temp.glob("songspace-train-*/*")):  # the corpus is being written
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.05)
    proc.terminate()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0  # stopped, not finished
    assert not list(temp.glob("songspace-train-*")), err
