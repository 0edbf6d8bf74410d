"""The HTTP API through FastAPI's test client over a real indexed demo library: every route's
happy path and shape, bad input as a 4xx with a message (never a 500), range requests byte
for byte, identify by upload, and an index run answering queries while it goes."""

from __future__ import annotations

import io
import shutil
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from songspace import Library
from songspace.audio import load
from songspace.server import create_app
from songspace.server.jobs import IndexJob

ROW_KEYS = {"id", "path", "artist", "title", "album", "genre", "duration"}


@pytest.fixture
def client(indexed_library):
    app = create_app(indexed_library, index_workers=0)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def rows(client) -> list[dict]:
    return client.get("/api/tracks", params={"limit": 500}).json()["items"]


def detail(response, status: int) -> str:
    assert response.status_code == status, response.text
    message = response.json()["detail"]
    assert isinstance(message, str) and message
    return message


# ---------------------------------------------------------------------------------------------
# The library and its tracks
# ---------------------------------------------------------------------------------------------


def test_status(client):
    s = client.get("/api/status").json()
    assert (s["tracks"], s["ok"], s["searchable"]) == (12, 12, 12)
    assert len(s["folders"]) == 1
    assert s["index"]["running"] is False
    assert set(s["index"]) >= {"running", "done", "total", "phase", "note", "started", "finished", "report"}


def test_tracks_pages_and_searches(client, rows):
    assert len(rows) == 12 and all(set(r) == ROW_KEYS for r in rows)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    page = client.get("/api/tracks", params={"offset": 10, "limit": 5}).json()
    assert page["total"] == 12 and [r["id"] for r in page["items"]] == [r["id"] for r in rows[10:]]
    album = rows[0]["album"]
    found = client.get("/api/tracks", params={"q": album.upper()}).json()
    assert found["total"] == sum(r["album"] == album for r in rows) > 0
    title = client.get("/api/tracks", params={"q": rows[4]["title"]}).json()["items"]
    assert rows[4]["id"] in [r["id"] for r in title]
    assert client.get("/api/tracks", params={"q": "no such music anywhere"}).json() == {"total": 0, "items": []}
    assert "limit" in detail(client.get("/api/tracks", params={"limit": 501}), 422)
    detail(client.get("/api/tracks", params={"offset": -1}), 422)


def test_track_detail_and_predictions(client, rows, indexed_library):
    one = client.get(f"/api/tracks/{rows[0]['id']}").json()
    # Every index run predicts a genre and a mood with the shipped model's tags head (autotags.py)
    assert {k: v for k, v in one.items() if k != "predictions"} == rows[0]
    assert set(one["predictions"]) == {"auto-genre", "auto-mood"}
    assert all(0 < p["confidence"] <= 1 for p in one["predictions"].values())
    assert client.get("/api/predictions").json() == {"names": ["auto-genre", "auto-mood"]}
    assert "mood" in detail(client.get("/api/predictions/mood"), 404)

    with Library(indexed_library) as lib:  # what `songspace classify --column genre` stores
        lib.catalog.put_predictions("mood", "m", [(rows[0]["id"], "calm", 0.81234), (rows[1]["id"], "loud", 0.9)])
    assert client.get("/api/predictions").json() == {"names": ["auto-genre", "auto-mood", "mood"]}
    one = client.get(f"/api/tracks/{rows[0]['id']}").json()
    assert one["predictions"]["mood"] == {"label": "calm", "confidence": 0.8123}
    items = client.get("/api/predictions/mood").json()["items"]
    assert [(r["id"], r["label"], r["confidence"]) for r in items] == [(rows[1]["id"], "loud", 0.9),
                                                                      (rows[0]["id"], "calm", 0.8123)]


def test_unknown_and_malformed_ids(client):
    for url in ("/api/tracks/999", "/api/tracks/999/similar", "/api/tracks/999/audio", "/api/tracks/0",
                "/api/tracks/-3/similar", f"/api/tracks/{2**70}", "/api/explain?a=999&b=1", "/api/path?a=1&b=999"):
        assert "999" in detail(client.get(url), 404) or "id" in detail(client.get(url), 404)
    for url in ("/api/tracks/abc", "/api/tracks/1.5/similar", "/api/path?a=x&b=1", "/api/explain?a=1"):
        detail(client.get(url), 422)


# ---------------------------------------------------------------------------------------------
# Recommendations
# ---------------------------------------------------------------------------------------------


def test_similar(client, rows):
    q = rows[0]
    items = client.get(f"/api/tracks/{q['id']}/similar", params={"k": 4}).json()["items"]
    assert len(items) == 4 and q["id"] not in [r["id"] for r in items]
    assert all(set(r) == ROW_KEYS | {"score", "cosine", "copy_of_query", "copies"} for r in items)
    assert [r["score"] for r in items] == sorted((r["score"] for r in items), reverse=True)
    others = client.get(f"/api/tracks/{q['id']}/similar", params={"k": 5, "other_artists": True}).json()["items"]
    assert others and all(r["artist"] != q["artist"] for r in others)
    assert "duration" in detail(client.get(f"/api/tracks/{q['id']}/similar",
                                           params={"min_duration": 10, "max_duration": 5}), 400)
    detail(client.get(f"/api/tracks/{q['id']}/similar", params={"k": 0}), 422)


def test_radio(client, rows):
    seed, avoided = rows[0]["id"], rows[-1]["id"]
    body = {"seeds": [seed], "avoid": [avoided], "n": 5, "seed": 1, "artist_window": 1}
    items = client.post("/api/radio", json=body).json()["items"]
    assert len(items) == 5 and {seed, avoided}.isdisjoint(r["id"] for r in items)
    assert all(set(r) == ROW_KEYS | {"score"} for r in items)
    assert client.post("/api/radio", json=body).json()["items"] == items  # same seed, same list
    assert "13" in detail(client.post("/api/radio", json={"seeds": [seed], "n": 13}), 400)
    assert "seed" in detail(client.post("/api/radio", json={"seeds": [], "n": 5}), 400)
    assert "both" in detail(client.post("/api/radio", json={"seeds": [seed], "avoid": [seed], "n": 5}), 400)
    assert "999" in detail(client.post("/api/radio", json={"seeds": [999]}), 404)
    detail(client.post("/api/radio", content=b"{not json", headers={"content-type": "application/json"}), 422)
    detail(client.post("/api/radio", json={"seeds": ["one"]}), 422)
    detail(client.post("/api/radio", json={"n": 3}), 422)


def test_path(client, rows):
    a, b = rows[0]["id"], rows[-1]["id"]
    trip = client.get("/api/path", params={"a": a, "b": b, "n": 6}).json()
    items = trip["items"]
    assert items[0]["id"] == a and items[-1]["id"] == b and 2 <= len(items) <= 6
    assert all(set(r) == ROW_KEYS | {"step", "to_b"} for r in items)
    to_b = [r["to_b"] for r in items]
    assert to_b == sorted(to_b, reverse=True) and to_b[-1] == 0
    assert trip["largest_step"] == max(r["step"] for r in items) and trip["direct"] == to_b[0]
    assert "different" in detail(client.get("/api/path", params={"a": a, "b": a}), 400)
    assert "more than" in detail(client.get("/api/path", params={"a": a, "b": b, "n": 100}), 400)
    detail(client.get("/api/path", params={"a": a, "b": b, "n": 1}), 400)


def test_explain(client, rows):
    a, b = rows[0]["id"], rows[1]["id"]
    items = client.get("/api/explain", params={"a": a, "b": b, "top": 3}).json()["items"]
    assert 1 <= len(items) <= 3
    for m in items:
        assert set(m) == {"a_span", "b_span", "similarity"}
        assert m["a_span"][0] < m["a_span"][1] <= rows[0]["duration"] + 0.01
    assert [m["similarity"] for m in items] == sorted((m["similarity"] for m in items), reverse=True)
    assert "itself" in detail(client.get("/api/explain", params={"a": a, "b": a}), 400)
    detail(client.get("/api/explain", params={"a": a, "b": b, "top": 0}), 400)


def test_duplicates_finds_a_copy(client, rows, indexed_library, tmp_path):
    before = client.get("/api/duplicates").json()
    for p in before["pairs"]:
        assert set(p) == {"group", "a", "b", "similarity", "coverage", "a_span", "b_span", "offset"}
        assert sorted([p["a"]["id"], p["b"]["id"]]) in [sorted(g) for g in before["groups"]]
    grouped = {i for g in before["groups"] for i in g}
    original = next(r for r in rows if r["id"] not in grouped)
    (tmp_path / "copies").mkdir()
    shutil.copy(original["path"], tmp_path / "copies" / Path(original["path"]).name)
    with Library(indexed_library) as lib:
        lib.index([tmp_path / "copies"], workers=0)
    copy_id = max(r["id"] for r in client.get("/api/tracks", params={"limit": 500}).json()["items"])
    after = client.get("/api/duplicates").json()
    assert sorted(map(sorted, after["groups"])) == sorted(map(sorted, before["groups"] + [[original["id"], copy_id]]))
    (pair,) = [p for p in after["pairs"] if copy_id in (p["a"]["id"], p["b"]["id"])]
    assert {pair["a"]["id"], pair["b"]["id"]} == {original["id"], copy_id}
    assert pair["similarity"] > 0.99 and pair["coverage"] > 0.9 and abs(pair["offset"]) < 0.1
    assert "threshold" in detail(client.get("/api/duplicates", params={"threshold": 0}), 400)
    detail(client.get("/api/duplicates", params={"threshold": 1.5}), 400)


def _wav(y: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(sr)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def test_identify_an_uploaded_excerpt(client, rows, monkeypatch):
    target = rows[5]
    audio = load(target["path"], sr=22050)
    excerpt = _wav(audio.y[int(2.0 * audio.sr): int(6.5 * audio.sr)], audio.sr)
    found = client.post("/api/identify", files={"file": ("clip.wav", excerpt, "audio/wav")}).json()["items"]
    assert found[0]["id"] == target["id"] and abs(found[0]["offset"] - 2.0) < 0.8
    assert set(found[0]) == ROW_KEYS | {"offset", "confidence", "similarity", "coverage"}
    assert "clip.mp3" not in str(found)

    message = detail(client.post("/api/identify", files={"file": ("clip.mp3", b"not audio" * 100, "audio/mpeg")}), 400)
    assert message.startswith("clip.mp3: ") and "songspace-upload" not in message  # the upload's name, not ours
    assert "empty" in detail(client.post("/api/identify", files={"file": ("clip.wav", b"", "audio/wav")}), 400)
    detail(client.post("/api/identify"), 422)
    import songspace.server.api as api

    monkeypatch.setattr(api, "MAX_UPLOAD", 1000)
    assert "too large" in detail(client.post("/api/identify", files={"file": ("clip.wav", excerpt, "audio/wav")}), 413)


def test_upload_cap_before_reading(client):
    big = {"content-length": str(60 * 2**20), "content-type": "multipart/form-data; boundary=x"}
    assert "too large" in detail(client.post("/api/identify", content=b"--x--", headers=big), 413)


def test_docs_and_page(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/tracks/{track_id}/similar", "/api/radio", "/api/tracks/{track_id}/audio"} <= set(paths)
    page = client.get("/")
    assert page.status_code == 200 and "html" in page.headers["content-type"]


def test_map_answers(client, rows):
    r = client.get("/api/map")
    assert r.status_code == 200 and isinstance(r.json(), dict), r.text


def test_playlist_m3u8(client, rows):
    ids = [rows[3]["id"], rows[0]["id"]]
    r = client.get("/api/playlist.m3u8", params={"ids": ",".join(map(str, ids))})
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    lines = r.text.splitlines()
    assert lines[0] == "#EXTM3U" and len(lines) == 5
    assert lines[1].startswith("#EXTINF:") and rows[3]["title"] in lines[1]
    assert lines[2] == f"http://127.0.0.1/api/tracks/{ids[0]}/audio" and lines[4].endswith(f"/{ids[1]}/audio")
    assert rows[3]["path"] not in r.text
    detail(client.get("/api/playlist.m3u8", params={"ids": "1,x"}), 400)
    detail(client.get("/api/playlist.m3u8", params={"ids": ""}), 400)
    detail(client.get("/api/playlist.m3u8", params={"ids": "1,999"}), 404)


# ---------------------------------------------------------------------------------------------
# Audio with ranges
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("range_header, part, status", [
    (None, slice(None), 200),
    ("bytes=10-99", slice(10, 100), 206),
    ("bytes=100-", slice(100, None), 206),
    ("bytes=-50", slice(-50, None), 206),
    ("bytes=0-0", slice(0, 1), 206),
    ("bytes=5-99999999", slice(5, None), 206),
    ("bytes=abc", slice(None), 200),  # malformed: ignored, the whole file
    ("bytes=0-1,5-9", slice(None), 200),  # several ranges: the whole file
])
def test_audio_ranges(client, rows, range_header, part, status):
    row = next(r for r in rows if r["path"].endswith(".flac"))
    data = Path(row["path"]).read_bytes()
    r = client.get(f"/api/tracks/{row['id']}/audio", headers={"Range": range_header} if range_header else {})
    assert r.status_code == status
    assert r.content == data[part]
    assert r.headers["accept-ranges"] == "bytes" and r.headers["content-type"] == "audio/flac"
    assert int(r.headers["content-length"]) == len(data[part])
    if status == 206:
        first = range(len(data))[part][0]
        assert r.headers["content-range"] == f"bytes {first}-{first + len(data[part]) - 1}/{len(data)}"


@pytest.mark.parametrize("range_header", ["bytes={size}-", "bytes={size}-{size}", "bytes=-0", "bytes=9-2"])
def test_audio_unsatisfiable_range(client, rows, range_header):
    size = Path(rows[0]["path"]).stat().st_size
    r = client.get(f"/api/tracks/{rows[0]['id']}/audio", headers={"Range": range_header.format(size=size)})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"


def test_audio_content_types(client, rows):
    types = {Path(r["path"]).suffix: client.get(f"/api/tracks/{r['id']}/audio").headers["content-type"] for r in rows}
    assert len(types) > 1 and all(t.startswith("audio/") for t in types.values())


# ---------------------------------------------------------------------------------------------
# An index run in the background
# ---------------------------------------------------------------------------------------------


def test_index_run_while_answering(client, rows, indexed_library, demo_music, tmp_path, monkeypatch):
    """Two new files in a new folder of the library: POST starts the run (202), a second POST
    while it runs gets 409, queries keep answering, progress moves, and the new tracks join."""
    extra = tmp_path / "more"
    extra.mkdir()
    for r in rows[:2]:
        shutil.copy(r["path"], extra / ("new-" + Path(r["path"]).name))
    with Library(indexed_library) as lib:
        lib.catalog.add_folders([str(extra.resolve())])

    in_analysis, go_on = threading.Event(), threading.Event()
    seen: list[dict] = []
    real_report = IndexJob._report

    def report(self, phase, done, total, note):  # holds the run inside its analysis stage
        real_report(self, phase, done, total, note)
        seen.append(self.progress())
        if phase == "analyse":
            in_analysis.set()
            assert go_on.wait(60)

    monkeypatch.setattr(IndexJob, "_report", report)
    r = client.post("/api/index")
    assert r.status_code == 202 and r.json() == {"started": True}
    assert in_analysis.wait(120)

    running = client.get("/api/index").json()
    assert running["running"] is True and running["phase"] == "analyse" and running["done"] < running["total"]
    assert "already" in detail(client.post("/api/index"), 409)
    assert len(client.get(f"/api/tracks/{rows[0]['id']}/similar", params={"k": 3}).json()["items"]) == 3
    assert client.get("/api/status").json()["index"]["running"] is True

    go_on.set()
    client.app.state.index_job.join(120)
    done = client.get("/api/index").json()
    assert done["running"] is False and done["error"] is None and done["finished"] >= done["started"]
    assert done["report"]["added"] == 2 and done["done"] == done["total"] > 0
    analysed = [s["done"] for s in seen if s["phase"] == "analyse"]
    assert analysed == sorted(analysed) and analysed[-1] > analysed[0]
    assert [s["files"] for s in seen if s["phase"] == "analyse"] == [0, 1, 2]  # files finished, as they finish
    assert client.get("/api/status").json()["searchable"] == 14  # the shared Searcher caught up
    assert client.post("/api/index").status_code == 202  # one at a time, not one ever
    client.app.state.index_job.join(120)
