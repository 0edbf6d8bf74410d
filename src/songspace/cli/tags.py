"""Predicted tags: `songspace tags` (a track's, or the whole library's) from the model's tags head."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .. import autotags, shapes
from .. import method as methods
from ..errors import QueryError
from .base import app, clear_errors, console, open_library, out, print_json
from .output import PlainJsonOption


@app.command()
def tags(
    track: Annotated[Optional[str], typer.Argument(metavar="TRACK", help="A catalog id, a path in the library, or part of 'artist - title' (default: every track).")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Predict the library's tags again first (`index` does it after every run).")] = False,
    as_json: PlainJsonOption = False,
):
    """Genre and mood tags predicted from the sound (no labels needed): the probability of every
    tag for TRACK, or each track's most distinctive genre and mood (the tag whose probability is
    furthest above its average). Kept apart from the files' own
    genre tags; a model without a tags head (mfcc, a fitted model) has none."""
    with open_library() as lib, clear_errors():
        catalog = lib.catalog
        method = methods.current(catalog)
        head = autotags.head_of(method)
        if head is None:
            raise QueryError(autotags.unavailable(method))
        if track is not None:
            searcher = lib.searcher()
            found = searcher.resolve_track(track)
            vector = searcher.vector(found)
            probs = head.probabilities(vector[None, :])
            above = autotags.lift(head, probs)[0]
            ranked = {g: sorted(((head.names[i], float(probs[0, i]), float(above[i])) for i in head.group(g)),
                                key=lambda t: -t[2]) for g in head.group_names()}
            answer = shapes.track_tags(found, method.id, ranked)
            if as_json:
                print_json(answer)
                return
            table = Table(title=f"Tags of {escape(found.label)}",
                          caption=f"predicted from the sound by {method.id}; ×: the probability over the tag's average")
            for group in ranked:
                table.add_column(group)
                table.add_column("p", justify="right")
                table.add_column("×", justify="right")
            for row in range(max(len(v) for v in ranked.values())):
                cells = []
                for found_tags in ranked.values():
                    tag, p, x = found_tags[row] if row < len(found_tags) else ("", None, None)
                    cells += [tag, "" if p is None else f"{p:.3f}", "" if x is None else f"{x:.1f}"]
                table.add_row(*cells)
            out.print(table)
            return
        stored = autotags.stored(catalog)
        if refresh or not any(stored.values()):
            console.print(escape(autotags.refresh(catalog, full=True).note))
            stored = autotags.stored(catalog)
        rows = shapes.tagged_rows(catalog.ok_tracks(), stored)
        if as_json:
            print_json({"model_id": method.id, "counts": autotags.summary(catalog), "items": rows})
            return
        table = Table(title=f"Predicted tags ({method.id}); the files' own genre in 'genre tag'")
        for col in ("id", "track", "genre", "p", "mood", "p", "genre tag"):
            table.add_column(col, overflow="fold")
        for row in rows:
            name = f"{row['artist'] or '?'} - {row['title']}" if row["artist"] or row["title"] else row["path"]
            cells = []
            for group in ("genre", "mood"):
                got = row["predicted"].get(group)
                cells += [got["tag"], f"{got['probability']:.2f}"] if got else ["", ""]
            table.add_row(str(row["id"]), escape(name), *cells, escape(row["genre"] or ""))
        out.print(table)
