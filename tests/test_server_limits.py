"""Request bodies are counted as they arrive: a chunked or multipart body stops at the limit
with 413, /rest/ checks credentials before it reads a body, and nothing close to a large body
reaches memory or temporary files. The app is driven through httpx's ASGI transport, which
hands it the body chunk by chunk as a server does, so the test sees how much was read."""

from __future__ import annotations

import asyncio
import os
import tempfile

import httpx
import pytest

from songspace import Library
from songspace.server import api, create_app, subsonic

USER, PASSWORD = "bob", "secret"
CHUNK = 1 << 20
BOUNDARY = "songspaceboundary"


def folder_size(folder) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass  # removed meanwhile
    return total


class Body:
    """A multipart body of one file part of `size` bytes, sent chunk by chunk with no length
    (chunked). It records how much the app took and the most its temporary folder held."""

    def __init__(self, size: int, temp: str, field: str = "file"):
        self.size, self.temp, self.field = size, temp, field
        self.sent = 0
        self.peak_temp = 0

    async def __aiter__(self):
        yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{self.field}\"; filename=\"x.wav\"\r\n"
               f"Content-Type: application/octet-stream\r\n\r\n").encode()
        block = b"\0" * CHUNK
        while self.sent < self.size:
            self.peak_temp = max(self.peak_temp, folder_size(self.temp))
            self.sent += CHUNK
            yield block
        yield f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.fixture
def app(indexed_library, tmp_path, monkeypatch):
    with Library.open(indexed_library) as lib:
        lib.catalog.add_user(USER, PASSWORD)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where uploads and form files spill
    return create_app(indexed_library, index_workers=0), str(temp)


def post(app, url: str, body, headers: dict | None = None) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.post(url, content=body, headers={
                "content-type": f"multipart/form-data; boundary={BOUNDARY}", **(headers or {})})

    return asyncio.run(go())


def test_chunked_upload_to_identify_stops_at_the_limit(app):
    app, temp = app
    body = Body(api.MAX_UPLOAD + 40 * CHUNK, temp)
    r = post(app, "/api/identify", body)
    assert r.status_code == 413 and "too large" in r.json()["detail"]
    assert body.sent <= api.MAX_UPLOAD + 2 * CHUNK  # read no further than the limit
    assert body.peak_temp <= api.MAX_UPLOAD + 2 * CHUNK
    assert folder_size(temp) == 0


def test_rest_reads_no_body_before_credentials(app):
    app, temp = app
    # No credentials at all: a few KB of form may carry them (formPost), never megabytes.
    body = Body(30 * CHUNK, temp)
    r = post(app, "/rest/ping", body)
    assert r.status_code == 413 and body.sent <= subsonic.ANONYMOUS_BODY + CHUNK and body.peak_temp < CHUNK
    # Wrong credentials in the URL: refused before a byte of the body is read.
    body = Body(30 * CHUNK, temp)
    r = post(app, f"/rest/ping?u={USER}&p=wrong", body)
    assert r.status_code == 200 and 'code="40"' in r.text and body.sent == 0
    # A declared length over the limit: refused from the headers alone.
    body = Body(30 * CHUNK, temp)
    r = post(app, "/rest/ping", body, headers={"content-length": str(2 * 2**30)})
    assert r.status_code == 413 and body.sent == 0
    # The right credentials: the form is read, up to the larger limit of a known user.
    body = Body(30 * CHUNK, temp)
    r = post(app, f"/rest/ping?u={USER}&p={PASSWORD}", body)
    assert r.status_code == 413 and subsonic.ANONYMOUS_BODY < body.sent <= subsonic.USER_BODY + CHUNK
    small = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\njson\r\n--{BOUNDARY}--\r\n"
    r = post(app, f"/rest/ping?u={USER}&p={PASSWORD}", small.encode())
    assert r.status_code == 200 and r.json()["subsonic-response"]["status"] == "ok"
    assert folder_size(temp) == 0


def test_many_form_fields_stop_at_the_limit(app):
    app, temp = app

    class Fields(Body):
        async def __aiter__(self):
            value = b"v" * (CHUNK - 200)
            while self.sent < self.size:
                self.sent += CHUNK
                yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"x{self.sent}\"\r\n\r\n").encode()
                yield value + b"\r\n"
            yield f"--{BOUNDARY}--\r\n".encode()

    body = Fields(200 * CHUNK, temp)
    r = post(app, f"/rest/ping?u={USER}&p={PASSWORD}", body)
    assert r.status_code == 413 and body.sent <= subsonic.USER_BODY + 2 * CHUNK
