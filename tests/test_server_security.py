"""No path from a request reaches the file system; symlinks out of the indexed folders, a
vanished file, traversal tricks: 404 or 422, never file content. Token mode locks everything;
a tokenless server answers loopback names only and refuses cross-site writes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from songspace import Library
from songspace.server import create_app

SECRET = b"TOP-SECRET-NOT-MUSIC " * 50


@pytest.fixture
def secret_file(tmp_path) -> Path:
    """A file outside every indexed folder that must never be served."""
    path = tmp_path / "outside" / "secret.flac"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def client(indexed_library):
    with TestClient(create_app(indexed_library), base_url="http://127.0.0.1") as c:
        yield c


def add_tracks(library: Path, folder: Path, paths: list[Path]) -> list[int]:
    """Catalog rows for these paths (as the indexer writes them) in a folder of the library."""
    with Library(library) as lib:
        lib.catalog.add_folders([str(folder)])
        return [lib.catalog.put_failed(str(p), "not analysed") for p in paths]


def never_secret(r) -> None:
    assert SECRET[:20] not in r.content and b"root:" not in r.content


@pytest.mark.parametrize("url", [
    "/api/tracks/..%2F..%2F..%2Fetc%2Fpasswd/audio",
    "/api/tracks/%2e%2e%2f%2e%2e%2fetc%2fpasswd/audio",
    "/api/tracks/..%252F..%252Fetc%252Fpasswd/audio",
    "/api/tracks/%2Fetc%2Fpasswd/audio",
    "/api/tracks//etc/passwd/audio",
    "/api/tracks/1/../../../../etc/passwd",
    "/api/tracks/1/audio/../../../../etc/passwd",
    "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/static/../../../../etc/passwd",
    "/api/tracks/1%2F..%2F2/audio",
    "/api/tracks/1e3/audio",
    "/api/tracks/0x1/audio",
    "/api/tracks/%00/audio",
    "/api/playlist.m3u8?ids=/etc/passwd",
    "/api/playlist.m3u8?ids=..%2F..%2Fetc%2Fpasswd",
])
def test_traversal_gets_nothing(client, url):
    r = client.get(url)
    assert r.status_code in (400, 404, 422), (url, r.status_code)
    never_secret(r)


def test_symlink_out_of_the_folders_is_404(client, indexed_library, tmp_path, secret_file, demo_music):
    folder = tmp_path / "music2"
    folder.mkdir()
    real = next(demo_music.rglob("*.flac"))
    shutil.copy(real, folder / "inside.flac")
    (folder / "escape.flac").symlink_to(secret_file)
    (folder / "hop").symlink_to(secret_file.parent, target_is_directory=True)
    (folder / "alias.flac").symlink_to(folder / "inside.flac")  # a link within the folders is fine
    inside, escape, via_dir, alias, gone = add_tracks(
        indexed_library, folder, [folder / "inside.flac", folder / "escape.flac", folder / "hop" / "secret.flac",
                                  folder / "alias.flac", folder / "vanished.flac"])
    assert client.get(f"/api/tracks/{inside}/audio").content == real.read_bytes()
    assert client.get(f"/api/tracks/{alias}/audio").content == real.read_bytes()
    for track_id in (escape, via_dir, gone):
        for headers in ({}, {"Range": "bytes=0-10"}):
            r = client.get(f"/api/tracks/{track_id}/audio", headers=headers)
            assert r.status_code == 404 and "outside" in r.json()["detail"]
            never_secret(r)
    os.unlink(folder / "inside.flac")  # the file vanished after indexing
    assert client.get(f"/api/tracks/{inside}/audio").status_code == 404


def test_a_track_outside_every_folder_is_404(client, indexed_library, secret_file):
    with Library(indexed_library) as lib:
        track_id = lib.catalog.put_failed(str(secret_file), "x")  # a row, but its folder is not indexed
    r = client.get(f"/api/tracks/{track_id}/audio")
    assert r.status_code == 404
    never_secret(r)


# ---------------------------------------------------------------------------------------------
# Tokenless: loopback names only, no cross-site writes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host, status", [("127.0.0.1:8765", 200), ("localhost:8765", 200), ("[::1]:8765", 200),
                                          ("evil.example:8765", 400), ("192.168.1.9", 400)])
def test_tokenless_answers_loopback_hosts_only(client, host, status):
    assert client.get("/api/status", headers={"Host": host}).status_code == status


def test_tokenless_refuses_cross_site_writes(client):
    r = client.post("/api/index", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    assert client.get("/api/index").json()["running"] is False
    same = client.post("/api/radio", json={"seeds": [1], "n": 3}, headers={"Origin": "http://127.0.0.1"})
    assert same.status_code == 200


# ---------------------------------------------------------------------------------------------
# Token mode
# ---------------------------------------------------------------------------------------------

TOKEN = "s3cret-token"


@pytest.fixture
def locked(indexed_library):
    with TestClient(create_app(indexed_library, token=TOKEN), base_url="http://music.example",
                    follow_redirects=False) as c:
        yield c


@pytest.mark.parametrize("url", ["/api/status", "/api/tracks", "/api/tracks/1/audio", "/openapi.json", "/docs"])
def test_token_required_on_the_api(locked, url):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Cookie": "songspace_token=wrong"}):
        r = locked.get(url, headers=headers)
        assert r.status_code == 401 and "token" in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert locked.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_token_required_on_the_page(locked):
    for url in ("/", "/static/app.js", "/anything"):
        r = locked.get(url)
        assert r.status_code == 303 and r.headers["location"] == "/login"
    assert locked.post("/api/index").status_code == 401
    assert locked.post("/api/radio", json={"seeds": [1], "n": 3}).status_code == 401


def test_login_form_sets_the_cookie(locked):
    form = locked.get("/login")
    assert form.status_code == 200 and 'name="token"' in form.text
    wrong = locked.post("/login", data={"token": "nope"})
    assert wrong.status_code == 401 and 'name="token"' in wrong.text and "not right" in wrong.text
    assert "set-cookie" not in wrong.headers
    assert locked.get("/api/status").status_code == 401
    ok = locked.post("/login", data={"token": TOKEN})
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "songspace_token=" in cookie
    assert locked.get("/api/status").status_code == 200  # the client kept the cookie
    assert locked.get("/api/tracks/1/audio", headers={"Range": "bytes=0-9"}).status_code == 206


def test_serve_refuses_other_addresses_without_a_token(songspace, monkeypatch):
    monkeypatch.delenv("SONGSPACE_TOKEN", raising=False)
    for host in ("0.0.0.0", "::", "192.168.1.9", "music.example"):
        r = songspace("serve", "--host", host)
        assert r.exit_code == 2 and "token" in r.stderr, (host, r.stderr)


def test_serve_starts_uvicorn_on_loopback_or_with_a_token(songspace, monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((type(app).__name__, kw)))
    monkeypatch.delenv("SONGSPACE_TOKEN", raising=False)
    assert songspace("serve").exit_code == 0
    monkeypatch.setenv("SONGSPACE_TOKEN", TOKEN)
    assert songspace("serve", "--host", "0.0.0.0", "--port", "9000").exit_code == 0
    assert [(name, kw["host"], kw["port"]) for name, kw in calls] == [("FastAPI", "127.0.0.1", 8765),
                                                                     ("FastAPI", "0.0.0.0", 9000)]
