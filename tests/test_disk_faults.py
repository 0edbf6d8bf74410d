"""What the file system does to a library: a read-only mount, a full disk, a write-ahead log
deleted under a running index. Real SQLite on real (tmpfs) mounts; the mount tests skip where
this process may not mount (they need root or CAP_SYS_ADMIN, as CI has)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from songspace import Library
from songspace.catalog import Catalog


@pytest.fixture
def tmpfs(tmp_path):
    """make(size) -> a fresh tmpfs of that size; remount(folder, "ro"); all unmounted at the end."""
    mounted: list[Path] = []

    def make(size: str = "32m") -> Path:
        folder = tmp_path / f"mount{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): needs root")
        mounted.append(folder)
        return folder

    yield make
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount_ro(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Write a file until the file system holds no more."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def run(library: Path, *args):
    from typer.testing import CliRunner
    from songspace.cli import app

    return CliRunner().invoke(app, ["--library", str(library), *map(str, args)], env={"COLUMNS": "200"})


def count_tracks(library: Path) -> int:
    cat = Catalog(library / "catalog.sqlite", readonly=True)
    try:
        return sum(cat.counts().values())
    finally:
        cat.close()


# ---------------------------------------------------------------------------------------------
# read-only
# ---------------------------------------------------------------------------------------------


def test_a_read_only_library_reads_and_refuses_writes_clearly(indexed_library, music, tmpfs):
    library = shutil.copytree(indexed_library, tmpfs() / "library")
    remount_ro(library.parent)

    status = run(library, "status", "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["ok"] == 12
    similar = run(library, "similar", "1", "--json")
    assert similar.exit_code == 0, similar.output
    assert len(json.loads(similar.stdout)) > 0

    for args in (["index", music], ["use", "mfcc"], ["user", "add", "ann", "--password", "pw"]):
        refused = run(library, *args)
        assert refused.exit_code == 3, (args, refused.output)
        assert "read-only" in refused.output and "Traceback" not in refused.output

    from songspace.server import create_app

    with TestClient(create_app(library), base_url="http://127.0.0.1") as client:
        assert client.get("/api/status").json()["ok"] == 12
        assert client.get("/api/tracks/1/similar").status_code == 200
        assert client.get("/api/map").status_code == 200  # computed, not cached: nothing may be written
    assert count_tracks(library) == 12


def test_a_read_only_connection_refuses_writes_clearly(indexed_library):
    """A catalog opened for reading (as a writer does when the file or its folder cannot be
    written) answers a write with ReadOnlyLibrary, not an sqlite3 traceback."""
    from songspace.errors import ReadOnlyLibrary

    cat = Catalog(indexed_library / "catalog.sqlite", readonly=True)
    try:
        assert sum(cat.counts().values()) == 12
        with pytest.raises(ReadOnlyLibrary, match="read-only"):
            cat.add_user("ann", "pw")
    finally:
        cat.close()


# ---------------------------------------------------------------------------------------------
# a full disk
# ---------------------------------------------------------------------------------------------


def test_a_full_disk_stops_index_clearly_and_loses_nothing(indexed_library, music, tmpfs, tmp_path):
    library = shutil.copytree(indexed_library, tmpfs("24m") / "library")
    before = count_tracks(library)
    filler = fill(library.parent)

    status = run(library, "status", "--json")  # reading needs no space
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["ok"] == before

    from songspace.server import create_app

    with TestClient(create_app(library), base_url="http://127.0.0.1") as client:  # serve starts
        assert client.get("/api/status").json()["ok"] == before

    more = Path(shutil.copytree(music, tmp_path / "more"))
    for f in more.iterdir():  # new content: every file must be analysed and stored
        f.rename(f.with_name("new-" + f.name))
    full = run(library, "index", more, "--workers", "0")
    assert full.exit_code == 4, full.output
    assert "disk full" in full.output and "Traceback" not in full.output
    assert count_tracks(library) >= before

    filler.unlink()  # space again: the run resumes, nothing was lost or damaged
    resumed = run(library, "index", more, "--workers", "0")
    assert resumed.exit_code == 0, resumed.output
    assert count_tracks(library) == before + 12
    checked = run(library, "check")
    assert checked.exit_code == 0, checked.output


def test_a_nearly_full_disk_before_the_catalog_opens(indexed_library, tmpfs):
    """Full before any process opened the catalog: no room for its -shm. Reading still works
    and writing says why it cannot."""
    library = shutil.copytree(indexed_library, tmpfs("24m") / "library")
    for leftover in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (library / leftover).unlink(missing_ok=True)
    fill(library.parent)
    status = run(library, "status", "--json")
    assert status.exit_code == 0, status.output
    refused = run(library, "user", "add", "ann", "--password", "pw")
    assert refused.exit_code in (4,), refused.output
    assert "disk full" in refused.output


# ---------------------------------------------------------------------------------------------
# the write-ahead log deleted while in use
# ---------------------------------------------------------------------------------------------


def test_a_write_ahead_log_deleted_mid_run_is_saved_and_said(library_dir, music, songspace, caplog):
    lib = Library(library_dir)
    path = lib.catalog.path
    reader = Catalog(path, readonly=True)  # a server's query connection, open all along
    assert sum(reader.counts().values()) == 0
    wal = path.with_name(path.name + "-wal")
    stored = []

    def report(phase, done, total, note):
        if phase == "analyse" and done:
            stored.append(note)
            if len(stored) == 3:  # mid-run, between two commits
                wal.unlink()

    with caplog.at_level(logging.WARNING, logger="songspace"):
        result = lib.index([music], workers=0, report=report)
    assert result.added == 12 and len(stored) == 12
    assert sum(reader.counts().values()) == 12  # the reader goes on reading
    lib.close()
    reader.close()

    assert count_tracks(library_dir) == 12  # nothing lost once every connection is gone
    status = songspace("status", "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["ok"] == 12
    assert "was deleted while in use" in caplog.text  # and said
