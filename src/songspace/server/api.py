"""The JSON API: thin routes over the query layer and the recommenders, unchanged.

Every answer's JSON comes from `shapes` (the CLI's --json prints the same rows). Tracks are named by catalog id
only, never by a path or text (that is what `Searcher.resolve` does for the CLI; here an id
that is not in the catalog, or not searchable, is a 404). Errors are {"detail": message} with a
4xx status: the recommenders' SongspaceErrors are turned into 400s by the app's handlers.
Routes are plain `def`s: FastAPI runs them in its thread pool, and the Searcher is thread-safe; a
route that checks its tracks (404) and then asks about them does both inside one `snapshot()`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from ..audio import AUDIO_EXTENSIONS
from ..catalog import Track
from ..errors import QueryError, SongspaceError
from .. import shapes
from ..playlists import extinf
from ..query import Searcher
from . import remote_audio
from .streaming import audio_response, inside_folders

MAX_UPLOAD = 50 * 1024 * 1024  # bytes; an excerpt to identify needs far less
INT64 = 2**63

router = APIRouter(prefix="/api")


def get_searcher(request: Request) -> Searcher:
    return request.app.state.searcher


Search = Annotated[Searcher, Depends(get_searcher)]


# ---------------------------------------------------------------------------------------------
# Tracks by id: 404 for anything the catalog does not hold
# ---------------------------------------------------------------------------------------------


def known(searcher: Searcher, track_id: int) -> Track:
    """The catalog track with this id, or 404."""
    track = searcher.catalog.track(track_id) if -INT64 <= track_id < INT64 else None
    if track is None:
        raise HTTPException(404, f"no track with id {track_id} in the catalog")
    return track


def searchable(searcher: Searcher, track_id: int) -> Track:
    """The track with this id if it can be searched (analysed, embedded by the searched model), or 404."""
    track = known(searcher, track_id)
    try:
        searcher.vector(track)
    except QueryError as e:
        raise HTTPException(404, str(e)) from None
    return track


# ---------------------------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------------------------


@router.get("/status")
def status(request: Request) -> dict:
    """Counts, models, folders and failures (as `songspace status --json`), plus the index run."""
    state = request.app.state
    return {**state.library.status(), "index": state.index_job.progress()}


@router.get("/index")
def index_progress(request: Request) -> dict:
    """The current (or last) index run: running, done, total, phase, note, started, finished, report."""
    return request.app.state.index_job.progress()


@router.post("/index", status_code=202, responses={409: {"description": "a run is going, or no folders"}})
def start_index(request: Request, searcher: Search) -> JSONResponse:
    """Index the library's folders again (new, changed and removed files) in the background."""
    folders = searcher.catalog.folders()
    if not folders and not searcher.catalog.remote_servers():  # companion mode: the servers are updated too
        raise HTTPException(409, "the library has no folders yet: index a folder from the command line first")
    if not request.app.state.index_job.start(folders):
        raise HTTPException(409, "an index run is already going; follow it at GET /api/index")
    return JSONResponse({"started": True}, status_code=202)


@router.get("/tracks/{track_id}")
def track(track_id: int, searcher: Search) -> dict:
    """One track, with what `classify` predicted for it: {name: {label, confidence}}."""
    t = known(searcher, track_id)
    predictions = {}
    for name in searcher.catalog.prediction_names():
        found = searcher.catalog.predictions(name).get(t.id)
        if found is not None:
            predictions[name] = {"label": found[0], "confidence": round(found[1], 4)}
    return shapes.track_row(t, predictions=predictions)


@router.get("/tracks/{track_id}/audio", response_class=Response,
            responses={200: {"content": {"audio/*": {}}}, 206: {"description": "part of the file"},
                       416: {"description": "range not satisfiable"}})
def audio(track_id: int, request: Request, searcher: Search) -> Response:
    """The track's file; `Range: bytes=a-b` (or `a-`, `-n`) gets 206 with that part, to seek."""
    t = known(searcher, track_id)
    if t.remote_id is not None:  # companion mode: played from the server it lives on
        return remote_audio.response(t, request.headers.get("range"), download=True)
    path = inside_folders(t.path, searcher.catalog.folders())
    if path is None:
        raise HTTPException(404, f"track {track_id}'s file is missing or outside the library's folders")
    return audio_response(path, request.headers.get("range"))


@router.get("/playlist.m3u8", response_class=Response, responses={200: {"content": {"audio/x-mpegurl": {}}}})
def playlist(ids: str, request: Request, searcher: Search) -> Response:
    """These tracks (`ids=1,2,3`) as an M3U8 download. Each entry is the track's stream URL on
    this server (not its path on disk), so the playlist plays from here, on any machine that
    can reach the server; with a token the player must send it too."""
    try:
        wanted = [int(i) for i in ids.split(",") if i.strip()]
    except ValueError:
        raise HTTPException(400, f"ids must be catalog ids separated by commas, not {ids!r}") from None
    if not wanted:
        raise HTTPException(400, "ids names no track")
    return m3u8_response([known(searcher, track_id) for track_id in wanted], request)


def m3u8_response(tracks: list[Track], request: Request) -> Response:
    """These tracks as an M3U8 download of their stream URLs on this server."""
    lines = ["#EXTM3U"]
    for t in tracks:
        lines += [extinf(t), f"{request.base_url}api/tracks/{t.id}/audio"]
    return Response("\n".join(lines) + "\n", media_type="audio/x-mpegurl",
                    headers={"Content-Disposition": 'attachment; filename="songspace.m3u8"'})


# ---------------------------------------------------------------------------------------------
# Recommendations
# ---------------------------------------------------------------------------------------------


@router.get("/tracks/{track_id}/similar")
def similar(track_id: int, searcher: Search, k: Annotated[int, Query(ge=1, le=500)] = 10,
            other_artists: bool = False, other_albums: bool = False, min_duration: float | None = None,
            max_duration: float | None = None, keep_copies: bool = False) -> dict:
    """The k tracks that sound most like this one; other files of one recording are folded
    into one entry (`copies`), unless keep_copies."""
    from ..recommend.similar import Manners
    from ..recommend.similar import similar as find_similar

    manners = Manners(other_artists, other_albums, min_duration, max_duration, collapse_copies=not keep_copies)
    with searcher.snapshot():  # the 404 check and the search: one snapshot
        found = find_similar(searcher, searchable(searcher, track_id), k, manners)
    return {"items": shapes.similar_rows(found)}


class RadioRequest(BaseModel):
    seeds: list[int] = Field(description="liked tracks (catalog ids)")
    avoid: list[int] = Field(default=[], description="disliked tracks: neither they nor anything close is played")
    n: int = Field(default=30, description="how many tracks")
    seed: int = Field(default=0, ge=0, description="random seed: same seed, same playlist")
    artist_window: int = Field(default=3, description="no artist twice among this many consecutive tracks")


@router.post("/radio")
def radio(body: RadioRequest, searcher: Search) -> dict:
    """A playlist around the seed tracks: close to them, varied, never drifting away."""
    from ..recommend.radio import radio as make_radio

    with searcher.snapshot():
        seeds = [searchable(searcher, i) for i in body.seeds]
        avoid = [searchable(searcher, i) for i in body.avoid]
        found = make_radio(searcher, seeds, avoid, n=body.n, seed=body.seed, artist_window=body.artist_window)
    return {"items": shapes.radio_rows(found)}


@router.get("/path")
def path(a: int, b: int, searcher: Search, n: int = 12) -> dict:
    """A journey from A to B (both included, at most n tracks) in small steps, each closer to B."""
    from ..recommend.path import journey

    with searcher.snapshot():
        trip = journey(searcher, searchable(searcher, a), searchable(searcher, b), n=n)
    return {"items": shapes.path_rows(trip),
            "largest_step": round(trip.largest_step, 4), "direct": round(trip.direct, 4)}


@router.get("/duplicates")
def duplicates(searcher: Search, threshold: float | None = None) -> dict:
    """Files that are the same recording (computed on request: slow on a big library)."""
    from ..recommend.duplicates import DEFAULT_THRESHOLD, duplicate_groups, find_duplicates

    pairs = find_duplicates(searcher, threshold=DEFAULT_THRESHOLD if threshold is None else threshold)
    tracks = {t.id: t for t in searcher.tracks(sorted({i for p in pairs for i in (p.a, p.b)}))}
    return shapes.duplicates_answer(pairs, duplicate_groups(pairs), tracks)


@router.post("/identify", responses={413: {"description": "upload too large"}})
def identify(searcher: Search, file: UploadFile = File(description="an audio excerpt, ~3 s or more"),
             k: Annotated[int, Query(ge=1, le=100)] = 5) -> dict:
    """Which library tracks an uploaded excerpt comes from, and where in each it starts."""
    from ..recommend.identify import identify as run_identify

    suffix = os.path.splitext(file.filename or "")[1].lower()
    fd, tmp = tempfile.mkstemp(prefix="songspace-upload-", suffix=suffix if suffix in AUDIO_EXTENSIONS else ".bin")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(file.file, out)
            if out.tell() > MAX_UPLOAD:
                raise HTTPException(413, f"upload too large: at most {MAX_UPLOAD // 2**20} MB")
            if out.tell() == 0:
                raise HTTPException(400, "the uploaded file is empty")
        try:
            found = run_identify(searcher, tmp, k=k)
        except SongspaceError as e:  # name the upload, not our temporary copy of it
            e.args = (str(e).replace(tmp, file.filename or "the upload"), *e.args[1:])
            raise
    finally:
        os.unlink(tmp)
    return {"items": shapes.identify_rows(found)}


@router.get("/explain")
def explain(a: int, b: int, searcher: Search, top: int = 5) -> dict:
    """The moments of A and B that sound most alike: time spans in each, with their similarity."""
    from ..recommend.explain import explain as run_explain

    with searcher.snapshot():
        found = run_explain(searcher, searchable(searcher, a).id, searchable(searcher, b).id, top=top)
    return {"items": shapes.explain_pairs(found)}


@router.get("/predictions")
def prediction_names(searcher: Search) -> dict:
    """What `classify` has learned and predicted (genre, a CSV column, ...)."""
    return {"names": searcher.catalog.prediction_names()}


@router.get("/predictions/{name}")
def predictions(name: str, searcher: Search) -> dict:
    """Every track's predicted `name`, most confident first."""
    found = searcher.catalog.predictions(name)
    if not found:
        raise HTTPException(404, f"nothing predicted for {name!r} (names: {', '.join(searcher.catalog.prediction_names()) or 'none'})")
    ids = sorted(found, key=lambda i: -found[i][1])
    tracks = [t for t in searcher.catalog.tracks_by_id(ids) if t is not None]
    return {"items": [shapes.prediction_row(t, *found[t.id]) for t in tracks]}


@router.get("/map", responses={404: {"description": "no track has a vector yet"}})
def library_map(request: Request, searcher: Search) -> Response:
    """2-D coordinates of every searchable track (UMAP over the embeddings), as stored after the
    last index run: never laid out on this request. "final": false while a quick PCA stands in
    for UMAP; "pending": the map is being brought up to date, ask again; "computing": which step."""
    from ..map import library_map as read_map

    job = request.app.state.map_job
    try:
        found = read_map(searcher)
    except QueryError as e:
        raise HTTPException(404, str(e)) from None
    job.start_if_needed(needed=not (found["stored"] and found["final"]))  # usually already running
    state = job.state()
    found.update(pending=state["running"], computing=state["step"] if state["running"] else None,
                 error=state["error"] if state["error"] != "stopped" else None)
    # Plain json.dumps: FastAPI's own encoding of 100k points takes ~10x longer (bench/map_scale.py).
    return Response(json.dumps(found, separators=(",", ":")), media_type="application/json")


@router.post("/map/recompute", status_code=202, responses={409: {"description": "a recompute is already running"}})
def recompute_map(request: Request) -> dict:
    """Lay the whole map out again with UMAP, in the background (tracks added since the last
    layout were placed among their neighbours; this moves every dot). GET /api/map meanwhile
    answers the current map with "pending": true."""
    job = request.app.state.map_job
    if not job.start(full=True):
        raise HTTPException(409, "the map is being laid out already: it shows when it is done")
    return {"started": True}
