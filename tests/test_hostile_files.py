"""Entries a music folder can hold that are not ordinary music: a name that is not UTF-8, a FIFO,
a broken link, silence and other degenerate audio. `index` goes on past each of them and says
what it did with it; nothing reaches search that is not music."""

import json
import os
import shutil
import struct
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from songspace.library import Library
from songspace.server import create_app


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


def float_wav(path: Path, y: np.ndarray, sr: int) -> Path:
    """A 32-bit float WAV written byte by byte: PyAV's encoders would not keep NaN samples."""
    data = np.asarray(y, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, sr, sr * 4, 4, 32)  # 3: IEEE float, mono
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
                     + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
    return path


def pcm_wav(path: Path, y: np.ndarray, sr: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(sr)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_silent_and_degenerate_audio_is_set_aside_and_queries_still_work(indexed_library, tmp_path, songspace):
    folder = tmp_path / "odd"
    folder.mkdir()
    sr = 16000
    rng = np.random.default_rng(0)
    noise = (0.3 * rng.standard_normal(4 * sr)).astype(np.float32)
    partly_nan = noise.copy()
    partly_nan[::50] = np.nan
    expected = {
        float_wav(folder / "nan.wav", np.full(3 * sr, np.nan), sr): ("silent", "not numbers"),
        pcm_wav(folder / "one-sample.wav", np.array([0.5]), sr): ("too_short", "too short"),
        pcm_wav(folder / "silence.wav", np.zeros(5 * sr), sr): ("silent", "no sound"),
        float_wav(folder / "dc.wav", np.full(5 * sr, 0.25), sr): ("silent", "DC"),
        # Longer than the 600 s decoded whole: judged on the windows spread over it.
        pcm_wav(folder / "long-silence.wav", np.zeros(660 * 8000), 8000): ("silent", "parts analysed"),
    }
    music = float_wav(folder / "music-with-some-nan.wav", partly_nan, sr)
    with Library.open(indexed_library) as lib:
        report = lib.index([folder], workers=0)
        assert report.added == 1 and report.failed == []
        aside = dict(report.set_aside)
        assert set(aside) == {str(p) for p in expected}
        status = lib.status()
        assert (status["silent"], status["too_short"], status["ok"]) == (4, 1, 13)
        assert status["searchable"] == 13 and status["tracks"] == 18
        for path, (state, words) in expected.items():
            t = lib.catalog.by_path(str(path))
            assert t.status == state and words in t.error, (path, t.error)
            assert lib.catalog.vector(t.id) is None  # never an ordinary vector
        kept = lib.catalog.by_path(str(music))
        assert kept.status == "ok" and np.isfinite(lib.catalog.vector(kept.id)[1]).all()
        assert lib.index([folder], workers=0).set_aside == report.set_aside  # not analysed again
        ids = {lib.catalog.by_path(str(p)).id for p in expected}

    app = create_app(indexed_library, index_workers=0)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        r = client.get("/api/map")
        assert r.status_code == 200, r.text
        placed = {p["id"] for p in r.json()["points"]}
        assert len(placed) == 13 and kept.id in placed and not ids & placed
        r = client.get("/api/path", params={"a": kept.id, "b": min(placed), "n": 5})
        assert r.status_code == 200, r.text
        assert client.get("/api/status").json()["silent"] == 4

    shown = songspace("status", check=True).stdout
    assert "silent 4, too short 1" in shown and "one-sample.wav: too short" in shown
    assert songspace("similar", str(kept.id), "--json", check=True).exit_code == 0
    result = songspace("clusters", str(tmp_path / "lists"), "--json")
    assert result.exit_code == 0, result.stderr
    grouped = {t["id"] for g in json.loads(result.stdout) for t in g["tracks"]}
    assert kept.id in grouped and not ids & grouped


def test_a_catalog_from_before_the_new_statuses_takes_them_and_keeps_everything(indexed_library, tmp_path):
    """Old catalogs allow only 'ok' and 'failed' (a CHECK SQLite cannot alter): the table is
    rebuilt once on open, with every id, vector, play and playlist entry in place."""
    import sqlite3

    from songspace.catalog import Catalog

    db_path = indexed_library / "catalog.sqlite"
    with Library.open(indexed_library) as lib:
        first = lib.catalog.tracks()[0]
        lib.catalog.add_plays("bob", [(first.id, 1.0)])
        lib.catalog.save_playlist(None, "bob", "mine", [first.id])
        before = {t.id: lib.catalog.vector(t.id)[1].tobytes() for t in lib.catalog.tracks()}
    db = sqlite3.connect(db_path)
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'tracks'").fetchone()[0]
    db.execute("PRAGMA writable_schema = ON")  # make it the old table, as an old version made it
    db.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'tracks'",
               (sql.replace("'ok', 'failed', 'silent', 'too_short'", "'ok', 'failed'"),))
    db.commit()
    db.execute("PRAGMA user_version = 2")  # the schema version before the statuses (catalog/migrations.py)
    db.close()
    db = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.IntegrityError):  # the old table refuses the new status
        db.execute("UPDATE tracks SET status = 'silent' WHERE id = ?", (first.id,))
    db.close()

    catalog = Catalog(db_path)
    catalog.put_failed(first.path, "silent: no sound", status="silent")
    assert catalog.counts()["silent"] == 1
    assert {t.id: catalog.vector(t.id)[1].tobytes() for t in catalog.tracks()} == before
    assert catalog.play_counts()[first.id][0] == 1 and catalog.playlists()[0]["track_ids"] == [first.id]
    catalog.remove([first.id])  # the foreign keys still cascade to the rebuilt table
    assert first.id not in catalog.play_counts() and catalog.playlists()[0]["track_ids"] == []
    assert catalog.integrity() == []
    catalog.close()
