"""songspace command line: index a music folder, then ask for tracks that sound alike."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.markup import escape
from rich.table import Table

from .errors import SongspaceError
from .library import LIBRARY_ENV, Library, default_library_dir

app = typer.Typer(
    help="Music similarity from the sound itself. Index a folder, then ask for tracks that sound alike.\n\n"
    "  songspace index ~/Music\n\n  songspace similar 'artist - title'\n\n  songspace status",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
console = Console(stderr=True)
out = Console()
state: dict = {}


@app.callback()
def main(
    library: Annotated[Optional[Path], typer.Option(
        "--library", "-L", envvar=LIBRARY_ENV,
        help=f"Library directory (catalog, vector index, fitted models). Default: {default_library_dir()}")] = None,
):
    state["library"] = library


@contextmanager
def clear_errors():
    """Expected failures (bad query, missing folder, undecodable file, bad parameter) become one
    red line and exit code 2, not a traceback."""
    try:
        yield
    except SongspaceError as e:
        console.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(2)


def open_library() -> Library:
    return Library.open(state.get("library"))


# ---------------------------------------------------------------------------------------------
# Lists of tracks: a table, --json, or --m3u8 FILE (every command that returns tracks)
# ---------------------------------------------------------------------------------------------

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (one object per track).")]
M3u8Option = Annotated[Optional[Path], typer.Option("--m3u8", help="Also write the list as an M3U8 playlist to this file.")]
AbsoluteOption = Annotated[bool, typer.Option("--absolute", help="Absolute paths in the M3U8 (default: relative to the playlist file).")]


def show_tracks(title: str, rows: list[dict], as_json: bool, m3u8: Path | None, absolute: bool,
                tracks: list | None = None, columns: tuple[str, ...] = ("score",)) -> None:
    """Print `rows` (from playlists.track_row) as a table or JSON; write `tracks` as M3U8."""
    from .playlists import write_m3u8

    if m3u8 is not None:
        write_m3u8(tracks, m3u8, absolute=absolute)
        console.print(f"wrote {m3u8} ({len(tracks)} tracks)")
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=title)
    for col in ("#", *columns, "id", "track", "path"):
        table.add_column(col, overflow="fold")
    for i, row in enumerate(rows, 1):
        cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        name = f"{row['artist'] or '?'} - {row['title']}" if row["artist"] or row["title"] else Path(row["path"]).name
        table.add_row(str(i), *cells, str(row["id"]), name, row["path"])
    out.print(table)


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------


class ProgressReport:
    """Turns Library's report(phase, done, total, note) calls into rich progress bars with ETA;
    when stderr is not a terminal (a log file), into a plain line every 30 seconds instead."""

    LABELS = {"fit-corpus": "Reading music for training", "fit": "Training", "analyse": "Analysing",
              "baselines": "Baselines"}

    def __init__(self, progress: Progress):
        self.progress, self.tasks = progress, {}
        self.last_line = 0.0

    def __call__(self, phase: str, done: float, total: float, note: str) -> None:
        if phase not in self.LABELS:
            return
        if not console.is_terminal and time.monotonic() - self.last_line > 30:
            self.last_line = time.monotonic()
            console.print(f"{time.strftime('%H:%M:%S')} {self.LABELS[phase]}: {100 * done / max(total, 1e-9):.0f}% {note}")
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(self.LABELS[phase], total=total, note="")
        self.progress.update(self.tasks[phase], completed=done, total=total, note=note)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[note]}", style="dim"),
        console=console, transient=False,
    )


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


@app.command()
def index(
    folders: Annotated[list[Path], typer.Argument(help="Music folders (or files) to index.")],
    fit: Annotated[bool, typer.Option("--fit", help="First adapt the model to this music (no labels needed), then embed with it.")] = False,
    minutes: Annotated[float, typer.Option(help="Time budget for --fit, in minutes.")] = 10.0,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: up to 2).")] = None,
):
    """Add music to the library. Incremental: only new or changed files are analysed, removed
    files are dropped, and an interrupted run resumes where it stopped. Exit code 1 if any
    file could not be analysed (see `songspace status`)."""
    with open_library() as lib, progress_bar() as progress, clear_errors():
        try:
            report = lib.index(folders, fit=fit, fit_minutes=minutes, workers=workers, report=ProgressReport(progress))
        except KeyboardInterrupt:  # outside the analysis stage (which stops cleanly by itself)
            console.print("[yellow]interrupted[/]; run the same command again to resume")
            raise typer.Exit(130)
    summary = (f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
               f"removed {report.removed}, failed {len(report.failed)}")
    if report.fitted_model:
        console.print(f"fitted model: {report.fitted_model}")
    for path, reason in report.failed:
        console.print(f"[yellow]failed:[/] {path}: {reason}")
    if report.interrupted:
        console.print(f"[yellow]interrupted[/] ({summary}); run the same command again to resume")
        raise typer.Exit(130)
    console.print(summary)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def similar(
    query: Annotated[str, typer.Argument(help="A catalog id, a path in the library, part of 'artist - title', or an audio file outside the library.")],
    k: Annotated[int, typer.Option("-k", help="How many tracks.")] = 10,
    as_json: JsonOption = False,
    m3u8: M3u8Option = None,
    absolute: AbsoluteOption = False,
):
    """Tracks that sound most like QUERY, best first."""
    from .playlists import track_row

    with open_library() as lib, clear_errors():
        searcher = lib.searcher()
        target = searcher.resolve(query)
        matches = searcher.similar(target, k)
        name = target.label if hasattr(target, "label") else str(target)
        show_tracks(f"Sounds like: {name}", [track_row(m.track, m.score) for m in matches], as_json, m3u8, absolute,
                    [m.track for m in matches])


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """Counts, the current model, and every failure with its reason."""
    with open_library() as lib:
        s = lib.status()
    if as_json:
        out.print_json(json.dumps(s))
        return
    out.print(f"library:    {s['library']}")
    out.print(f"model:      {s['model']['id']}  ({s['model']['path']})")
    out.print(f"tracks:     {s['tracks']}  (ok {s['ok']}, failed {s['failed']}, searchable {s['searchable']})")
    for model_id, n in s["embeddings_by_model"].items():
        stale = "" if model_id == s["model"]["id"] else "  (another model: re-embedded by the next `index`)"
        out.print(f"embedded:   {n} by {model_id}{stale}")
    for path, reason in s["failures"]:
        out.print(f"[yellow]failed:[/] {path}: {reason}")


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="OUT.npz (ids, paths, vectors) or OUT.parquet (plus tags).")],
):
    """Write one row per searchable track: absolute path and L2-normalised float32 vector."""
    with open_library() as lib, clear_errors():
        lib.export(path)
    console.print(f"wrote {path}")


@app.command()
def train(
    folders: Annotated[list[Path], typer.Argument(help="Folders of music to learn from (no labels needed).")],
    out_path: Annotated[Path, typer.Option("--out", help="Model file to write (.safetensors, with a .json config beside it).")],
    objective: Annotated[str, typer.Option(help="contrastive (two excerpts of a track pulled together) or autoencoder (rebuild patches through a bottleneck).")] = "contrastive",
    minutes: Annotated[Optional[float], typer.Option(help="Training time budget in minutes (reading the music comes first and is not counted).")] = 5.0,
    steps: Annotated[Optional[int], typer.Option(help="Train for exactly this many steps instead (deterministic under --seed).")] = None,
    init: Annotated[Optional[Path], typer.Option(help="Start from this model instead of random weights ('default' for the shipped one).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Tracks per step.")] = 64,
    segments_per_track: Annotated[int, typer.Option(help="Excerpts kept per track to draw training pairs from.")] = 8,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    cosine: Annotated[bool, typer.Option("--cosine/--constant", help="Anneal the learning rate to 0 over the budget, or keep it constant.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes for decoding.")] = None,
):
    """Train the encoder self-supervised on folders of music and save it."""
    from .scan import scan
    from .models.files import DEFAULT_MODEL
    from .training import TrainConfig
    from .training import train as run_training

    if steps is not None:
        minutes = None
    init_model = DEFAULT_MODEL if str(init) == "default" else init
    with clear_errors(), progress_bar() as progress:
        cfg = TrainConfig(objective=objective, minutes=minutes, steps=steps, seed=seed, batch_size=batch_size,
                          segments_per_track=segments_per_track, lr=lr, cosine_decay=cosine)
        files, _ = scan(folders)
        model, corpus = run_training(files, out_path, cfg, init=init_model, workers=workers,
                                     report=ProgressReport(progress))
    for path, reason in corpus.failures:
        console.print(f"[yellow]skipped:[/] {path}: {reason}")
    t = model.info["training"]
    console.print(f"trained {model.model_id}: {t['steps']} steps in {t['seconds']} s on {t['tracks']} tracks "
                  f"({t['device']}), loss {t['final_loss']:.3f} → {model.path}")


@app.command()
def evaluate(
    labels: Annotated[Path, typer.Argument(help="labels.csv (a 'path' column relative to it, then label columns such as album, artist, genre), or a folder whose subfolders are the labels.")],
    label: Annotated[Optional[list[str]], typer.Option("--label", help="Label column to score (repeatable). Default: album, artist, genre where present.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: up to 2).")] = None,
):
    """Leave-one-out retrieval quality of the library's model on labelled music, beside the
    baselines computed in the same run: `mfcc` (hand-crafted statistics) and `random` (the
    untrained encoder). Indexes what is not indexed yet. For each track every other track is
    ranked by cosine similarity; P@k is the share of the top k with the same label, mAP the
    mean average precision. Empty or 'unknown…' labels are left out of their column."""
    from .evaluate import evaluate as run_evaluation

    with open_library() as lib, progress_bar() as progress, clear_errors():
        results = run_evaluation(lib, labels, label, workers=workers, report=ProgressReport(progress))
    if as_json:
        out.print_json(json.dumps(results))
        return
    table = Table(title=f"Leave-one-out retrieval, {results['tracks']} tracks, model {results['model']}")
    for col in ("label", "method", "P@1", "P@5", "P@10", "mAP", "queries"):
        table.add_column(col, justify="left" if col in ("label", "method") else "right")
    for column, by_method in results["labels"].items():
        for method, sc in by_method.items():
            table.add_row(column, method, *(f"{sc[k]:.3f}" for k in ("p@1", "p@5", "p@10", "map")), str(sc["queries"]))
    out.print(table)


@app.command()
def fit(
    minutes: Annotated[float, typer.Option(help="Time budget for training, in minutes.")] = 10.0,
    objective: Annotated[str, typer.Option(help="contrastive or autoencoder.")] = "contrastive",
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 3e-4,
    cosine: Annotated[bool, typer.Option("--cosine/--constant", help="Anneal the learning rate to 0 over the budget, or keep it constant.")] = True,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes for decoding.")] = None,
):
    """Adapt the current model to the music already in the library (no labels), starting from
    its weights, and make the result current. Run `songspace index` afterwards to re-embed."""
    with open_library() as lib, progress_bar() as progress, clear_errors():
        path = lib.fit(minutes=minutes, objective=objective, lr=lr, cosine=cosine, seed=seed, workers=workers,
                       report=ProgressReport(progress))
        console.print(f"fitted model: {path} ({lib.model_id}); run `songspace index FOLDER` to re-embed")


@app.command()
def use(
    model: Annotated[str, typer.Argument(help="'default' (the shipped model), 'mfcc' (hand-crafted statistics), or a model file.")],
):
    """Choose how the library embeds music. Tracks are re-embedded by the next `index`."""
    with open_library() as lib, clear_errors():
        lib.use_model(model)
        console.print(f"now using {lib.model_id}; run `songspace index FOLDER` to re-embed")


@app.command()
def demo_library(
    folder: Annotated[Path, typer.Argument(help="Where to write the demo tracks.")],
    per_style: Annotated[int, typer.Option(help="Tracks per style.")] = 6,
):
    """Synthesize a small demo library (a few distinct styles, mixed codecs) to try songspace on."""
    from .synth import make_demo_library

    paths = make_demo_library(folder, n_per_style=per_style)
    console.print(f"wrote {len(paths)} tracks to {folder}")
