"""Subsonic's own user auth, checked on every /rest/ request (even from loopback).

Two styles, both with the user name in `u`:
- `p`: the password, plain or hex-encoded as `enc:` + hex (the pre-1.13 style);
- `t` + `s`: t = md5(password + s), s a random salt the client picks for each request.
The second is why the catalog keeps each password itself, not a hash of it (catalog/listening.py).
"""

from __future__ import annotations

import hashlib
import secrets

from ..catalog import Catalog
from .subsonic_format import AUTH_NOT_SUPPORTED, MISSING, WRONG_CREDENTIALS, SubsonicError


def _password_given(p: str) -> str:
    if p.startswith("enc:"):
        try:
            return bytes.fromhex(p[4:]).decode("utf-8")
        except ValueError:  # not hex, or not UTF-8 once decoded
            raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password.") from None
    return p


def authenticate(params, catalog: Catalog) -> str:
    """The name of the user `params` (u, p / t, s) prove to be; SubsonicError otherwise."""
    if params.get("apiKey"):
        raise SubsonicError(AUTH_NOT_SUPPORTED, "API keys are not supported here: use u with p, or u with t and s.")
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
    if not ok:
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password.")
    return user
