"""Who may ask. Without a token (the default, loopback only) everything is open to this
machine; with one, every request (API, page, static files, docs) carries it, as
`Authorization: Bearer TOKEN` or the HttpOnly cookie that the login form sets. The cookie holds
a value derived from the token (an HMAC), never the token itself, and is `Secure` when the page
was reached over TLS (directly, or through a proxy that says so in X-Forwarded-Proto).

Either way, a state-changing request (POST, PUT, DELETE, ...) sent by another site's page (its
Origin is not this server) is refused (CSRF; SameSite alone lets another port of the same host
in). Tokenless, the server answers only requests addressed to a loopback name, so a web page
cannot reach it through DNS rebinding. Wrong tokens are throttled per client (throttle.py).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .throttle import Throttle, client_address

COOKIE = "songspace_token"
OPEN_PATHS = {"/login"}
API_PREFIXES = ("/api", "/openapi.json", "/docs", "/redoc")
SUBSONIC_PREFIX = "/rest/"

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>songspace: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px system-ui,sans-serif;max-width:22rem;margin:15vh auto;padding:0 1rem}}
input,button{{font:inherit;padding:.4rem;width:100%;box-sizing:border-box;margin:.3rem 0}}
.error{{color:#b00}}</style></head>
<body><h1>songspace</h1>{message}
<form method="post" action="/login"><label>Token <input type="password" name="token" autofocus required></label>
<button type="submit">Sign in</button></form></body></html>
"""


def login_page(message: str = "", status_code: int = 200) -> HTMLResponse:
    shown = f'<p class="error">{html.escape(message)}</p>' if message else ""
    return HTMLResponse(LOGIN_PAGE.format(message=shown), status_code=status_code)


def session_value(token: str) -> str:
    """What the cookie holds: derived from the token, so a leaked cookie (a log, a backup of
    the browser's profile) does not hand out the token that the API and scripts use."""
    return hmac.new(token.encode(), b"songspace session cookie", hashlib.sha256).hexdigest()


def presented(request: Request) -> str:
    """The credential a request carries (a bearer token, or the session cookie), '' if none."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.cookies.get(COOKIE, "")


def credential_ok(request: Request, token: str) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return token_ok(value.strip(), token)
    return token_ok(request.cookies.get(COOKIE, ""), session_value(token))


def token_ok(given: str, token: str) -> bool:
    return secrets.compare_digest(given.encode(), token.encode())


def over_tls(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def cross_site(request: Request) -> str | None:
    """The Origin of a state-changing request sent by another site's page, else None."""
    origin = request.headers.get("origin")
    if request.method in ("GET", "HEAD", "OPTIONS") or not origin:
        return None
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")} - {""}
    return None if urlsplit(origin).netloc in hosts else origin


def too_many(request: Request, wait: int) -> Response:
    message = f"too many wrong tokens from this address: try again in {wait} s"
    if request.url.path.startswith(API_PREFIXES):
        return JSONResponse({"detail": message}, status_code=429, headers={"Retry-After": str(wait)})
    return login_page(message[0].upper() + message[1:] + ".", status_code=429)


def is_loopback_host(host: str) -> bool:
    """'localhost', '127.0.0.1:8765', '[::1]:8765', ... (a Host header or a --host value)."""
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _denied(request: Request, message: str, status_code: int) -> Response:
    if request.url.path.startswith(API_PREFIXES):
        return JSONResponse({"detail": message}, status_code=status_code, headers={"WWW-Authenticate": "Bearer"})
    return RedirectResponse("/login", status_code=303)


def guard(token: str | None, throttle: Throttle):
    """The HTTP middleware that lets a request through or answers it itself."""

    async def middleware(request: Request, call_next):
        if request.url.path.startswith(SUBSONIC_PREFIX):
            # Subsonic players carry neither the token nor a browser's manners: /rest/ checks its
            # own users on every request (server/subsonic_auth.py), loopback or not; the
            # credentials travel in the request itself, so another site's page cannot borrow them.
            return await call_next(request)
        if token is None:
            host = request.headers.get("host", "")
            if not is_loopback_host(host):
                return JSONResponse({"detail": f"host {host!r} refused: without a token the server answers "
                                               "loopback names only (localhost, 127.0.0.1, ::1)"}, status_code=400)
        elif request.url.path not in OPEN_PATHS:
            client = client_address(request)
            if presented(request):
                wait = throttle.wait(client)
                if wait:
                    return too_many(request, wait)
            if not credential_ok(request, token):
                if presented(request):
                    throttle.failed(client)
                return _denied(request, "a valid token is required (Authorization: Bearer TOKEN)", 401)
        origin = cross_site(request)
        if origin is not None:
            return JSONResponse({"detail": f"cross-site request from {origin} refused"}, status_code=403)
        return await call_next(request)

    return middleware


def login_router(token: str | None, throttle: Throttle) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    def login_form() -> HTMLResponse:
        return login_page()

    @router.post("/login")
    def login(request: Request, token_field: str = Form("", alias="token")) -> Response:
        if token is not None:
            client = client_address(request)
            wait = throttle.wait(client)
            if wait:
                return too_many(request, wait)
            if not token_ok(token_field, token):
                throttle.failed(client)
                return login_page("That token is not right.", status_code=401)
            throttle.succeeded(client)
        response = RedirectResponse("/", status_code=303)
        if token is not None:
            response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="strict", path="/",
                                secure=over_tls(request))
        return response

    return router
