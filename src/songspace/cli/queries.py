"""Asking the library: similar, radio, path (a list of tracks each, to MPD too), and from the
segments: duplicates, identify, explain. The JSON of every answer comes from `shapes`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .. import shapes
from ..errors import InputError
from ..library import Library
from .base import app, clear_errors, console, open_library, out, print_json
from .companion import ToPlaylistOption, to_playlist
from .output import AbsoluteOption, JsonOption, M3u8Option, PlainJsonOption, clock, show_tracks, span_text


@app.command()
def similar(
    query: Annotated[str, typer.Argument(help="A catalog id, a path in the library, part of 'artist - title', or an audio file outside the library.")],
    k: Annotated[int, typer.Option("-k", help="How many tracks.")] = 10,
    other_artists: Annotated[bool, typer.Option("--other-artists", help="Nothing by the query's artist.")] = False,
    other_albums: Annotated[bool, typer.Option("--other-albums", help="Nothing from the query's album.")] = False,
    min_duration: Annotated[Optional[float], typer.Option(help="Only tracks at least this long (seconds).")] = None,
    max_duration: Annotated[Optional[float], typer.Option(help="Only tracks at most this long (seconds).")] = None,
    keep_copies: Annotated[bool, typer.Option("--keep-copies", help="List every file of a recording (default: copies shown once).")] = False,
    as_json: JsonOption = False,
    m3u8: M3u8Option = None,
    absolute: AbsoluteOption = False,
):
    """Tracks that sound most like QUERY, best first. Other files of the same recording (another
    codec, a trimmed or quieter copy) are folded into one entry: `copies` in --json."""
    from ..recommend.similar import Manners
    from ..recommend.similar import similar as find_similar

    manners = Manners(other_artists, other_albums, min_duration, max_duration, collapse_copies=not keep_copies)
    with open_library(readonly=True) as lib, clear_errors():
        searcher = lib.searcher()
        target = searcher.resolve(query)
        found = find_similar(searcher, target, k, manners)
        name = target.label if hasattr(target, "label") else str(target)
        rows = with_predicted(lib, shapes.similar_rows(found)) if as_json else shapes.similar_rows(found)
        show_tracks(f"Sounds like: {name}", rows, as_json, m3u8, absolute, [m.track for m in found],
                    columns=("score", "cosine"))


# -- playlists: radio, path (and MPD) ----------------------------------------------------------

MpdOption = Annotated[Optional[str], typer.Option("--mpd", metavar="HOST:PORT", help="Also queue the list in this running MPD, after its current song (HOST:PORT, or its socket path).")]
MpdMusicDirOption = Annotated[Optional[Path], typer.Option("--mpd-music-dir", help="MPD's music directory (default: asked of MPD, or read from its config file).")]


def default_length(lib: Library, n: int | None, default: int) -> int:
    """-n as given (too many is an error), or the default capped to what the library holds."""
    return n if n is not None else min(default, len(lib.searcher()) or default)


def require_mpd_for_music_dir(music_dir: Path | None, with_mpd: bool) -> None:
    if music_dir is not None and not with_mpd:
        raise InputError("--mpd-music-dir is for MPD: give --mpd too (or --mpd-current with radio)")


def queue_in_mpd(tracks: list, address: str | None, music_dir: Path | None) -> None:
    """Queue `tracks` in MPD after its current song (MpdError: exit 2 through clear_errors)."""
    from ..mpd import play_list

    n = play_list([t.path for t in tracks], address, music_dir)
    console.print(f"queued {n} tracks in MPD after the current song")


@app.command("radio")
def radio_command(
    seeds: Annotated[Optional[list[str]], typer.Argument(metavar="SEED", help="Liked tracks: catalog ids, paths in the library, or parts of 'artist - title' (none with --mpd-current).")] = None,
    avoid: Annotated[Optional[list[str]], typer.Option("--avoid", metavar="TRACK", help="A disliked track (repeatable): neither it nor anything close to it is played.")] = None,
    n: Annotated[Optional[int], typer.Option("-n", help="How many tracks (default 30, or as many as a smaller library holds).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same playlist; another seed, another mix).")] = 0,
    artist_window: Annotated[int, typer.Option("--artist-window", help="No artist twice among this many consecutive tracks.")] = 3,
    as_json: JsonOption = False,
    m3u8: M3u8Option = None,
    absolute: AbsoluteOption = False,
    mpd: MpdOption = None,
    mpd_music_dir: MpdMusicDirOption = None,
    mpd_current: Annotated[bool, typer.Option("--mpd-current", help="Seed from the song MPD is playing (at --mpd, or $MPD_HOST, or localhost:6600), and queue the radio there.")] = False,
    genre: Annotated[Optional[str], typer.Option("--genre", help="Only tracks whose predicted genre is this (`songspace tags`).")] = None,
    mood: Annotated[Optional[str], typer.Option("--mood", help="Only tracks whose predicted mood is this (e.g. calm; an unknown one lists them).")] = None,
    playlist: ToPlaylistOption = None,
):
    """A playlist around SEED tracks: close to them, varied, never drifting away."""
    from .. import autotags
    from ..recommend.radio import radio

    with open_library(readonly=True) as lib, clear_errors():
        seeds = list(seeds or [])
        require_mpd_for_music_dir(mpd_music_dir, mpd is not None or mpd_current)
        if mpd_current:
            from ..mpd import current_path

            seeds.append(str(current_path(mpd, mpd_music_dir)))
        keep = autotags.tagged(lib.catalog, genre=genre, mood=mood)  # None: no tag asked for
        n = default_length(lib, n, 30)
        matches = within(keep, n, len(lib.searcher()), lambda ask: radio(lib.searcher(), seeds, avoid or (), n=ask, seed=seed,
                                                    artist_window=artist_window))
        if len(matches) < n:
            console.print(f"[yellow]only {len(matches)} tracks qualify[/] (asked for {n}): the others are seeds, "
                          f"close to an avoided track, far from the seeds, or would break the artist window"
                          + ("" if keep is None else f", or lack the tags asked for ({len(keep)} tracks have them)"))
        rows = with_predicted(lib, shapes.radio_rows(matches)) if as_json else shapes.radio_rows(matches)
        show_tracks(f"Radio from {len(seeds)} seed{'s' if len(seeds) > 1 else ''}",
                    rows, as_json, m3u8, absolute, [m.track for m in matches])
        if mpd is not None or mpd_current:
            queue_in_mpd([m.track for m in matches], mpd, mpd_music_dir)
        if playlist is not None:
            to_playlist(lib, [m.track for m in matches], playlist)


def with_predicted(lib, rows: list[dict]) -> list[dict]:
    """--json rows with each track's predicted genre and mood (`songspace tags`), apart from its
    own genre tag."""
    from .. import autotags

    return shapes.with_predicted(rows, autotags.stored_for(lib.catalog, [r["id"] for r in rows]))


def within(keep: set[int] | None, n: int, size: int, make) -> list:
    """The first `n` of the list `make(ask)` gives whose tracks are in `keep` (None: any), asking
    for longer lists (up to the library's `size`) until enough qualify. Keeps the recommender's
    order, so a tag filter narrows a radio without a recommender knowing about tags."""
    if keep is None:
        return make(n)
    ask = min(n, size)
    while True:
        found = make(ask)
        chosen = [m for m in found if m.track.id in keep][:n]
        if len(chosen) >= n or len(found) < ask or ask >= size:  # enough, or no more to give
            return chosen
        ask = min(ask * 4, size)


@app.command("path")
def path_command(
    a: Annotated[str, typer.Argument(metavar="A", help="Where to start: a catalog id, a path in the library, or part of 'artist - title'.")],
    b: Annotated[str, typer.Argument(metavar="B", help="Where to arrive, as A.")],
    n: Annotated[Optional[int], typer.Option("-n", help="How many tracks at most, A and B included (default 12, or as many as a smaller library holds).")] = None,
    as_json: JsonOption = False,
    m3u8: M3u8Option = None,
    absolute: AbsoluteOption = False,
    mpd: MpdOption = None,
    mpd_music_dir: MpdMusicDirOption = None,
    playlist: ToPlaylistOption = None,
):
    """A journey from A to B in small steps, each track closer to B than the one before."""
    from ..recommend.path import journey

    with open_library(readonly=True) as lib, clear_errors():
        require_mpd_for_music_dir(mpd_music_dir, mpd is not None)
        n = default_length(lib, n, 12)
        trip = journey(lib.searcher(), a, b, n=n)
        first, last = trip.steps[0].track, trip.steps[-1].track
        console.print(f"largest step {trip.largest_step:.3f}, straight A→B {trip.direct:.3f} "
                      f"(cosine distance), {len(trip.steps)} tracks")
        if len(trip.steps) < n:
            console.print(f"[yellow]only {len(trip.steps)} tracks[/] (asked for {n}): no more tracks lie "
                          f"between A and B, each closer to B than the one before")
        rows = with_predicted(lib, shapes.path_rows(trip)) if as_json else shapes.path_rows(trip)
        show_tracks(f"{first.label} → {last.label}: largest step {trip.largest_step:.3f}, straight {trip.direct:.3f}",
                    rows, as_json, m3u8, absolute, trip.tracks, columns=("step", "to_b"))
        if mpd is not None:
            queue_in_mpd(trip.tracks, mpd, mpd_music_dir)
        if playlist is not None:
            to_playlist(lib, trip.tracks, playlist)


# -- from the segments: duplicates, identify, explain ------------------------------------------


@app.command()
def duplicates(
    threshold: Annotated[Optional[float], typer.Option(help="Mean cosine of the aligned segments a pair needs, 0-1 (default: measured on real music).")] = None,
    as_json: PlainJsonOption = False,
):
    """Files that are the same recording: another codec or bitrate, trimmed, quieter, or an
    excerpt of a longer file; with which part of each matches."""
    from ..recommend.duplicates import DEFAULT_THRESHOLD, duplicate_groups, find_duplicates

    with open_library(readonly=True) as lib, clear_errors():
        searcher = lib.searcher()
        pairs = find_duplicates(searcher, threshold=DEFAULT_THRESHOLD if threshold is None else threshold)
        tracks = {t.id: t for t in searcher.tracks(sorted({i for p in pairs for i in (p.a, p.b)}))}
    answer = shapes.duplicates_answer(pairs, duplicate_groups(pairs), tracks)
    if as_json:
        print_json(answer)
        return
    table = Table(title=f"{len(pairs)} duplicate pairs in {len(answer['groups'])} groups")
    for col in ("group", "similarity", "coverage", "A", "A part", "B", "B part"):
        table.add_column(col, overflow="fold")
    for p, row in zip(pairs, answer["pairs"]):
        table.add_row(str(row["group"]), f"{p.similarity:.3f}", f"{p.coverage:.2f}",
                      f"{p.a}: {tracks[p.a].label}", span_text(p.a_span), f"{p.b}: {tracks[p.b].label}", span_text(p.b_span))
    out.print(table)


@app.command()
def identify(
    file: Annotated[Path, typer.Argument(help="An audio excerpt (at least one segment, ~3 s).")],
    k: Annotated[int, typer.Option("-k", help="How many candidate tracks.")] = 5,
    as_json: PlainJsonOption = False,
):
    """Which library track an excerpt comes from, and where in it it starts."""
    from ..recommend.identify import identify as run_identify

    with open_library(readonly=True) as lib, clear_errors():
        found = run_identify(lib.searcher(), file, k=k)
    if as_json:
        print_json(shapes.identify_rows(found))
        return
    best = found[0]
    out.print(f"{escape(str(file))} matches {escape(repr(best.track.label))} from {clock(best.offset)} "
              f"(confidence {best.confidence:.3f})")
    table = Table(title="Candidates")
    for col in ("#", "confidence", "from", "id", "track", "path"):
        table.add_column(col, overflow="fold")
    for i, m in enumerate(found, 1):
        table.add_row(str(i), f"{m.confidence:.3f}", clock(m.offset), str(m.track.id), m.track.label, m.track.path)
    out.print(table)


@app.command()
def explain(
    a: Annotated[str, typer.Argument(help="Track A: a catalog id, a path in the library, or part of 'artist - title'.")],
    b: Annotated[str, typer.Argument(help="Track B, named the same ways.")],
    top: Annotated[int, typer.Option("--top", help="How many segment pairs.")] = 5,
    as_json: PlainJsonOption = False,
):
    """The moments of A and B that sound most alike: time ranges in each, with their similarity."""
    from ..recommend.explain import explain as run_explain

    with open_library(readonly=True) as lib, clear_errors():
        searcher = lib.searcher()
        track_a, track_b = searcher.resolve_track(a), searcher.resolve_track(b)
        found = run_explain(searcher, track_a.id, track_b.id, top=top)
    if as_json:
        print_json({"a": shapes.track_row(track_a), "b": shapes.track_row(track_b), "pairs": shapes.explain_pairs(found)})
        return
    table = Table(title=f"Why {track_a.label} sounds like {track_b.label}")
    for col in ("#", "similarity", f"A ({track_a.id})", f"B ({track_b.id})"):
        table.add_column(col, overflow="fold")
    for i, m in enumerate(found, 1):
        table.add_row(str(i), f"{m.similarity:.3f}", span_text(m.a_span), span_text(m.b_span))
    out.print(table)
