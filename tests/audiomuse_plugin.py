"""The requests the AudioMuse-AI Navidrome plugin (NeptuneHub/AudioMuse-AI-NV-plugin, main.go and
audiomuse_api.go) makes of its backend, made the way it makes them, and the shapes it decodes
the answers into, for replaying against `songspace serve` (tests/test_audiomuse.py, and a
companion-mode library's test).

The plugin builds each query with Go's `url.Values.Encode()` (keys in sorted order, booleans as
"true"/"false"), sends `GET {apiUrl}/api/...` with `Authorization: Bearer {apiToken}` when a
token is configured, and treats any status but 200 as a failure. Its defaults: 10 similar
artists, eliminateDuplicates and radiusSimilarity true; a path's count 25 when Navidrome asks
for none, max_steps = count, path_fix_size=false, mood_pct=100.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx


def _go_encode(params: dict) -> str:
    """url.Values.Encode(): sorted by key, each value escaped as a query component."""
    return urlencode(sorted((k, v) for k, v in params.items()))


def similar_tracks(item_id: str, count: int, eliminate_duplicates: bool = True, radius_similarity: bool = True) -> str:
    """GetSimilarSongsByTrack and GetSonicSimilarTracks (count 10 when Navidrome gives none)."""
    return "/api/similar_tracks?" + _go_encode({
        "item_id": item_id, "n": str(count), "eliminate_duplicates": str(eliminate_duplicates).lower(),
        "radius_similarity": str(radius_similarity).lower()})


def find_path(start_song_id: str, end_song_id: str, count: int = 25) -> str:
    """FindSonicPath."""
    return "/api/find_path?" + _go_encode({
        "start_song_id": start_song_id, "end_song_id": end_song_id, "count": str(count), "max_steps": str(count),
        "path_fix_size": "false", "mood_pct": "100"})


def similar_artists(artist: str, include_component_matches: bool, count: int = 10) -> str:
    """GetSimilarArtists (false) and GetSimilarSongsByArtist (true)."""
    return "/api/similar_artists?" + _go_encode({
        "artist": artist, "n": str(count), "include_component_matches": str(include_component_matches).lower()})


def replay(base_url: str, path: str, token: str | None = None) -> httpx.Response:
    """One request as the plugin sends it (host.HTTPSend: GET, its headers only)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(base_url + path, headers=headers, timeout=60)


# -- what the plugin decodes (Go's encoding/json: extra fields ignored, types must match) --------

def check_track(entry: dict) -> None:
    """audioMuseTrackResponse: item_id, title, author, album strings; distance a number."""
    for key in ("item_id", "title", "author", "album"):
        assert isinstance(entry.get(key), str), (key, entry)
    assert isinstance(entry.get("distance"), (int, float)) and not isinstance(entry["distance"], bool), entry
    assert entry["item_id"], entry


def check_tracks(answer) -> None:
    assert isinstance(answer, list), answer
    for entry in answer:
        check_track(entry)


def check_path(answer) -> None:
    """audioMusePathResponse: {path: [tracks]}."""
    assert isinstance(answer, dict) and isinstance(answer.get("path"), list), answer
    check_tracks(answer["path"])


def check_artists(answer) -> None:
    """[]SimilarArtistsResponse: artist, artist_id strings; component_matches of
    artist1/artist2_representative_songs [{item_id, title}]."""
    assert isinstance(answer, list), answer
    for a in answer:
        assert isinstance(a.get("artist"), str) and isinstance(a.get("artist_id"), str), a
        assert isinstance(a.get("component_matches"), list), a
        for cm in a["component_matches"]:
            for side in ("artist1_representative_songs", "artist2_representative_songs"):
                assert isinstance(cm.get(side), list), cm
                for song in cm[side]:
                    assert isinstance(song.get("item_id"), str) and isinstance(song.get("title"), str), song


def songs_by_artist(answer: list[dict], count: int) -> list[str]:
    """GetSimilarSongsByArtist's mix from a similar_artists answer (with component matches): each
    artist's songs once, the query artist's and each related artist's in turns."""
    seen, slices = set(), []
    for a in answer:
        sides = {"artist1_representative_songs": [], "artist2_representative_songs": []}
        for cm in a["component_matches"]:
            for side, songs in sides.items():
                for s in cm[side]:
                    if s["item_id"] and s["item_id"] not in seen:
                        seen.add(s["item_id"])
                        songs.append(s["item_id"])
        slices += [songs for songs in sides.values() if songs]
    out, at = [], 0
    while len(out) < count and slices:
        out.append(slices[at].pop(0))
        if not slices[at]:
            del slices[at]
            if not slices:
                break
        else:
            at += 1
        at %= len(slices)
    return out
