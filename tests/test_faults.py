"""Faults: two writers on one library, a catalog that is not a database or is damaged, and
`songspace check`."""

import sqlite3

import numpy as np
import pytest

from songspace import Library
from songspace.catalog import Catalog
from songspace.errors import CatalogError, LibraryBusy
from songspace.segment_store import DEFAULT_FILE
from songspace.vectors import INDEX_FILE


def test_a_second_writer_gets_a_clear_error_and_the_lock_is_released(library_dir, tmp_path, songspace):
    empty = tmp_path / "empty"
    empty.mkdir()
    first, second = Library.open(library_dir), Library.open(library_dir)
    try:
        with first.writer():  # what a running `index` holds
            with pytest.raises(LibraryBusy, match="being indexed or fitted by another process"):
                second.index([empty], workers=0)
            with pytest.raises(LibraryBusy, match=r"pid \d+"):
                second.fit(minutes=0.01)
            result = songspace("index", str(empty))
            assert result.exit_code == 2 and "being indexed" in result.output
            assert "Traceback" not in result.output
            with pytest.raises(LibraryBusy):  # not re-entrant: index and fit never call each other through it
                first.index([empty], workers=0)
        second.index([empty], workers=0)  # released
        with second.writer():
            with pytest.raises(LibraryBusy):
                first.index([empty], workers=0)
    finally:
        first.close()
        second.close()


def test_a_killed_writer_leaves_no_lock(library_dir, tmp_path):
    import subprocess
    import sys

    empty = tmp_path / "empty"
    empty.mkdir()
    script = ("import os, signal, sys\nfrom songspace import Library\nlib = Library.open(sys.argv[1])\n"
              "lib.writer().__enter__()\nos.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(library_dir)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    with Library.open(library_dir) as lib:
        lib.index([empty], workers=0)


def test_a_file_that_is_not_a_database(library_dir, songspace):
    library_dir.mkdir()
    (library_dir / "catalog.sqlite").write_bytes(b"these are not the droids\n" * 200)
    with pytest.raises(CatalogError, match="not a songspace catalog"):
        Catalog(library_dir / "catalog.sqlite")
    with pytest.raises(CatalogError, match="catalog.sqlite"):
        Catalog(library_dir / "catalog.sqlite", readonly=True)
    for command in (("status",), ("similar", "1"), ("check",)):
        result = songspace(*command)
        assert result.exit_code == 2, result.output
        assert str(library_dir / "catalog.sqlite") in result.output.replace("\n", "")
        assert "not a songspace catalog" in result.output and "index" in result.output
        assert "Traceback" not in result.output and not isinstance(result.exception, sqlite3.Error)


def damage(path):
    """Overwrite the middle of the file (table b-tree pages) with garbage, keeping the header."""
    data = bytearray(path.read_bytes())
    page = 4096
    pages = len(data) // page
    assert pages >= 8
    for p in range(2, pages - 1, 2):
        data[p * page + 8 : p * page + 200] = b"\xff" * 192
    path.write_bytes(bytes(data))


def test_a_damaged_catalog(library_dir, songspace):
    cat = Catalog(library_dir / "catalog.sqlite")
    rng = np.random.default_rng(0)
    for i in range(300):
        cat.put_ok(f"/music/{i}.flac", size=1, mtime=1.0, content_hash=str(i), duration=1.0, tags={"title": f"song {i}"},
                   model_id="m", vector=rng.standard_normal(64).astype(np.float32))
    cat.close()  # checkpoints the WAL into the file
    damage(library_dir / "catalog.sqlite")
    with pytest.raises(CatalogError, match="damaged"):
        Catalog(library_dir / "catalog.sqlite")
    result = songspace("status")
    assert result.exit_code == 2 and "catalog.sqlite" in result.output and "Traceback" not in result.output


def test_check_reports_and_rebuilds_the_index(indexed_library, songspace):
    first = songspace("check", check=True)
    assert "catalog   ok" in first.output and "12 tracks ok" in first.output
    assert "index" in first.output and "segments" in first.output
    again = songspace("check", check=True)  # whatever the first found, now it matches
    assert "index     ok: 12 vectors" in again.output

    (indexed_library / INDEX_FILE).write_bytes(b"junk")
    repaired = songspace("check", check=True)
    assert "index     rebuilt" in repaired.output and "does not match its stamp" in repaired.output
    assert "index     ok: 12 vectors" in songspace("check", check=True).output
    assert songspace("similar", "1", "-k", "3", "--json").exit_code == 0

    sidecar = indexed_library / DEFAULT_FILE  # segments torn, as by a crash or a bad disk
    with open(sidecar, "r+b") as f:
        f.truncate(sidecar.stat().st_size - 100)
    damaged = songspace("check")
    text = " ".join(damaged.output.split())
    assert damaged.exit_code == 1 and "segments 1 damaged" in text and "tracks [12] need analysing again" in text
    assert "segments  ok" in songspace("check", check=True).output
