"""Subsonic's own user auth, checked on every /rest/ request (even from loopback).

Three styles:
- `u` + `p`: the password, plain or hex-encoded as `enc:` + hex (the pre-1.13 style);
- `u` + `t` + `s`: t = md5(password + s), s a random salt the client picks for each request.
  A pair seen before is accepted again only from the client that first sent it, within an hour
  (a player fetching the same stream URL again to seek); from anyone else it is a replay, and
  refused for as long as the pair is remembered (`Salts`, a day);
- `apiKey` (the OpenSubsonic apiKey extension): a key made by `songspace user key NAME`; the
  catalog keeps only its SHA-256, and a client holding it never holds the password.
The `t`/`s` style is why the catalog keeps each password itself, not a hash of it
(catalog/listening.py): md5(password + salt) can only be checked by whoever knows the password.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..catalog import Catalog
from .subsonic_format import (
    CONFLICTING_AUTH, INVALID_API_KEY, MISSING, WRONG_CREDENTIALS, SubsonicError,
)

REUSE_WINDOW = 3600.0  # seconds a client may send its own t/s pair again
REMEMBER = 24 * 3600.0  # seconds a pair is remembered (a replay refused)
REMEMBERED = 200_000  # pairs remembered at most (the oldest forgotten first)


class Salts:
    """The t/s pairs seen lately: (user, salt) -> (client, first seen)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._seen: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, user: str, salt: str, client: str) -> bool:
        """Whether this pair may be accepted from `client` now (remembering it if new)."""
        now = self.clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values()))[1] < now - REMEMBER:
                self._seen.popitem(last=False)
            seen = self._seen.get((user, salt))
            if seen is None:
                self._seen[(user, salt)] = (client, now)
                while len(self._seen) > REMEMBERED:
                    self._seen.popitem(last=False)
                return True
            first_client, first_seen = seen
            return first_client == client and now - first_seen < REUSE_WINDOW


def _password_given(p: str) -> str:
    if p.startswith("enc:"):
        try:
            return bytes.fromhex(p[4:]).decode("utf-8")
        except ValueError:  # not hex, or not UTF-8 once decoded
            raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password.") from None
    return p


def authenticate(params, catalog: Catalog, salts: Salts | None = None, client: str = "") -> str:
    """The name of the user `params` (u, p / u, t, s / apiKey) prove to be; SubsonicError otherwise.
    With `salts`, a t/s pair replayed from another client (or too late) is refused."""
    if params.get("apiKey"):
        if params.get("u") or params.get("p") is not None or params.get("t") or params.get("s"):
            raise SubsonicError(CONFLICTING_AUTH, "Give apiKey alone, without u, p, t or s.")
        user = catalog.api_key_user(hashlib.sha256(params.get("apiKey").encode()).hexdigest())
        if user is None:
            raise SubsonicError(INVALID_API_KEY, "Invalid API key.")
        return user
    user = params.get("u")
    if not user:
        raise SubsonicError(MISSING, "Required parameter is missing: u (the user name).")
    password, token, salt = params.get("p"), params.get("t"), params.get("s")
    if password is None and not (token and salt):
        raise SubsonicError(MISSING, "Required parameter is missing: p, or t and s (the credentials).")
    stored = catalog.user_password(user)
    if stored is None:
        if not catalog.users():
            raise SubsonicError(WRONG_CREDENTIALS, "This server has no users yet: add one with `songspace user add NAME`.")
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password.")
    if password is not None:
        ok = secrets.compare_digest(_password_given(password).encode(), stored.encode())
    else:
        expected = hashlib.md5((stored + salt).encode()).hexdigest()
        ok = secrets.compare_digest(token.lower().encode(), expected.encode())
        if ok and salts is not None and not salts.fresh(user, salt, client):
            raise SubsonicError(WRONG_CREDENTIALS, "This salt (s) was used before: pick a new random one for "
                                                   "every request.")
    if not ok:
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password.")
    return user
