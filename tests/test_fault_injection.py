"""The fault-injection suite (issue 22), lean: kill -9 at a few evenly spaced durable steps of
`index`, `user add` and a `serve` under load, and a full disk at a few amounts of free space;
each followed by `songspace check`, the work finished, and a comparison with a clean run. The
whole suite with more points, `use` and `fit`, and a table of counts: bench/fault_injection.py.
How the kill points are chosen: fault_kit.py."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import fault_disk as fd
import fault_kit as kit
import fault_scenarios as fs
import pytest


def assert_sound(outcomes, all_killed: bool = True) -> None:
    assert outcomes
    for o in outcomes:
        assert o.verdict.sound, f"{o.scenario}, step {o.point} ({o.step[:80]}): {o.verdict}"
        if all_killed:
            assert o.reached, f"{o.scenario}: the run finished before step {o.point}"


# ---------------------------------------------------------------------------------------------
# The hook itself, and what it found
# ---------------------------------------------------------------------------------------------


def test_a_kill_lands_on_the_step_asked_for_and_check_and_a_rerun_repair(tmp_path):
    library, log = tmp_path / "lib", tmp_path / "steps.log"
    clean = kit.songspace(library, "user", "add", "ann", "--password", "pw", log=log)
    assert clean.returncode == 0, clean.stderr
    steps = kit.steps(log)
    insert = next(n for n, s in enumerate(steps, 1) if "INSERT INTO users" in s)
    assert insert > 1  # the catalog was created first: steps of the migrations

    for point in (insert // 2, insert):  # amid the migrations, and just before the user's row
        work = tmp_path / f"work{point}"
        died = kit.songspace(work, "user", "add", "ann", "--password", "pw", kill_at=point)
        assert died.returncode == -signal.SIGKILL
        assert kit.held(work).users == {}
        assert kit.check_after(work) == ""
        again = kit.songspace(work, "user", "add", "ann", "--password", "pw")
        assert again.returncode == 0, again.stderr
        assert kit.held(work).users == {"ann": "pw"}


WRITE = """
import sys
import fault_kit
fault_kit.install()
from songspace.catalog import Catalog
cat = Catalog(sys.argv[1])
getattr(cat, sys.argv[2])(*eval(sys.argv[3]))
"""


def counted_run(tmp_path, path, script_text: str, *args: str):
    """Run `script_text` (catalog path, then `args`) to the end on a copy of the catalog at
    `path`, every durable step numbered: (the script, the environment to run it again on `path`
    with a kill added, the steps it took)."""
    script = tmp_path / "script.py"
    script.write_text(script_text)
    env = kit.environment(**{kit.LOG: str(tmp_path / "steps.log"), kit.ROOT: str(tmp_path),
                             "PYTHONPATH": kit.environment()["PYTHONPATH"] + ":" + str(kit.HERE.parent)})
    probe = tmp_path / "probe"
    probe.mkdir()
    shutil.copy(path, probe)
    done = subprocess.run([sys.executable, str(script), str(probe / "catalog.sqlite"), *args], check=False,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    env.pop(kit.LOG)
    return script, env, kit.steps(tmp_path / "steps.log")


@pytest.mark.parametrize("method, args, table", [
    ("star", "('ann', ['1', '2'])", "stars"),
    ("star", "('ann', ['1', '2'], False)", "stars"),
    ("add_plays", "('ann', [(1, 10.0), (2, 20.0)])", "plays"),
])
def test_a_write_of_several_rows_is_applied_whole_or_not_at_all(tmp_path, method, args, table):
    """A Subsonic star or scrobble of two items is one request: killed between its rows, none of
    them stays (each row was its own transaction: the first stayed, and a client sending the
    scrobble again counted its first play twice)."""
    import numpy as np

    from songspace.catalog import Catalog

    path = tmp_path / "catalog.sqlite"
    cat = Catalog(path)
    for i in (1, 2):
        cat.put_ok(f"/music/{i}.flac", size=1, mtime=1.0, content_hash=str(i), duration=1.0, tags={},
                   model_id="m", vector=np.ones(4, np.float32))
    cat.add_user("ann", "pw")
    if args.endswith("False)"):
        cat.db.executemany("INSERT INTO stars (user, item, starred) VALUES ('ann', ?, 0)", [("1",), ("2",)])
    cat.close()
    before = sorted(kit.held(tmp_path, segments=False).__dict__[table])

    script, env, steps = counted_run(tmp_path, path, WRITE, method, args)
    rows = [n for n, s in enumerate(steps, 1) if table in s and "COMMIT" not in s]
    assert len(rows) == 2, steps

    env[kit.KILL_AT] = str(rows[1])  # between the two rows
    died = subprocess.run([sys.executable, str(script), str(path), method, args], check=False, env=env,
                          capture_output=True, text=True)
    assert died.returncode == -signal.SIGKILL, died.stderr
    after = kit.held(tmp_path, segments=False)
    assert after.integrity == "ok"
    assert sorted(after.__dict__[table]) == before  # none of the two


PUT = """
import sys
import numpy as np
import fault_kit
fault_kit.install()
from songspace.catalog import Catalog
cat = Catalog(sys.argv[1])
cat.put_ok("/music/1.flac", size=1, mtime=1.0, content_hash="1", duration=1.0, tags={}, model_id="m",
           vector=np.ones(4, np.float32), timbre=b"\\x01" * 460)
"""


def test_a_tracks_timbre_is_stored_with_its_vector_or_not_at_all(tmp_path):
    """Killed as the timbre blob is written, after the track's row and vector: none of them stays;
    a run to the end stores all three."""
    from songspace.catalog import Catalog

    path = tmp_path / "catalog.sqlite"
    Catalog(path).close()
    script, env, steps = counted_run(tmp_path, path, PUT)
    [at] = [n for n, s in enumerate(steps, 1) if "INTO timbre" in s]
    assert any("INTO embeddings" in s for s in steps[: at - 1])  # the vector is written first
    env[kit.KILL_AT] = str(at)
    died = subprocess.run([sys.executable, str(script), str(path)], check=False, env=env, capture_output=True, text=True)
    assert died.returncode == -signal.SIGKILL, died.stderr
    after = kit.held(tmp_path, segments=False)
    assert after.integrity == "ok" and after.tracks == {}
    env.pop(kit.KILL_AT)
    subprocess.run([sys.executable, str(script), str(path)], check=True, env=env, capture_output=True, text=True)
    assert kit.held(tmp_path, segments=False).tracks["/music/1.flac"][3] == b"\x01" * 460


# ---------------------------------------------------------------------------------------------
# kill -9 and a full disk, a few points each
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return fs.make_world(tmp_path_factory.mktemp("faults"))


def scenario(world, name):
    return next(s for s in fs.scenarios(world) if s.name == name)


@pytest.mark.slow
def test_kill_9_during_index_loses_nothing(world, tmp_path):
    assert_sound(fs.run_kills(scenario(world, "index (changes)"), tmp_path, 4, world))


@pytest.mark.slow
def test_kill_9_during_user_add_loses_nothing(world, tmp_path):
    outcomes = fs.run_kills(scenario(world, "user add"), tmp_path, 3, world)
    assert_sound(outcomes)


@pytest.mark.slow
def test_kill_9_of_a_server_under_load(world, tmp_path):
    """Readers in threads while the server indexes and takes playlist, star and play writes:
    no 5xx before the kill; after it every answered write is there and the one in flight whole
    or absent; `check` passes; an `index` then leaves what a clean one does."""
    assert_sound(fs.run_serve_kills(world, tmp_path, 2), all_killed=False)


@pytest.mark.slow
def test_a_full_disk_at_several_points_of_index(world, tmp_path):
    disk = fd.Tmpfs(tmp_path / "disk")
    if disk.why_not:
        pytest.skip(f"{disk.why_not}: needs root or CAP_SYS_ADMIN")
    try:
        s = next(s for s in fd.disk_scenarios(world) if s.name == "index (changes)")
        outcomes = fd.run_disk_full(s, disk, tmp_path / "work", 3)
    finally:
        disk.close()
    assert_sound(outcomes, all_killed=False)  # with the most space left, the run may finish
    assert outcomes[0].step == "stopped"  # no space at all: the run stopped, and said why
