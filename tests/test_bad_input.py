"""A folder of good and bad files: the good ones are indexed, the bad ones recorded with their
reason, the exit code says some failed, and nothing already stored is lost."""

import json
import shutil
from pathlib import Path

import numpy as np

from songspace.library import Library


def add_bad_files(folder: Path) -> dict[str, str]:
    """Bad entries next to good music; returns {path: expected words in the reason}."""
    good_mp3 = next(folder.rglob("*.mp3"))
    bad = folder / "bad"
    bad.mkdir()
    (bad / "empty.mp3").write_bytes(b"")
    data = good_mp3.read_bytes()
    (bad / "truncated-head.mp3").write_bytes(data[:300])
    (bad / "truncated-half.mp3").write_bytes(data[: len(data) // 2])
    (bad / "notes.mp3").write_text("these are my shopping notes, not music\n" * 20)
    (bad / "x.flac").mkdir()
    return {
        str((bad / "empty.mp3").resolve()): "empty",
        str((bad / "truncated-head.mp3").resolve()): "",
        str((bad / "truncated-half.mp3").resolve()): "truncated",
        str((bad / "notes.mp3").resolve()): "not a recognised audio format",
        str((bad / "x.flac").resolve()): "is a directory",
    }


def test_bad_files_are_recorded_and_good_ones_kept(music, library_dir):
    with Library.open(library_dir) as lib:
        assert lib.index([music], workers=0).added == 12
        stored = {t.path: (t.id, lib.catalog.vector(t.id)[1]) for t in lib.catalog.tracks()}

        expected = add_bad_files(music)
        # A file deleted while the run is under way: it is in the scan, gone when its turn comes.
        doomed = shutil.copy(next(p for p in music.rglob("*.flac") if p.is_file()), music / "bad" / "doomed.flac")
        expected[str(Path(doomed).resolve())] = "not found"

        def delete_when_analysis_starts(phase, done, total, note):
            if phase == "analyse" and done == 0:
                Path(doomed).unlink(missing_ok=True)

        report = lib.index([music], workers=0, report=delete_when_analysis_starts)
        assert report.added == 0 and report.unchanged == 12
        assert {p for p, _ in report.failed} == set(expected)

        status = lib.status()
        assert status["ok"] == 12 and status["failed"] == len(expected) and status["searchable"] == 12
        reasons = dict(status["failures"])
        for path, words in expected.items():
            assert words in reasons[path], (path, reasons[path])

        for path, (track_id, vector) in stored.items():  # nothing stored was lost or changed
            t = lib.catalog.by_path(path)
            assert t.id == track_id and t.status == "ok"
            np.testing.assert_array_equal(lib.catalog.vector(track_id)[1], vector)


def test_cli_exit_code_and_status_list_failures(music, songspace):
    expected = add_bad_files(music)
    proc = songspace("index", str(music), "--workers", "0")
    assert proc.exit_code == 1, proc.stderr
    assert "failed 5" in proc.stderr
    for path in expected:
        assert Path(path).name in proc.stderr

    status = json.loads(songspace("status", "--json", check=True).stdout)
    assert status["ok"] == 12
    assert {p for p, _ in status["failures"]} == set(expected)
    text = songspace("status", check=True).stdout
    assert "is a directory" in text and "truncated" in text

    # A second run analyses nothing again and still reports the failures.
    again = songspace("index", str(music), "--workers", "0")
    assert again.exit_code == 1 and "added 0" in again.stderr
    assert "unchanged 12" in again.stderr and "failed 5" in again.stderr


def test_broken_file_fixed_later_is_indexed(music, library_dir):
    good = next(music.rglob("*.mp3"))
    broken = music / "later.mp3"
    broken.write_text("not yet")
    with Library.open(library_dir) as lib:
        assert len(lib.index([music], workers=0).failed) == 1
        shutil.copy(good, broken)
        report = lib.index([music], workers=0)
        assert report.failed == [] and report.updated == 1
        assert lib.catalog.by_path(str(broken.resolve())).status == "ok"
