"""The JSON shapes of every answer: what `songspace ... --json` prints and the HTTP API returns.

Both faces build their answers here, so a field added to a track row, or to a duplicate pair,
appears in the CLI and on the server alike. Every track is `track_row(track, score?, **extra)`;
floats are rounded where a longer number would only be noise. The faces wrap these lists
their own way (the CLI prints a list, the API returns {"items": [...]}).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .catalog import Track


def track_row(track: Track, score: float | None = None, **extra) -> dict:
    """One track as JSON-ready fields; every list songspace returns as JSON uses these."""
    row = {"id": track.id}
    if score is not None:
        row["score"] = round(float(score), 4)
    row.update(path=track.path, artist=track.artist, title=track.title, album=track.album, genre=track.genre,
               duration=None if track.duration is None else round(track.duration, 2))
    row.update(extra)
    return row


def similar_rows(found: Iterable) -> list[dict]:
    """`recommend.similar` matches: score (what the list is ordered by: rerank.py), cosine,
    whether the match is a copy of the query, and the ids of the other files of its recording
    folded into it."""
    return [track_row(m.track, m.score, cosine=round(float(m.cosine), 4), copy_of_query=m.copy_of_query,
                      copies=list(m.copies)) for m in found]


def radio_rows(found: Iterable) -> list[dict]:
    return [track_row(m.track, m.score) for m in found]


def path_rows(trip) -> list[dict]:
    """A `recommend.path` journey's steps: each step's cosine distance, and what is left to B."""
    return [track_row(s.track, step=round(s.step, 4), to_b=round(s.to_b, 4)) for s in trip.steps]


def duplicates_answer(pairs: Sequence, groups: list[list[int]], tracks: dict[int, Track]) -> dict:
    """{"groups": [[ids]], "pairs": [...]}: each pair with its group (numbered from 1), how alike
    and how much of the shorter file matches, the offset, and the matching span of each file."""
    group_of = {i: n for n, g in enumerate(groups, 1) for i in g}
    return {"groups": groups,
            "pairs": [{"group": group_of[p.a], "similarity": p.similarity, "coverage": p.coverage, "offset": p.offset,
                       "a": track_row(tracks[p.a]), "a_span": p.a_span, "b": track_row(tracks[p.b]), "b_span": p.b_span}
                      for p in pairs]}


def identify_rows(found: Iterable) -> list[dict]:
    """`recommend.identify` candidates: where in the track the excerpt starts, and how sure."""
    return [track_row(m.track, offset=m.offset, confidence=m.confidence, similarity=m.similarity, coverage=m.coverage)
            for m in found]


def explain_pairs(found: Iterable) -> list[dict]:
    """`recommend.explain` moments: the time span in A and in B, and their similarity."""
    return [{"a_span": m.a_span, "b_span": m.b_span, "similarity": m.similarity} for m in found]


def prediction_row(track: Track, label: str, confidence: float) -> dict:
    """A track with what `classify` predicted for it."""
    return track_row(track, label=label, confidence=round(confidence, 4))


def playlist_answer(name: str, file: str, noise: bool, tracks: Iterable[Track]) -> dict:
    """One playlist of `clusters`: its name, its M3U8 file, whether it holds the unclustered."""
    return {"name": name, "file": file, "noise": noise, "tracks": [track_row(t) for t in tracks]}


def predicted_tags(stored: dict[str, dict[int, tuple[str, float]]], track_id: int) -> dict:
    """A track's stored predicted tags (autotags.stored): {group: {tag, probability}}, kept apart
    from the file's own `genre`."""
    return {group: {"tag": found[track_id][0], "probability": round(found[track_id][1], 4)}
            for group, found in stored.items() if track_id in found}


def with_predicted(rows: list[dict], stored: dict[str, dict[int, tuple[str, float]]]) -> list[dict]:
    """`rows` with each track's predicted tags (autotags.stored_for) under "predicted"."""
    return [{**row, "predicted": predicted_tags(stored, row["id"])} for row in rows]


def tagged_rows(tracks: Iterable[Track], stored: dict[str, dict[int, tuple[str, float]]]) -> list[dict]:
    """Tracks with their predicted tags (`songspace tags` of a library)."""
    return [track_row(t, predicted=predicted_tags(stored, t.id)) for t in tracks]


def track_tags(track: Track, model_id: str, tags: dict[str, list[tuple[str, float, float]]]) -> dict:
    """One track with every tag's probability per group, and its lift (the probability over the
    tag's average), highest lift first (`songspace tags TRACK`)."""
    return track_row(track, model_id=model_id,
                     tags={g: [{"tag": t, "probability": round(p, 4), "lift": round(x, 3)} for t, p, x in found]
                           for g, found in tags.items()})


# ---------------------------------------------------------------------------------------------
# Albums and artists, as the page browses them (the grouping is the Subsonic view's:
# server/subsonic_library.py; these take its Album and Artist by their fields)
# ---------------------------------------------------------------------------------------------


def album_row(album, **extra) -> dict:
    """An album: its name, album artist ("Various Artists" for a compilation), year, genre,
    how many songs and seconds, and whether one of its files has a picture (embedded or a
    folder image beside it; else its cover is a placeholder)."""
    songs = album.songs
    row = {"id": album.id, "name": album.name, "artist": album.artist.name, "artist_id": album.artist.id,
           "year": album.year, "genre": album.genre, "song_count": len(songs), "duration": album.duration,
           "compilation": album.compilation, "picture": any(t.picture_mime or t.folder_image for t in songs)}
    row.update(extra)
    return row


def album_track_row(track: Track) -> dict:
    """A track of an album: a track row with its disc and its number on that disc."""
    return track_row(track, disc=track.disc, number=track.track, year=track.year)


def artist_row(artist, album_count: int, song_count: int, **extra) -> dict:
    """An artist: name, how many albums are listed under them, and how many songs are theirs
    (those of their own albums, else those that credit them)."""
    row = {"id": artist.id, "name": artist.name, "album_count": album_count, "song_count": song_count}
    row.update(extra)
    return row
