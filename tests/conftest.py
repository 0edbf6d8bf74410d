"""Shared fixtures: synthesized music written through real codecs, and fresh libraries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from songspace.synth import make_demo_library
from typer.testing import CliRunner


@pytest.fixture(scope="session")
def demo_music(tmp_path_factory) -> Path:
    """12 short tagged tracks, 4 styles, mixed codecs. Read-only: copy it before changing it."""
    folder = tmp_path_factory.mktemp("demo-music")
    make_demo_library(folder, n_per_style=3, seconds=8.0)
    return folder


@pytest.fixture(scope="session")
def tagged_music(tmp_path_factory) -> Path:
    """A library tagged as real ones are (tests/tagged_library.py: album artists, two discs, a
    compilation, pictures, lyrics, odd names). Read-only: copy it before changing it."""
    from tagged_library import make_tagged_library

    folder = tmp_path_factory.mktemp("tagged-music")
    make_tagged_library(folder)
    return folder


@pytest.fixture
def music(demo_music, tmp_path) -> Path:
    """A private, writable copy of the demo music."""
    return Path(shutil.copytree(demo_music, tmp_path / "music"))


@pytest.fixture
def library_dir(tmp_path) -> Path:
    return tmp_path / "library"


@pytest.fixture(scope="session")
def _indexed_demo(demo_music, tmp_path_factory) -> Path:
    from songspace import Library

    root = tmp_path_factory.mktemp("indexed") / "library"
    with Library.open(root) as lib:
        lib.index([demo_music], workers=0)
    return root


@pytest.fixture
def indexed_library(_indexed_demo, library_dir) -> Path:
    """`library_dir` holding the demo music already indexed (a private copy: change it freely;
    the tracks are the read-only `demo_music`)."""
    return Path(shutil.copytree(_indexed_demo, library_dir))


@pytest.fixture
def songspace(library_dir):
    """Run the command line in this process (typer's CliRunner) against `library_dir`:
    songspace("similar", "1", "--json") -> result with .exit_code, .stdout, .stderr."""
    runner = CliRunner()

    def run(*args: str, check: bool = False):
        from songspace.cli import app

        result = runner.invoke(app, ["--library", str(library_dir), *map(str, args)], env={"COLUMNS": "200"})
        if check and result.exit_code != 0:
            raise AssertionError(f"songspace {' '.join(map(str, args))} exited {result.exit_code}:\n"
                                 f"{result.stdout}\n{result.stderr}\n{result.exception!r}")
        return result

    return run


@pytest.fixture
def cli(library_dir):
    """Run the real command line in a subprocess against `library_dir`, as a user would."""

    def run(*args: str, check: bool = False, **kwargs) -> subprocess.CompletedProcess:
        env = {**os.environ, "SONGSPACE_LIBRARY": str(library_dir), "COLUMNS": "200"}
        proc = subprocess.run([sys.executable, "-m", "songspace", *args], env=env, capture_output=True,
                              text=True, timeout=600, **kwargs)
        if check and proc.returncode != 0:
            raise AssertionError(f"songspace {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run
