"""Entries a music folder can hold that are not ordinary music: a name that is not UTF-8, a FIFO,
a broken link, silence and other degenerate audio. `index` goes on past each of them and says
what it did with it; nothing reaches search that is not music."""

import os
import shutil
import threading
from pathlib import Path

import pytest

from songspace.library import Library


@pytest.fixture
def two_tracks(demo_music, tmp_path) -> Path:
    """A folder holding two of the demo tracks (a private copy)."""
    folder = tmp_path / "two"
    folder.mkdir()
    for p in sorted(p for p in demo_music.rglob("*.flac") if p.is_file())[:2]:
        shutil.copy(p, folder / p.name)
    return folder


def test_a_file_name_that_is_not_utf8_is_reported_and_the_rest_indexed(two_tracks, library_dir, songspace):
    good = next(two_tracks.iterdir())
    latin1 = os.path.join(os.fsencode(two_tracks), b"caf\xe9.flac")
    shutil.copy(good, latin1)
    shown = str(two_tracks.resolve() / "caf\\xe9.flac")  # how it is printed: the byte as \xe9
    with Library.open(library_dir) as lib:
        report = lib.index([two_tracks], workers=0)
        assert report.added == 2 and not report.interrupted
        assert [p for p, _ in report.failed] == [shown]
        assert "not valid UTF-8" in report.failed[0][1]
        assert lib.status()["ok"] == 2
        again = lib.index([two_tracks], workers=0)  # reported again, never stored half-way
        assert again.unchanged == 2 and [p for p, _ in again.failed] == [shown]

    result = songspace("index", str(two_tracks), "--workers", "0")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # "some files failed"
    assert "caf\\xe9.flac" in result.stderr and "not valid UTF-8" in result.stderr

    # The same kind of name given as the folder to index: a clear error, not a traceback.
    folder = os.path.join(os.fsencode(two_tracks.parent), b"m\xfasica")
    os.mkdir(folder)
    result = songspace("index", os.fsdecode(folder), "--workers", "0")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "m\\xfasica" in result.stderr and "not valid UTF-8" in result.stderr


def test_a_fifo_or_broken_link_in_the_folder_is_skipped_with_a_reason(two_tracks, library_dir, songspace):
    fifo = two_tracks / "pipe.mp3"
    os.mkfifo(fifo)
    link = two_tracks / "gone.ogg"
    link.symlink_to(two_tracks / "nowhere.ogg")
    # Without the fix a reader blocks in open() for good: should one ever wait on the FIFO, this
    # writer ends it (a reader then sees an empty file), so the test fails instead of hanging.
    stop = threading.Event()

    def unblock():
        while not stop.wait(30):
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue  # nobody reading now
            os.close(fd)

    threading.Thread(target=unblock, daemon=True).start()
    try:
        with Library.open(library_dir) as lib:
            report = lib.index([two_tracks], workers=0)
            reasons = dict(report.failed)
            assert report.added == 2
            assert "FIFO" in reasons[str(fifo.resolve())]
            assert "broken symbolic link" in reasons[str(two_tracks.resolve() / "gone.ogg")]
            assert {p for p, _ in lib.status()["failures"]} == set(reasons)
    finally:
        stop.set()

    # As arguments: what they are, not "no such folder".
    result = songspace("index", str(fifo), "--workers", "0")
    assert result.exit_code == 2 and "is a FIFO" in result.stderr and "no such folder" not in result.stderr
    result = songspace("index", str(link), "--workers", "0")
    assert result.exit_code == 2 and "broken symbolic link" in result.stderr
