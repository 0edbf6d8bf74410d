"""Who may ask. Without a token (the default, loopback only) everything is open to this
machine; with one, every request (API, page, static files, docs) carries it, as
`Authorization: Bearer TOKEN` or the HttpOnly cookie that the login form sets.

Tokenless, the server answers only requests addressed to a loopback name (a web page cannot
reach it through DNS rebinding) and refuses writes that another site's page sends (CSRF).
"""

from __future__ import annotations

import html
import ipaddress
import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

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


def presented_token(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.cookies.get(COOKIE, "")


def token_ok(given: str, token: str) -> bool:
    return secrets.compare_digest(given.encode(), token.encode())


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


def guard(token: str | None):
    """The HTTP middleware that lets a request through or answers it itself."""

    async def middleware(request: Request, call_next):
        if request.url.path.startswith(SUBSONIC_PREFIX):
            # Subsonic players carry neither the token nor a browser's manners: /rest/ checks its
            # own users on every request (server/subsonic_auth.py), loopback or not; the
            # credentials travel in the request itself, so another site's page cannot borrow them.
            return await call_next(request)
        if token is None:
            host = request.headers.get("host", "")
            if not is_loopback_host(host) and host != "testserver":  # testserver: Starlette's test client
                return JSONResponse({"detail": f"host {host!r} refused: without a token the server answers "
                                               "loopback names only (localhost, 127.0.0.1, ::1)"}, status_code=400)
            origin = request.headers.get("origin")
            if request.method not in ("GET", "HEAD", "OPTIONS") and origin and urlsplit(origin).netloc != host:
                return JSONResponse({"detail": f"cross-site request from {origin} refused"}, status_code=403)
        elif request.url.path not in OPEN_PATHS and not token_ok(presented_token(request), token):
            return _denied(request, "a valid token is required (Authorization: Bearer TOKEN)", 401)
        return await call_next(request)

    return middleware


def login_router(token: str | None) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    def login_form() -> HTMLResponse:
        return login_page()

    @router.post("/login")
    def login(token_field: str = Form("", alias="token")) -> Response:
        if token is not None and not token_ok(token_field, token):
            return login_page("That token is not right.", status_code=401)
        response = RedirectResponse("/", status_code=303)
        if token is not None:
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    return router
