"""The OpenSubsonic API under /rest/: any Subsonic player (Symfonium, Feishin, DSub, Substreamer,
Tempo, Amperfy, ...) browses and plays the library, and its "Instant Mix" comes from the sound.

Every method answers at /rest/NAME and /rest/NAME.view, to GET and POST (parameters in the query
string, a form-encoded body, or both), and to HEAD (the GET answer's headers: a player checks a
stream's length); XML by default, JSON with f=json (subsonic_format.py). Every request names a
user (subsonic_auth.py), except getOpenSubsonicExtensions, which the specification makes public:
the app's own token guard lets /rest/ through to that check. Credentials in the query string are
checked before a form body is read, and a body is read only up to a small size until they are
(limits.py). Failures are Subsonic errors in the envelope, never a 500: 10 a required parameter
is missing, 40 wrong credentials, 50 not yours to change, 70 not found (an unknown id, an id of
another kind, a path), 0 anything else. Ids: subsonic_library.py.

`download` sends the original file (with byte ranges) and names it (Content-Disposition); so
does `stream` unless `format`, `maxBitRate`, `timeOffset` or the user's stream defaults ask for a
transcode (transcode.py). Similarity:
getSimilarSongs(2) is `songspace radio` seeded by a song, an album or an artist, without other
files of a seed's recording or of a song already listed (recommend/similar.py tells copies, as
the page shows them); the sonicSimilarity extension's getSonicSimilarTracks is `songspace
similar` (copies of the query left out) and findSonicPath is `songspace path`; their
`similarity` is the cosine similarity (to the query song, or to the start of the path) clipped
to 0..1. getArtistInfo(2)'s similar artists: subsonic_info.py.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..catalog import Catalog
from ..errors import QueryError, SongspaceError
from . import subsonic_browse, subsonic_info, subsonic_playing, subsonic_user  # noqa: F401  (their @method handlers join HANDLERS)
from .limits import lower_body_limit
from .public import without_paths
from .subsonic_auth import authenticate
from .subsonic_format import (
    GENERIC,
    MISSING,
    NOT_AUTHORIZED,
    NOT_FOUND,
    WRONG_CREDENTIALS,
    SubsonicError,
    error,
    render,
)
from .subsonic_request import HANDLERS, Ctx, Handler, Params, method
from .throttle import client_address

log = logging.getLogger("songspace")
router = APIRouter(prefix="/rest", include_in_schema=False)

EXTENSIONS = [{"name": "sonicSimilarity", "versions": [1]}, {"name": "formPost", "versions": [1]},
              {"name": "apiKeyAuthentication", "versions": [1]}, {"name": "songLyrics", "versions": [1]},
              {"name": "indexBasedQueue", "versions": [1]}, {"name": "transcodeOffset", "versions": [1]}]
PUBLIC = {"getOpenSubsonicExtensions"}  # answered without credentials, as the specification asks


# A form body is read only up to these sizes: a little while the caller is unknown (the formPost
# extension lets credentials travel in the body), more once the query string's credentials are
# right (a playlist of thousands of songs). Nothing else is read before the credentials are.
ANONYMOUS_BODY = 64 * 1024
USER_BODY = 4 * 2**20


def _has_credentials(params: Params) -> bool:
    return bool(params.get("apiKey") or params.get("u") and (params.get("p") is not None
                                                             or (params.get("t") and params.get("s"))))


def _sign_in(request: Request, params: Params, catalog: Catalog) -> str:
    """The user `params` prove to be (subsonic_auth.py), throttled per client: after repeated
    wrong credentials an address gets error 40 without its credentials being looked at."""
    state, client = request.app.state, client_address(request)
    wait = state.throttle.wait(client)
    if wait:
        raise SubsonicError(WRONG_CREDENTIALS, f"Too many wrong credentials from this address: try again in {wait} s.")
    try:
        user = authenticate(params, catalog, state.salts, client)
    except SubsonicError as e:
        if e.code not in (MISSING,):
            state.throttle.failed(client)
        raise
    state.throttle.succeeded(client)
    return user


async def _params(request: Request, proven: bool = False) -> Params:
    items = list(request.query_params.multi_items())
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        lower_body_limit(request, USER_BODY if proven else ANONYMOUS_BODY)
        form = await request.form()
        items += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return Params(items)


def _answer(ctx: Ctx, handler: Handler, public: bool = False) -> Response:
    fmt = ctx.params.get("f")
    try:
        if not ctx.user and not public:  # not proven by the query string already
            ctx.user = _sign_in(ctx.request, ctx.params, ctx.catalog)
        with ctx.searcher.snapshot():  # the view's songs and the search: one snapshot
            result = handler(ctx)
        return result if isinstance(result, Response) else render(result, fmt)
    except SubsonicError as e:
        return error(e, fmt)
    except QueryError as e:  # not indexed, not searchable by the current model
        return error(SubsonicError(NOT_FOUND, without_paths(str(e))), fmt)
    except SongspaceError as e:
        return error(SubsonicError(GENERIC, without_paths(str(e))), fmt)


async def _head(response: Response) -> Response:
    """HEAD: the GET answer's status and headers (length, type, ranges), without its body; a
    streamed body is closed unread."""
    body = getattr(response, "body_iterator", None)
    if body is not None and hasattr(body, "aclose"):
        await body.aclose()
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    length = response.headers.get("content-length")
    head = Response(status_code=response.status_code, headers=headers)
    if length is not None:
        head.headers["content-length"] = length  # the length a GET would send
    else:  # not known ahead (a transcode): none, rather than the 0 Starlette writes for no body
        del head.headers["content-length"]
    return head


@router.api_route("/{name}", methods=["GET", "POST", "HEAD"])
async def dispatch(name: str, request: Request) -> Response:
    response = await _dispatch(name, request)
    return await _head(response) if request.method == "HEAD" else response


async def _dispatch(name: str, request: Request) -> Response:
    query = Params(list(request.query_params.multi_items()))
    user = ""
    name = name.removesuffix(".view")
    public = name in PUBLIC
    if _has_credentials(query) and not public:  # credentials in the URL: checked before any body is read
        try:
            # The catalog of the thread that asks: each thread reads through its own connection.
            user = await run_in_threadpool(lambda: _sign_in(request, query, request.app.state.searcher.catalog))
        except SubsonicError as e:
            return error(e, query.get("f"))
    params = await _params(request, proven=bool(user))
    handler = HANDLERS.get(name)
    if handler is None:
        return error(SubsonicError(GENERIC, f"Unknown method: {name!r}."), params.get("f"))
    ctx = Ctx(request, params, request.app.state.searcher, user)
    try:
        return await run_in_threadpool(_answer, ctx, handler, public)
    except Exception as e:  # a bug: logged with its traceback, answered as a Subsonic error, never a 500
        if getattr(e, "status_code", None):  # an HTTPException (a range outside the file): as it is
            raise
        log.exception("songspace: /rest/%s failed", name)
        return error(SubsonicError(GENERIC, f"Internal error: {type(e).__name__}."), params.get("f"))


# ---------------------------------------------------------------------------------------------
# System
# ---------------------------------------------------------------------------------------------


@method("ping")
def ping(ctx: Ctx) -> dict:
    return {}


@method("getLicense")
def get_license(ctx: Ctx) -> dict:
    return {"license": {"valid": True}}


@method("getOpenSubsonicExtensions")
def get_extensions(ctx: Ctx) -> dict:
    return {"openSubsonicExtensions": EXTENSIONS}


@method("getUser")
def get_user(ctx: Ctx) -> dict:
    name = ctx.params.get("username") or ctx.user
    if name != ctx.user:
        raise SubsonicError(NOT_AUTHORIZED, "Only your own user can be read here.")
    roles = dict.fromkeys(("scrobblingEnabled", "downloadRole", "playlistRole", "coverArtRole", "streamRole"), True)
    denied = dict.fromkeys(("adminRole", "settingsRole", "uploadRole", "commentRole", "podcastRole", "jukeboxRole",
                            "shareRole", "videoConversionRole"), False)
    return {"user": {"username": name, **roles, **denied, "folder": [d.folder for d in ctx.view.roots]}}


def _scan_status(ctx: Ctx) -> dict:
    return {"scanStatus": {"scanning": bool(ctx.request.app.state.index_job.progress().get("running")),
                           "count": len(ctx.view.songs)}}


@method("tokenInfo")
def token_info(ctx: Ctx) -> dict:
    """Whose credentials (an API key, or a password) the request carries (apiKeyAuthentication)."""
    return {"tokenInfo": {"username": ctx.user}}


@method("getScanStatus")
def get_scan_status(ctx: Ctx) -> dict:
    return _scan_status(ctx)


@method("startScan")
def start_scan(ctx: Ctx) -> dict:
    """The same update as the page's "Update library" button (server/jobs.py): the library's
    folders (and companion mode's servers) indexed again in the background; while a run is going,
    that run's status."""
    folders = ctx.catalog.folders()
    if not folders and not ctx.catalog.remote_servers():  # companion mode: the servers are updated too
        raise SubsonicError(GENERIC, "The library has no folders yet: index a folder from the command line first.")
    ctx.request.app.state.index_job.start(folders)  # False (nothing new started) while a run is going
    return {"scanStatus": {**_scan_status(ctx)["scanStatus"], "scanning": True}}
