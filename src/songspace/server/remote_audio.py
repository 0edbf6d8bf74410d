"""Companion mode's audio: a track indexed from another Subsonic server has no file here, so the
page's player and Subsonic's `stream` / `download` pass the request on to that server (the
secret from the environment, as the page's update takes it: remote.client_from_env) and send
its answer back as it comes, ranges and transcodes included (the other server transcodes).
Without a secret, or when that server fails, a clear 404 / 502 naming it, never a 500.
`relay_client`: the client of that server, which covers.py and subsonic_info.py ask a track's
cover and lyrics through too.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator

from fastapi import HTTPException
from fastapi.responses import StreamingResponse

from ..catalog import Track
from ..remote import PASSWORD_ENV, RemoteError, RemoteServer, SubsonicClient, client_from_env, elsewhere

CHUNK = 64 * 1024
# Headers of the other server's answer that the player needs as they are
PASSED_ON = ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Content-Disposition")

_clients: dict[tuple[str, str], SubsonicClient] = {}  # signed in once, not for every range request
_lock = threading.Lock()


def relay_client(path: str) -> SubsonicClient | None:
    """The client of the server a track path (`subsonic://USER@HOST:PORT/SONG_ID`) names, with
    the secret in the environment (read each time, so a changed secret takes effect), kept while
    that secret stays the same. None for a local path or without a secret."""
    server = RemoteServer.of_track(path)
    fresh = client_from_env(server) if server is not None else None
    if fresh is None:
        return None
    with _lock:
        return _clients.setdefault(fresh.identity, fresh)


def response(t: Track, range_header: str | None, *, download: bool = False,
             params: list[tuple[str, str]] | None = None) -> StreamingResponse:
    """The audio of `t`, a track of another server, from that server (module docstring).
    HTTPException 404 when there is no secret to sign in with, 502 when the server fails."""
    client = relay_client(t.path)
    if client is None:
        raise HTTPException(404, f"{elsewhere(t.path)} (or set ${PASSWORD_ENV} where songspace serve runs "
                                 "to play it through songspace)")
    try:
        answer = client.open_audio(t.remote_id, download=download, params=params, range_header=range_header)
    except RemoteError as e:
        raise HTTPException(502, f"track {t.id} is a song of another server, which failed: {e}") from None
    headers = {k: v for k in PASSED_ON if (v := answer.headers.get(k)) is not None}
    media_type = headers.pop("Content-Type", "application/octet-stream")
    return StreamingResponse(_relay(answer), status_code=answer.status, headers=headers, media_type=media_type)


def _relay(answer) -> Iterator[bytes]:
    with answer:
        try:
            while block := answer.read(CHUNK):
                yield block
        except (OSError, http.client.HTTPException):  # the other server broke off: the player sees the answer end early
            return
