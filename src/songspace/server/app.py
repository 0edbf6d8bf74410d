"""The FastAPI app: one Library and one shared Searcher per app, the JSON API under /api, the
page at / and its files under /static, OpenAPI docs at /docs.

    uvicorn --factory ...  or  `songspace serve` (which calls create_app)
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import DiskFull, ModelError, ReadOnlyLibrary, SongspaceError
from ..library import Library
from . import api, audiomuse, auth, browse, subsonic, transcode
from .jobs import IndexJob, MapJob
from .limits import BodyLimit
from .public import without_paths
from .subsonic_auth import Salts
from .throttle import Throttle

STATIC = Path(__file__).parent / "static"


# ---------------------------------------------------------------------------------------------
# Errors: {"detail": message} with a 4xx, never a 500 for something the user can fix
# ---------------------------------------------------------------------------------------------


def songspace_error(request: Request, e: SongspaceError) -> JSONResponse:
    # A missing or unloadable model, a read-only library or a full disk: the server's problem,
    # not the request's.
    server_side = isinstance(e, (ModelError, ReadOnlyLibrary, DiskFull))
    return JSONResponse({"detail": without_paths(str(e))},
                        status_code=503 if server_side else 400)


async def http_error(request: Request, e: StarletteHTTPException):
    """FastAPI's own answer to an HTTPException, its detail without paths."""
    if isinstance(e.detail, str):
        e.detail = without_paths(e.detail)
    return await http_exception_handler(request, e)


def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
    """FastAPI's list of problems, as one readable message ("query k: ...; body n: ...")."""
    parts = []
    for err in e.errors():
        where = " ".join(str(x) for x in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------


def create_app(library_dir: str | Path, token: str | None = None, *, index_workers: int | None = None) -> FastAPI:
    """The app over the library in `library_dir`. With `token`, every request must carry it
    (see auth.py); without, the app answers loopback requests only. `index_workers`: worker
    processes for index runs started from the API (None: the library's default)."""
    transcode.configure()  # before anything opens: a bad setting stops the start, named
    library = Library(library_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.map_job.start()  # in its thread: a map behind the vectors, or UMAP still due, now, not on a page view
        yield
        app.state.map_job.stop()  # kills a UMAP run at once: the quick layout stays stored
        # Don't wait out a long index run: each track is committed on its own, the next run resumes.
        app.state.index_job.join(timeout=5)
        library.close()

    app = FastAPI(title="songspace", version="0.1.0", lifespan=lifespan,
                  description="Music similarity from the sound itself: search, similar, radio, journeys, "
                              "duplicates, identify, explain, the map, and the audio. Tracks are named by catalog id.")
    # Routes run in a thread pool: they read through the Searcher (one read-only connection per
    # thread). The Library's writer connection serves only the Subsonic routes' small writes
    # (plays, stars, playlists), one at a time under a lock; index runs open their own Library,
    # the map its own writer.
    app.state.library = library
    app.state.searcher = library.searcher()
    app.state.map_job = MapJob(app.state.searcher, library.catalog.path)
    app.state.index_job = IndexJob(library.root, workers=index_workers, then=app.state.map_job.start)
    app.state.throttle = Throttle()  # wrong tokens, the login form, wrong Subsonic credentials
    app.state.salts = Salts()  # Subsonic t/s pairs seen: a pair is not accepted from another client

    app.add_exception_handler(SongspaceError, songspace_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # Every body is counted as it arrives (limits.py). Added first, so it sits inside the guard:
    # a request the guard refuses is never read, and the 413 raised while a route reads is not
    # wrapped by the guard's task group on its way to FastAPI's handler.
    app.add_middleware(BodyLimit, limit=api.MAX_UPLOAD + 64 * 1024)
    app.middleware("http")(auth.guard(token, app.state.throttle))  # added last: runs first
    app.include_router(auth.login_router(token, app.state.throttle))
    app.include_router(api.router)
    app.include_router(browse.router)  # the track list, albums, artists, covers
    app.include_router(audiomuse.router)  # /api/similar_tracks...: the AudioMuse-AI Navidrome plugin's calls
    app.include_router(subsonic.router)  # /rest/: the OpenSubsonic API, with its own user auth

    @app.get("/", include_in_schema=False)
    def page():
        index = STATIC / "index.html"
        if not index.is_file():
            return JSONResponse({"detail": "the page is not installed; the API is at /api and /docs"}, status_code=404)
        return FileResponse(index)

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
