"""A drop-in backend for the AudioMuse-AI Navidrome plugin (`audiomuseai`): the three calls it
makes of AudioMuse-AI's server, answered from songspace's vectors, so Navidrome's Instant Mix,
artist radio, similar artists and the sonicSimilarity extension (getSonicSimilarTracks,
findSonicPath) come from songspace. Point the plugin's "API URL" at `songspace serve` and, when
it runs with a token, put that token in the plugin's "API Token" (sent as `Authorization:
Bearer`, checked by auth.py like any /api request).

    GET /api/similar_tracks?item_id&n&eliminate_duplicates&radius_similarity
        → [{item_id, title, author, album, distance}]       (`songspace similar`, best first)
    GET /api/find_path?start_song_id&end_song_id&count&max_steps&path_fix_size&mood_pct
        → {path: [same entries]}                             (`songspace path`, A first, B last)
    GET /api/similar_artists?artist&n&include_component_matches
        → [{artist, artist_id, distance, component_matches: [{artist1_representative_songs,
            artist2_representative_songs: [{item_id, title}]}]}]

Ids are the ones Navidrome knows: a track indexed from a Subsonic server (companion mode) is
named by that server's song id (`Track.remote_id`), a local one by its catalog id. `distance` is
1 - cosine similarity (the plugin shows 1 - distance). `radius_similarity` (AudioMuse's own
reordering) and the path's `max_steps`, `path_fix_size` and `mood_pct` are accepted and not
used: the order is songspace's. `artist` is what the plugin sends, the artist's id on the server
the library was indexed from (companion mode: Navidrome's), or an artist's name, or its Subsonic
id in /rest/ (ar-...); `artist_id` is answered in the first kind where there is one.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from ..catalog import Track
from ..query import Searcher
from .subsonic_library import artist_id

router = APIRouter(prefix="/api", tags=["AudioMuse-AI plugin"])
# Larger asks are answered with this many, not refused: the plugin passes Navidrome's count on.
MAX_TRACKS, MAX_ARTISTS = 500, 100


# ---------------------------------------------------------------------------------------------
# Ids: the plugin's item_id ⇄ catalog tracks
# ---------------------------------------------------------------------------------------------


def plugin_id(t: Track) -> str:
    """The id Navidrome knows a track by."""
    return t.remote_id or str(t.id)


def _by_item_id(searcher: Searcher) -> dict[str, int]:
    """{item_id: track id} of every searchable track, once per snapshot. A remote id wins over
    a local id spelled the same."""
    def build():
        ids = [int(i) for i in searcher.ids()]
        found = {str(t.id): t.id for t in searcher.tracks(ids) if t.remote_id is None}
        found.update({t.remote_id: t.id for t in searcher.tracks(ids) if t.remote_id is not None})
        return found
    return searcher.derived("audiomuse item ids", build)


def _remote_artists(searcher: Searcher) -> tuple[dict[str, str], dict[str, str]]:
    """({server's artist id: artist key}, {artist key: server's artist id}) over the tracks
    indexed from another server (catalog/companion.py), once per snapshot; an artist key is the
    casefolded name, as recommend/artists.py keys artists. A name under several ids (several
    servers) answers with the id most of its tracks have."""
    def build():
        ids = [int(i) for i in searcher.ids()]
        remote = searcher.catalog.remote_ids(ids)
        votes: dict[str, Counter] = {}
        for t in searcher.tracks([i for i in ids if i in remote]):
            server_id = remote[t.id][0]
            if server_id and (t.artist or "").strip():
                votes.setdefault(t.artist.strip().casefold(), Counter())[server_id] += 1
        by_id = {server_id: key for key, c in votes.items() for server_id in c}
        return by_id, {key: c.most_common(1)[0][0] for key, c in votes.items()}
    return searcher.derived("audiomuse artist ids", build)


def _track(searcher: Searcher, given: str, name: str) -> Track:
    found = _by_item_id(searcher).get(given.strip())
    if found is None:
        raise HTTPException(404, f"{name}: no searchable track has the id {given[:80]!r}")
    return searcher.track(found)


def _entry(t: Track, distance: float) -> dict:
    return {"item_id": plugin_id(t), "title": t.title or t.label, "author": t.artist or "", "album": t.album or "",
            "distance": round(min(max(float(distance), 0.0), 2.0), 6)}


def _searcher(request: Request) -> Searcher:
    return request.app.state.searcher


# ---------------------------------------------------------------------------------------------
# The three calls
# ---------------------------------------------------------------------------------------------


@router.get("/similar_tracks")
def similar_tracks(request: Request, item_id: str, n: Annotated[int, Query(ge=0)] = 10,
                   eliminate_duplicates: bool = True, radius_similarity: bool = True) -> list[dict]:
    """The n tracks that sound most like `item_id`, best first (`songspace similar`). With
    eliminate_duplicates, other files of one recording are shown once and the query's own
    copies not at all; without, every file is listed (`--keep-copies`). n is capped at
    MAX_TRACKS; n=0 asks for nothing (an empty list, as AudioMuse-AI answers)."""
    from ..recommend.similar import Manners, similar

    n = min(n, MAX_TRACKS)
    searcher = _searcher(request)
    with searcher.snapshot():
        query = _track(searcher, item_id, "item_id")
        if n == 0:
            return []
        found = similar(searcher, query, n + 1 if eliminate_duplicates else n,  # room for the query's copy
                        Manners(collapse_copies=eliminate_duplicates))
    kept = [m for m in found if not (eliminate_duplicates and m.copy_of_query)][:n]
    return [_entry(m.track, 1.0 - m.score) for m in kept]


@router.get("/find_path")
def find_path(request: Request, start_song_id: str, end_song_id: str,
              count: Annotated[int, Query(ge=2)] = 25, max_steps: int | None = None,
              path_fix_size: bool | None = None, mood_pct: float | None = None) -> dict:
    """A journey from start to end (`songspace path`), at most `count` tracks (fewer when the
    library holds fewer); each entry's distance is its step from the one before (0 for the start)."""
    from ..recommend.path import journey

    searcher = _searcher(request)
    with searcher.snapshot():
        a = _track(searcher, start_song_id, "start_song_id")
        b = _track(searcher, end_song_id, "end_song_id")
        if a.id == b.id:  # said in the plugin's ids (journey's own error names the catalog's)
            raise HTTPException(400, f"start_song_id and end_song_id are the same song ({start_song_id.strip()[:80]!r}): "
                                     "a path needs two")
        trip = journey(searcher, a, b, n=min(count, MAX_TRACKS, len(searcher)))
    return {"path": [_entry(s.track, s.step) for s in trip.steps]}


@router.get("/similar_artists")
def similar_artists(request: Request, artist: str, n: Annotated[int, Query(ge=0)] = 10,
                    include_component_matches: bool = False) -> list[dict]:
    """The n artists whose music sits closest to `artist`'s, best first; with
    include_component_matches, the closest pairs of their songs. n is capped at MAX_ARTISTS."""
    from ..recommend.artists import artists
    from ..recommend.artists import similar_artists as find

    searcher = _searcher(request)
    with searcher.snapshot():
        known = artists(searcher)
        by_server_id, server_id_of = _remote_artists(searcher)
        wanted = artist.strip()
        if known.find(wanted) is None and wanted in by_server_id:  # the plugin's: the server's artist id
            wanted = by_server_id[wanted]
        if known.find(wanted) is None:  # a Subsonic artist id (ar-...) names an artist too
            wanted = next((a.name for a in known.by_key.values() if artist_id(a.name) == wanted), wanted)
        if known.find(wanted) is None:
            raise HTTPException(404, f"artist: no searchable track is by the artist {artist[:80]!r}")
        found = find(searcher, wanted, min(n, MAX_ARTISTS)) if n else []
    out = []
    for m in found:
        answer_id = server_id_of.get(m.artist.name.strip().casefold()) or artist_id(m.artist.name)
        body = {"artist": m.artist.name, "artist_id": answer_id, "distance": round(1.0 - m.score, 6)}
        if include_component_matches:
            body["component_matches"] = [{
                "artist1_representative_songs": _songs(a for a, _ in m.pairs),
                "artist2_representative_songs": _songs(b for _, b in m.pairs)}]
        else:
            body["component_matches"] = []
        out.append(body)
    return out


def _songs(tracks) -> list[dict]:
    unique = {t.id: t for t in tracks}
    return [{"item_id": plugin_id(t), "title": t.title or t.label} for t in unique.values()]
