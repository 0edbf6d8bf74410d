"""Past one machine, on a real local Ray cluster (2 CPUs, started once for this file):
`index --ray` gives the local path's vectors, files reach workers by path or as bytes, a worker
killed mid-run and a driver killed with -9 lose nothing, and `embed --ray` writes a Parquet
dataset that Ray Data and DuckDB read back. (Without Ray, `--ray` says how to install it:
tests/test_cli.py.)"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # one real local Ray cluster for the file: minutes in all

from songspace import Library  # noqa: E402
from songspace.analysis import Task  # noqa: E402
from songspace.dataset import COLUMNS  # noqa: E402
from songspace.distributed import RayConfig, analyse_on_ray  # noqa: E402
from songspace.models.files import DEFAULT_MODEL, config_path  # noqa: E402
from songspace.synth import STYLES, synth_track, write_audio  # noqa: E402
from helpers import ok_rows  # noqa: E402

N_LONG = 24  # enough 60-s tracks that a run is still going when a process is killed


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster with 2 CPUs; this process is connected to it (so the library uses it
    in-process), and its address lets `songspace` subprocesses join it."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def local_vectors(demo_music, tmp_path_factory):
    """{path: vector} of the demo music indexed by the local path (in this process)."""
    with Library.open(tmp_path_factory.mktemp("local") / "library") as lib:
        lib.index([demo_music], workers=0)
        return vectors_by_path(lib)


@pytest.fixture(scope="module")
def long_tracks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("long")
    for i in range(N_LONG):
        write_audio(folder / f"t{i:02d}.flac", synth_track(STYLES[i % 4], 60.0, seed=i), 16000)
    return folder


def vectors_by_path(lib) -> dict[str, np.ndarray]:
    return {t.path: lib.catalog.vector(t.id)[1] for t in lib.catalog.ok_tracks()}


def assert_same_vectors(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected)
    cosines = {p: float(np.dot(got[p], expected[p])) for p in expected}
    assert min(cosines.values()) >= 0.999, cosines


def analyser_processes() -> list[psutil.Process]:
    """This cluster's analyser actors: Ray names a worker process after the actor it hosts."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "ray::Analyser" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.NoSuchProcess:
            continue
    return found


def busy_analyser(timeout: float = 30) -> psutil.Process:
    """An analyser in the middle of a file (Ray titles it `ray::Analyser.analyse` meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in analyser_processes():
            try:
                if "Analyser.analyse" in " ".join(p.cmdline()):
                    return p
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.01)
    raise AssertionError("no analyser was busy")


def catalog_rows(db_path) -> dict[str, tuple[int, bytes]]:
    """{path: (id, vector)} of the ok tracks, after SQLite's integrity check has passed."""
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {p: (i, v) for p, i, v in db.execute(
            "SELECT t.path, t.id, e.vector FROM tracks t JOIN embeddings e ON e.track_id = t.id WHERE t.status = 'ok'")}


# ---------------------------------------------------------------------------------------------
# The same vectors as the local path
# ---------------------------------------------------------------------------------------------


def test_index_ray_gives_the_local_vectors(cluster, demo_music, local_vectors, library_dir, songspace):
    # A bare --ray before the folder: the folder is not taken for the cluster's address.
    result = songspace("index", "--ray", str(demo_music), check=True)
    assert "added 12" in result.stderr and "failed 0" in result.stderr
    with Library.open(library_dir) as lib:
        assert_same_vectors(vectors_by_path(lib), local_vectors)
        assert lib.status()["failures"] == []
        ok = lib.catalog.ok_ids()  # the timbre companion's Gaussians come back from the actors too
        assert len(lib.catalog.timbres_of(ok)) == len(ok) and lib.status()["ranking"]["by"] == "fused"
    again = songspace("index", str(demo_music), "--ray", cluster, check=True)  # the same incremental plan
    assert "added 0" in again.stderr and "unchanged 12" in again.stderr


def test_files_are_sent_as_bytes_when_workers_cannot_read_them(cluster, demo_music, local_vectors, tmp_path):
    # always_ship: every file travels through the object store, and the catalog records the
    # original paths, sizes and mtimes.
    with Library.open(tmp_path / "shipped") as lib:
        report = lib.index([demo_music], ray=RayConfig(always_ship=True))
        assert (report.added, report.failed) == (12, [])
        assert_same_vectors(vectors_by_path(lib), local_vectors)
        for t in lib.catalog.tracks():
            st = os.stat(t.path)
            assert (t.size, t.mtime) == (st.st_size, st.st_mtime)

    # A worker that finds another file at the path (here: another size than the planner saw)
    # says so, and is sent the bytes; over the size limit, the file is skipped with the reason.
    files = sorted(local_vectors)
    tasks = [Task(p, str(DEFAULT_MODEL), size=os.path.getsize(p) + 1, mtime=os.path.getmtime(p)) for p in files]
    sent = {a.path: a for a in analyse_on_ray(tasks, RayConfig())}
    assert [sent[p].status for p in files] == ["ok"] * len(files)
    assert_same_vectors({p: a.vector for p, a in sent.items()}, local_vectors)
    assert all(sent[p].size == os.path.getsize(p) for p in files)  # what was sent, not what was planned

    too_big = {a.path: a for a in analyse_on_ray(tasks[:2], RayConfig(ship_below=0))}
    assert sorted(too_big) == files[:2]
    for a in too_big.values():
        assert a.status == "skipped" and a.vector is None
        assert "another file there" in a.error and "limit for sending files to workers" in a.error


def test_what_the_planner_saw_is_stored_and_always_ship_sends_bytes(cluster, demo_music):
    # The planner saw an mtime 1 s off the file's (a mount rounding mtimes): within
    # MTIME_TOLERANCE, so the workers read the file at its path, and the result carries what the
    # planner saw; storing the worker's own mtime would have the file re-planned on every run.
    files = sorted(str(p) for p in demo_music.rglob("*") if p.is_file())[:4]
    tasks = [Task(p, str(DEFAULT_MODEL), size=os.path.getsize(p), mtime=os.path.getmtime(p) + 1.0) for p in files]
    by_path = {a.path: a for a in analyse_on_ray(tasks, RayConfig())}
    assert sorted(by_path) == files
    assert [(by_path[t.path].status, by_path[t.path].mtime) for t in tasks] == [("ok", t.mtime) for t in tasks]

    # always_ship: the same tasks go as bytes, and a shipped result carries what was sent (the
    # file's size and mtime read here as it was sent), so this fails if always_ship is ignored.
    shipped = {a.path: a for a in analyse_on_ray(tasks, RayConfig(always_ship=True))}
    assert sorted(shipped) == files
    assert [(shipped[p].status, shipped[p].mtime) for p in files] == [("ok", os.path.getmtime(p)) for p in files]


def test_an_error_inside_a_worker_skips_that_file_only(cluster, demo_music):
    # A path no worker can stat (an embedded NUL byte: ValueError, not OSError) stands for any
    # unexpected error inside an actor: that file is skipped with the reason, and the one
    # actor goes on with the next file. The actor, on starting, clears the temporary files a
    # worker that is gone left behind, and nobody else's.
    import socket
    import tempfile

    tmp, host = Path(tempfile.gettempdir()), socket.gethostname()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    stale_file, stale_dir = tmp / f"songspace-{host}_{gone}_x1.flac", tmp / f"songspace-{host}_{gone}_x2"
    live = tmp / f"songspace-{host}_{os.getpid()}_x3.flac"
    stale_file.write_bytes(b"x")
    stale_dir.mkdir()
    (stale_dir / "default.safetensors").write_bytes(b"x")
    live.write_bytes(b"x")
    try:
        good = str(next(p for p in sorted(demo_music.rglob("*")) if p.is_file()))
        bad = str(demo_music / "bad\0name.flac")
        got = {a.path: a for a in analyse_on_ray([Task(bad, str(DEFAULT_MODEL)), Task(good, str(DEFAULT_MODEL))],
                                                 RayConfig(), workers=1)}
        assert sorted(got) == sorted([bad, good])
        assert got[bad].status == "skipped" and "embedded null byte" in got[bad].error
        assert got[good].status == "ok"
        assert not stale_file.exists() and not stale_dir.exists() and live.exists()
    finally:
        live.unlink()


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------


def test_a_worker_killed_mid_run_has_its_file_retried(cluster, long_tracks, tmp_path):
    stored, killed = [], []

    def kill_one_worker(phase, done, total, note):
        if phase == "analyse" and note:
            stored.append(note)
        if len(stored) == 3 and not killed:
            os.kill(busy_analyser().pid, signal.SIGKILL)
            killed.append(True)

    with Library.open(tmp_path / "lib") as lib:
        report = lib.index([long_tracks], ray=RayConfig(), report=kill_one_worker)
        assert killed, "the run ended before a worker could be killed"
        # The killed worker held a file: that every file is in, none failed, means it was retried.
        assert (report.added, report.failed, report.interrupted) == (N_LONG, [], False)
        tracks = lib.catalog.tracks()
        assert sorted(t.path for t in tracks) == sorted(str(p) for p in long_tracks.iterdir())  # every file once
        assert len(tracks) == N_LONG and {t.status for t in tracks} == {"ok"}


def test_driver_killed_with_9_then_resumed(cluster, long_tracks, tmp_path):
    library_dir = tmp_path / "lib"
    db = library_dir / "catalog.sqlite"
    env = {**os.environ, "SONGSPACE_LIBRARY": str(library_dir), "COLUMNS": "200"}
    command = [sys.executable, "-m", "songspace", "index", str(long_tracks), "--ray", cluster]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while ok_rows(db) < 3:
        assert proc.poll() is None, f"index ended before it could be killed:\n{proc.stderr.read()}"
        assert time.monotonic() < deadline, "index made no progress"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = catalog_rows(db)
    assert 3 <= len(before) < N_LONG

    # Ray stops a dead driver's workers: nothing keeps working for nobody, and the CPUs come back.
    psutil.wait_procs(analyser_processes(), timeout=60)
    assert analyser_processes() == []

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"added {N_LONG - len(before)}," in again.stderr  # only the rest was analysed
    after = catalog_rows(db)
    assert len(after) == N_LONG  # every track once: paths are unique and all are there
    for path, row in before.items():  # nothing stored before the kill was lost or redone
        assert after[path] == row


def test_workers_that_cannot_start_are_an_error_not_a_hang(cluster, demo_music, tmp_path):
    # A model the workers cannot load stands for any start-up failure on a node (songspace or a
    # library missing there): the same on every try, so the run stops with the workers' reason.
    from songspace.errors import ClusterError

    weights = tmp_path / "broken.safetensors"
    weights.write_bytes(b"\x00" * 1000)
    config_path(weights).write_text(config_path(DEFAULT_MODEL).read_text())
    track = next(p for p in sorted(demo_music.rglob("*")) if p.is_file())
    with pytest.raises(ClusterError, match="Ray workers cannot start: .*SafetensorError"):
        list(analyse_on_ray([Task(str(track), str(weights))], RayConfig()))


# ---------------------------------------------------------------------------------------------
# Embeddings as a dataset
# ---------------------------------------------------------------------------------------------


def read_back(folder: Path) -> tuple[dict, dict]:
    """The dataset read by Ray Data and by DuckDB: ({path: vector}, {path: error}) from each
    reader, checked to agree."""
    import duckdb

    rows = ray.data.read_parquet(str(folder)).take_all()
    by_ray = {r["path"]: (None if r["vector"] is None else np.asarray(r["vector"], np.float32), r["error"]) for r in rows}
    by_duckdb = {p: (None if v is None else np.asarray(v, np.float32), e) for p, v, e in duckdb.sql(
        f"SELECT path, vector, error FROM read_parquet('{folder}/*.parquet')").fetchall()}
    assert sorted(by_ray) == sorted(by_duckdb)
    for p, (v, e) in by_duckdb.items():
        assert by_ray[p][1] == e
        assert (v is None and by_ray[p][0] is None) or np.array_equal(v, by_ray[p][0])
    return ({p: v for p, (v, e) in by_duckdb.items() if e is None},
            {p: e for p, (v, e) in by_duckdb.items() if e is not None})


def test_embed_ray_writes_a_dataset_ray_data_and_duckdb_read(cluster, music, local_vectors, demo_music, tmp_path, songspace):
    music, demo_music = music.resolve(), demo_music.resolve()
    local = {str(Path(p).relative_to(demo_music)): v for p, v in local_vectors.items()}
    (music / "looks-like.flac").mkdir()  # an entry that only looks like audio: an error row
    (music / "broken.mp3").write_bytes(b"not audio at all" * 100)

    # A folder every node sees at the same path: workers read the files in place.
    result = songspace("embed", str(music), "--out", str(tmp_path / "by-path"), "--ray")
    assert result.exit_code == 1, result.output  # some files could not be analysed
    assert "wrote 14 rows (2 failed)" in result.stderr
    vectors, errors = read_back(tmp_path / "by-path")
    assert_same_vectors({str(Path(p).relative_to(music)): v for p, v in vectors.items()}, local)
    assert sorted(Path(p).name for p in errors) == ["broken.mp3", "looks-like.flac"]
    assert "is a directory" in errors[str(music / "looks-like.flac")]

    # A bucket URI: Ray Data reads the bytes and the workers analyse them (file:// stands in for
    # s3://, through the same pyarrow filesystem layer); paths are recorded as URIs.
    result = songspace("embed", f"file://{demo_music}", "--out", str(tmp_path / "by-uri"), "--ray", cluster, check=True)
    assert "wrote 12 rows (0 failed)" in result.stderr
    vectors, errors = read_back(tmp_path / "by-uri")
    assert errors == {} and all(p.startswith("file:///") for p in vectors)
    assert_same_vectors({str(Path(p[len("file://"):]).relative_to(demo_music)): v for p, v in vectors.items()}, local)


def test_embed_ray_with_nothing_to_embed_or_that_fails(cluster, demo_music, tmp_path, songspace):
    # Nothing to embed: one empty file with the columns, as locally.
    (tmp_path / "empty").mkdir()
    result = songspace("embed", str(tmp_path / "empty"), "--out", str(tmp_path / "none"), "--ray", check=True)
    assert "wrote 0 rows (0 failed) in 1 Parquet files" in result.stderr
    assert tuple(pq.read_schema(tmp_path / "none" / "part-00000.parquet").names) == COLUMNS

    # Failures are one line and exit code 2 (Ray's own worker logs may come before or after it): a
    # missing source, and a model the workers cannot load (for any start-up failure on a node).
    weights = tmp_path / "broken.safetensors"
    weights.write_bytes(b"\x00" * 1000)
    config_path(weights).write_text(config_path(DEFAULT_MODEL).read_text())
    for args, expected in (((f"file://{tmp_path}/missing/",), re.escape(f"{tmp_path}/missing: not found")),
                           ((str(demo_music), "--model", str(weights)), "Ray Data failed: .*SafetensorError")):
        result = songspace("embed", *args, "--out", str(tmp_path / "failed"), "--ray")
        assert result.exit_code == 2, result.output
        # Ours is the last line that starts with "error: " (a Ray log line may say "RPC error: ").
        message = " ".join(re.split(r"(?m)^error: ", result.output)[-1].split())
        assert re.match(f"{expected}.*may hold part of a dataset", message), result.output


def test_an_exported_library_reads_back_in_ray_data(cluster, indexed_library, tmp_path, songspace):
    songspace("export", str(tmp_path / "ds"), "--parquet-dataset", "--rows-per-file", "5", check=True)
    vectors, errors = read_back(tmp_path / "ds")
    with Library.open(indexed_library) as lib:
        stored = vectors_by_path(lib)
    assert errors == {} and sorted(vectors) == sorted(stored)
    assert all(np.array_equal(vectors[p], stored[p]) for p in stored)
    assert sorted(f.name for f in (tmp_path / "ds").iterdir()) == [f"part-0000{i}.parquet" for i in range(3)]  # 5+5+2
