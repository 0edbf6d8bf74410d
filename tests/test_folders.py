"""Folders that drop out or lead elsewhere: an unreadable folder is reported and its tracks stay
(with their stars); links to folders are followed, loops walked once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from songspace import Library
from songspace.catalog import Catalog

PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def without_root_override():
    """preexec_fn: give up root's right to read any folder (the two DAC capabilities, dropped from
    the bounding set, so the exec'd command never has them): a folder's mode then counts."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_links_to_folders_are_followed_and_loops_walked_once(music, tmp_path, library_dir):
    elsewhere = Path(shutil.copytree(sorted(p for p in music.iterdir() if p.is_dir())[0], tmp_path / "elsewhere"))
    (music / "linked").symlink_to(elsewhere, target_is_directory=True)
    (music / "loop").symlink_to(music, target_is_directory=True)  # music/loop/loop/... forever, unguarded
    n_elsewhere = len(list(elsewhere.iterdir()))
    with Library(library_dir) as lib:
        report = lib.index([music], workers=0)
        paths = [t.path for t in lib.catalog.tracks()]
    assert report.added == 12 + n_elsewhere and not report.failed
    assert sum("/linked/" in p for p in paths) == n_elsewhere
    assert not any("/loop/" in p for p in paths)


def test_an_unreadable_folder_is_reported_and_its_tracks_stay(music, tmp_path):
    library = tmp_path / "library"
    root = os.geteuid() == 0

    def songspace(*args):
        env = {**os.environ, "SONGSPACE_LIBRARY": str(library), "COLUMNS": "200"}
        return subprocess.run([sys.executable, "-m", "songspace", *map(str, args)], env=env, capture_output=True,
                              text=True, timeout=600, preexec_fn=without_root_override if root else None)

    first = songspace("index", music, "--workers", "0")
    assert first.returncode == 0, first.stderr

    hidden = sorted(p for p in music.iterdir() if p.is_dir())[0]
    cat = Catalog(library / "catalog.sqlite")
    inside = [t for t in cat.tracks() if t.path.startswith(str(hidden) + "/")]
    cat.star("ann", [str(inside[0].id)])
    cat.close()
    hidden.chmod(0)
    try:
        probe = subprocess.run([sys.executable, "-c", f"import os; os.listdir({str(hidden)!r})"], capture_output=True,
                               preexec_fn=without_root_override if root else None)
        if probe.returncode == 0:
            pytest.skip("this user reads a folder of mode 000 whatever its mode (root's capabilities could not be dropped)")
        second = songspace("index", music, "--workers", "0")
    finally:
        hidden.chmod(0o755)
    assert second.returncode == 1, second.stderr
    assert f"unreadable: {hidden}: cannot read folder: Permission denied; its {len(inside)} tracks stay" in second.stderr
    assert "removed 0" in second.stderr
    cat = Catalog(library / "catalog.sqlite", readonly=True)
    try:
        assert sum(cat.counts().values()) == 12
        assert str(inside[0].id) in cat.stars("ann")
    finally:
        cat.close()

    third = songspace("index", music, "--workers", "0")  # readable again: nothing analysed, nothing removed
    assert third.returncode == 0, third.stderr
    assert "unchanged 12, removed 0" in third.stderr
