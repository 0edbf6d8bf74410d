"""The server against a hostile network: cross-site writes in token mode, what the cookie holds,
guessing (throttled), replayed Subsonic t/s pairs, DNS rebinding, paths in error bodies, and
OpenSubsonic API keys instead of passwords. Time is moved by the tests (the throttle's and the
salt memory's clocks), never waited for."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from songspace import Library
from songspace.server import create_app
from songspace.server.auth import session_value
from songspace.server.throttle import FREE

TOKEN = "s3cret-token"
USER, PASSWORD = "ann", "pw-of-ann"
NS = "{http://subsonic.org/restapi}"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def subsonic(response) -> ET.Element:
    assert response.status_code == 200, response.text
    return ET.fromstring(response.content)


def error_code(response) -> int | None:
    found = subsonic(response).find(f"{NS}error")
    return None if found is None else int(found.get("code"))


@pytest.fixture
def app(indexed_library):
    with Library.open(indexed_library) as lib:
        lib.catalog.add_user(USER, PASSWORD)
    app = create_app(indexed_library, token=TOKEN)
    app.state.throttle.clock = app.state.salts.clock = Clock()
    return app


@pytest.fixture
def locked(app):
    with TestClient(app, base_url="http://music.example", follow_redirects=False) as c:
        yield c


def test_token_mode_refuses_cross_site_writes(locked):
    assert locked.post("/login", data={"token": TOKEN}).status_code == 303  # the cookie is set
    evil = locked.post("/api/radio", json={"seeds": [1], "n": 3}, headers={"Origin": "http://music.example:9999"})
    assert evil.status_code == 403 and "cross-site" in evil.json()["detail"]
    bearer = locked.post("/api/index", headers={"Origin": "http://evil.example", "Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 403
    same = locked.post("/api/radio", json={"seeds": [1], "n": 3}, headers={"Origin": "http://music.example"})
    assert same.status_code == 200
    assert locked.post("/api/radio", json={"seeds": [1], "n": 3}).status_code == 200  # no Origin: not a browser's page
    login_from_elsewhere = locked.post("/login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"})
    assert login_from_elsewhere.status_code == 403


def test_the_cookie_holds_a_derived_value_secure_behind_tls(locked):
    plain = locked.post("/login", data={"token": TOKEN})
    cookie = plain.headers["set-cookie"]
    assert f"songspace_token={session_value(TOKEN)}" in cookie and TOKEN not in cookie
    assert "secure" not in cookie.lower()
    behind_tls = locked.post("/login", data={"token": TOKEN}, headers={"X-Forwarded-Proto": "https"})
    assert "secure" in behind_tls.headers["set-cookie"].lower()
    locked.cookies.clear()
    locked.cookies.set("songspace_token", TOKEN)
    assert locked.get("/api/status").status_code == 401  # the raw token is no cookie
    locked.cookies.set("songspace_token", session_value(TOKEN))
    assert locked.get("/api/status").status_code == 200
    locked.cookies.clear()
    assert locked.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_guessing_is_throttled_per_client(app, locked):
    clock = app.state.throttle.clock
    for _ in range(FREE + 1):
        assert locked.post("/login", data={"token": "guess"}).status_code == 401
    blocked = locked.post("/login", data={"token": TOKEN})  # even the right one, while blocked
    assert blocked.status_code == 429 and "try again in" in blocked.text
    assert locked.get("/api/status", headers={"Authorization": "Bearer guess"}).status_code == 429
    with TestClient(app, base_url="http://music.example", client=("10.0.0.7", 1)) as other:  # another client: free
        assert other.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    clock.now += 2  # the first wait is a second; each further failure doubles it
    assert locked.post("/login", data={"token": "guess"}).status_code == 401
    assert locked.post("/login", data={"token": TOKEN}).status_code == 429
    clock.now += 3
    assert locked.post("/login", data={"token": TOKEN}).status_code == 303


def test_rest_guessing_is_throttled(app, locked):
    clock = app.state.throttle.clock
    for _ in range(FREE + 1):
        assert error_code(locked.get("/rest/ping", params={"u": USER, "p": "guess"})) == 40
    blocked = locked.get("/rest/ping", params={"u": USER, "p": PASSWORD})
    assert error_code(blocked) == 40 and b"Too many" in blocked.content
    clock.now += 2
    assert error_code(locked.get("/rest/ping", params={"u": USER, "p": PASSWORD})) is None


def test_a_token_and_salt_pair_cannot_be_replayed(app):
    salt = "f00d1234"
    pair = {"u": USER, "t": hashlib.md5((PASSWORD + salt).encode()).hexdigest(), "s": salt}
    with TestClient(app, client=("10.0.0.1", 1)) as player, TestClient(app, client=("10.0.0.66", 1)) as thief:
        assert error_code(player.get("/rest/ping", params=pair)) is None
        assert error_code(player.get("/rest/ping", params=pair)) is None  # a player seeking in a stream: its own URL
        replay = thief.get("/rest/ping", params=pair)
        assert error_code(replay) == 40 and b"used before" in replay.content
        app.state.salts.clock.now += 2 * 3600
        assert error_code(player.get("/rest/ping", params=pair)) == 40  # not forever, even from the same client
        fresh = {"u": USER, "t": hashlib.md5((PASSWORD + "beef").encode()).hexdigest(), "s": "beef"}
        assert error_code(thief.get("/rest/ping", params=fresh)) is None


def test_tokenless_refuses_the_test_clients_own_host(indexed_library):
    with TestClient(create_app(indexed_library)) as c:  # Host: testserver, as a rebinding name would be
        r = c.get("/api/status")
        assert r.status_code == 400 and "testserver" in r.json()["detail"]


def test_error_bodies_carry_no_absolute_paths(indexed_library, tmp_path, demo_music):
    import shutil

    import songspace

    place = tmp_path / "private-place"  # a model file that went away: the error names it
    place.mkdir()
    weights = Path(songspace.__file__).parent / "weights"
    for name in ("default.safetensors", "default.json"):
        shutil.copy(weights / name, place / name.replace("default", "mine"))
    with Library.open(indexed_library) as lib:
        lib.use_model(place / "mine.safetensors")
    (place / "mine.safetensors").unlink()
    excerpt = next(demo_music.rglob("*.flac")).read_bytes()
    with TestClient(create_app(indexed_library), base_url="http://127.0.0.1") as c:
        for r in (c.post("/api/identify", files={"file": ("x.flac", excerpt)}), c.get("/api/explain?a=1&b=2"),
                  c.get("/api/tracks/999/similar"), c.get("/static/../../etc/passwd")):
            assert 400 <= r.status_code < 500 or r.status_code == 503, (r.url, r.status_code)
            assert "private-place" not in r.text and str(tmp_path) not in r.text, (r.url, r.text)
        named = c.get("/api/explain?a=1&b=2").json()["detail"]
        assert "mine.safetensors" in named  # still says which file


def test_api_keys_instead_of_passwords(app, indexed_library, songspace):
    made = songspace("user", "key", USER, check=True)
    key = made.stdout.strip()
    assert len(key) >= 32
    with TestClient(app) as c:
        assert error_code(c.get("/rest/ping", params={"apiKey": key})) is None
        me = subsonic(c.get("/rest/getUser", params={"apiKey": key, "username": USER}))
        assert me.find(f"{NS}user").get("username") == USER
        assert error_code(c.get("/rest/ping", params={"apiKey": key, "u": USER})) == 43
        assert error_code(c.get("/rest/ping", params={"apiKey": "not-a-key"})) == 44
        extensions = subsonic(c.get("/rest/getOpenSubsonicExtensions", params={"apiKey": key}))
        assert "apiKeyAuthentication" in [e.get("name") for e in extensions.iter(f"{NS}openSubsonicExtensions")]
        assert key not in (indexed_library / "catalog.sqlite").read_bytes().decode("latin-1")
        songspace("user", "key", USER, "--revoke", check=True)
        assert error_code(c.get("/rest/ping", params={"apiKey": key})) == 44
    assert songspace("user", "key", "nobody-here").exit_code == 2
