"""Tags you never typed, and organising the library: classify, clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .. import shapes
from ..errors import InputError
from .base import app, clear_errors, open_library, out, print_json
from .companion import to_playlist
from .output import AbsoluteOption, ProgressReport, progress_bar, show_tracks


@app.command("classify")
def classify_command(
    column: Annotated[str, typer.Option("--column", help="The label to learn: a tag (genre, artist, album) or a column of --labels.")],
    labels: Annotated[Optional[Path], typer.Option("--labels", help="CSV with a 'path' column (relative to the CSV, or absolute) and the label column; default: the tracks' own tags.")] = None,
    no_baseline: Annotated[bool, typer.Option("--no-baseline", help="Skip the MFCC baseline (faster: it reads every labelled file again).")] = False,
    workers: Annotated[Optional[int], typer.Option(min=0, help="Worker processes for the baseline (default: one per CPU, up to 16).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, every prediction included.")] = False,
):
    """Learn a label from the tracks that have it and predict it, with a confidence, for every
    other track. Predictions are stored in the library's catalog, apart from the tracks' own
    tags; audio files are never changed. Cross-validated accuracy is shown beside the same
    model on MFCC statistics and beside always guessing the commonest label."""
    from dataclasses import asdict

    from ..recommend.classify import classify, save_predictions

    with open_library() as lib, progress_bar() as progress, clear_errors():
        searcher = lib.searcher()
        result = classify(searcher, column, labels, baseline=not no_baseline, workers=workers,
                          report=ProgressReport(progress))
        save_predictions(lib.catalog, result)
        best = sorted(result.predictions, key=lambda p: -p.confidence)
        tracks = searcher.tracks([p.track_id for p in best])
    rows = [shapes.prediction_row(t, p.label, p.confidence) for t, p in zip(tracks, best)]
    if as_json:
        print_json({**asdict(result), "predictions": rows})
        return
    source = "tags" if labels is None else f"{labels} ({result.csv_matched} of {result.csv_rows} rows in the library)"
    out.print(f"learned {column!r} from {result.labelled} tracks' {source}: {len(result.classes)} labels, "
              f"{result.folds}-fold cross-validated accuracy")
    out.print(f"  songspace  {result.accuracy:.3f}  ({result.model_id})")
    if result.baseline is not None:
        out.print(f"  mfcc       {result.baseline:.3f}  ({result.baseline_tracks} tracks)")
    out.print(f"  majority   {result.majority:.3f}  (always {result.majority_label!r})")
    if result.dropped:
        out.print(f"left out (fewer than 2 tracks each): {', '.join(map(repr, result.dropped))}")
    out.print(f"predicted {column!r} for {len(rows)} tracks (stored in the catalog; files untouched)")
    if rows:
        show_tracks(f"Predicted {column} (most confident first; all with --json)", rows[:10], False, None, False,
                    columns=("label", "confidence"))


@app.command("clusters")
def clusters_command(
    out_dir: Annotated[Optional[Path], typer.Argument(help="Folder for the M3U8 playlists (made if missing); optional with --to-playlist.")] = None,
    k: Annotated[Optional[int], typer.Option("-k", help="How many playlists (default: about sqrt(tracks/2)).")] = None,
    auto: Annotated[bool, typer.Option("--auto", help="Find the number of groups from the music (HDBSCAN); tracks in no group go to 'unclustered'.")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (same seed, same playlists).")] = 0,
    absolute: AbsoluteOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: every playlist with its tracks.")] = False,
    playlist: Annotated[Optional[str], typer.Option(
        "--to-playlist", metavar="NAME",
        help="Also save each group as playlist 'NAME: GROUP' where its tracks live (the Subsonic server they were "
             "indexed from, or this library's own playlists), replacing those of the same names.")] = None,
):
    """Group the library into playlists by sound, each named from its tracks' dominant tags,
    written as M3U8 files into OUT_DIR (and/or saved with --to-playlist)."""
    from ..recommend.clusters import cluster_library, write_playlists

    with open_library(readonly=True) as lib, clear_errors():
        if out_dir is None and playlist is None:
            raise InputError("give OUT_DIR for the M3U8 files, or --to-playlist NAME, or both")
        searcher = lib.searcher()
        groups = cluster_library(searcher, k, auto, seed)
        files = write_playlists(searcher, groups, out_dir, absolute) if out_dir is not None else [None] * len(groups)
        found = [(g, f, searcher.tracks(g.track_ids)) for g, f in zip(groups, files)]
        if playlist is not None:
            for g, _, tracks in found:
                to_playlist(lib, tracks, f"{playlist}: {g.name}")
    if as_json:
        print_json([shapes.playlist_answer(g.name, str(f) if f else None, g.noise, tracks) for g, f, tracks in found])
        return
    table = Table(title=f"{len(groups)} playlists{f' in {out_dir}' if out_dir else ''}")
    for col in ("playlist", "tracks", "file"):
        table.add_column(col, overflow="fold")
    for g, f, tracks in found:
        table.add_row(g.name, str(len(tracks)), f.name if f else "")
    out.print(table)
