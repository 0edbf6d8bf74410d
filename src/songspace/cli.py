"""songspace command line: index a music folder, then ask for tracks that sound alike."""

from __future__ import annotations

import json
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand
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

from .errors import InputError, SongspaceError
from .library import FIT_ANCHOR_WEIGHT, LIBRARY_ENV, Library, default_library_dir

app = typer.Typer(
    help="Music similarity from the sound itself. Index a folder, then ask for tracks that sound alike.\n\n"
    "  songspace index ~/Music\n\n  songspace similar 'artist - title'\n\n"
    "  songspace radio 12 40 -n 30 --m3u8 radio.m3u8\n\n  songspace path 12 40\n\n"
    "  songspace serve   (the web page: http://127.0.0.1:8765/)\n\n  songspace status",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
console = Console(stderr=True)
out = Console()
state: dict = {}


@app.callback()
def main(
    library: Annotated[Optional[str], typer.Option(
        "--library", "-L", envvar=LIBRARY_ENV,
        help=f"Library directory (catalog, vector index, fitted models). Default: {default_library_dir()}")] = None,
):
    # A str, not a Path: Path("") is the current folder, and an empty --library (an unset
    # variable in a script) must not turn whatever folder we are in into a library.
    if library is not None and not library.strip():
        raise typer.BadParameter("give a folder, not an empty string", param_hint="--library")
    state["library"] = Path(library) if library is not None else None


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
    with clear_errors():  # a catalog that is not a database: one line naming the file, exit 2
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
              "baselines": "Baselines", "embed": "Embedding"}

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
# Ray: `--ray [ADDRESS]`
# ---------------------------------------------------------------------------------------------


def looks_like_ray_address(text: str) -> bool:
    """"auto", "local", ray://HOST:PORT or HOST:PORT, and not a file or folder here (nor a
    bucket: `embed --ray s3://bucket/music/` embeds the bucket on a local cluster)."""
    if os.path.exists(text):
        return False
    return text in ("auto", "local") or text.startswith("ray://") or re.fullmatch(r"[\w.\-]+:\d+|\[[0-9a-fA-F:]+\]:\d+", text) is not None


class RayAddressCommand(TyperCommand):
    """A command whose `--ray` may stand alone (a local cluster) or take an address. Typer has no
    option with an optional value, so a bare `--ray` becomes `--ray local` before parsing; what
    follows `--ray` is its address only if it looks like one, so `index --ray ~/Music` works."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--":
                break
            if arg == "--ray" and (i + 1 == len(args) or not looks_like_ray_address(args[i + 1])):
                args.insert(i + 1, "local")
                break
        return super().parse_args(ctx, args)


RayOption = Annotated[Optional[str], typer.Option(
    "--ray", metavar="[ADDRESS]",
    help="Run on a Ray cluster (needs pip install 'songspace[ray]'). Alone: start one on this machine for the "
         "run; 'auto': the running cluster $RAY_ADDRESS names; or HOST:PORT / ray://HOST:10001.")]


def ray_config(address: str | None, ship_below_mb: float | None = None, always_ship: bool = False):
    if address is None:
        if ship_below_mb is not None or always_ship:
            raise InputError(f"{'--ship-below' if ship_below_mb is not None else '--always-ship'} works only with --ray")
        return None
    from .distributed import DEFAULT_SHIP_BELOW, MiB, RayConfig

    ship_below = DEFAULT_SHIP_BELOW if ship_below_mb is None else int(ship_below_mb * MiB)
    return RayConfig(address=address, ship_below=ship_below, always_ship=always_ship)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


@app.command(cls=RayAddressCommand)
def index(
    folders: Annotated[list[Path], typer.Argument(help="Music folders (or files) to index.")],
    fit: Annotated[bool, typer.Option("--fit", help="First adapt the model to this music (no labels needed), then embed with it.")] = False,
    minutes: Annotated[float, typer.Option(help="Time budget for --fit, in minutes.")] = 10.0,
    workers: Annotated[Optional[int], typer.Option(min=0, help="Worker processes (default: one per CPU, up to 16; 0 analyses in this process). With --ray: workers across the cluster (default: one per CPU).")] = None,
    ray: RayOption = None,
    ship_below: Annotated[Optional[float], typer.Option("--ship-below", metavar="MB", help="With --ray: files a worker cannot read at their path are sent to it, up to this size in MiB (default 256); larger ones are reported and tried again next run.")] = None,
    always_ship: Annotated[bool, typer.Option("--always-ship", help="With --ray: send every file up to --ship-below, even where workers could read the path (nodes where that path holds other files).")] = False,
    device: Annotated[str, typer.Option(metavar="DEVICE", help="Where the CNN runs: auto (a CUDA GPU if torch sees one, else the CPU workers), cpu, cuda or cuda:N. With a GPU the workers only decode and the GPU embeds several files per batch.")] = "auto",
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="A folder that had tracks and now holds no audio: remove its tracks (default: keep them, as an unmounted drive looks the same).")] = False,
):
    """Add music to the library. Incremental: only new or changed files are analysed, removed
    files are dropped, and an interrupted run resumes where it stopped. Exit code 1 if any
    file could not be analysed (see `songspace status`). With --ray the files are analysed
    across a Ray cluster, and this process still writes every result to the library as it
    arrives. Workers read each file at its path when every node mounts the music at the same
    path (NFS, SMB); otherwise this process sends them its bytes."""
    with clear_errors():
        config = ray_config(ray, ship_below, always_ship)
    with open_library() as lib, progress_bar() as progress, clear_errors():
        try:
            report = lib.index(folders, fit=fit, fit_minutes=minutes, workers=workers, report=ProgressReport(progress),
                               ray=config, device=device, allow_empty=allow_empty)
        except KeyboardInterrupt:  # outside the analysis stage (which stops cleanly by itself)
            console.print("[yellow]interrupted[/]; run the same command again to resume")
            raise typer.Exit(130)
        model_id = lib.model_id
    summary = (f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
               f"removed {report.removed}, failed {len(report.failed)}")
    if report.fit is not None:
        print_fit(report.fit, model_id, reembedded=False)
    for path, reason in report.failed:
        console.print(f"[yellow]failed:[/] {path}: {reason}")
    for path, reason in report.set_aside:  # silent or too short: recorded, not searched, not a failure
        console.print(f"set aside: {escape(path)}: {escape(reason)}")
    for folder, n in report.kept_empty:
        console.print(f"[yellow]kept:[/] {escape(folder)} holds no audio now (not mounted?); its {n} tracks stay. "
                      "If the music is really gone, run again with --allow-empty.")
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
    from .playlists import track_row
    from .recommend.similar import Manners
    from .recommend.similar import similar as find_similar

    manners = Manners(other_artists, other_albums, min_duration, max_duration, collapse_copies=not keep_copies)
    with open_library() as lib, clear_errors():
        searcher = lib.searcher()
        target = searcher.resolve(query)
        found = find_similar(searcher, target, k, manners)
        name = target.label if hasattr(target, "label") else str(target)
        rows = [track_row(m.track, m.score, copy_of_query=m.copy_of_query, copies=list(m.copies)) for m in found]
        show_tracks(f"Sounds like: {name}", rows, as_json, m3u8, absolute, [m.track for m in found])


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
    if s["searched_model"] != s["model"]["id"]:
        out.print(f"searching:  {s['searched_model']} until the model above has re-embedded the library")
    out.print(f"folders:    {', '.join(s['folders']) or '(none yet)'}")
    out.print(f"tracks:     {s['tracks']}  (ok {s['ok']}, failed {s['failed']}, searchable {s['searchable']})")
    for model_id, n in s["embeddings_by_model"].items():
        stale = "" if model_id == s["model"]["id"] else "  (another model: re-embedded by the next `index`)"
        out.print(f"embedded:   {n} by {model_id}{stale}")
    for path, reason in s["failures"]:
        out.print(f"[yellow]failed:[/] {path}: {reason}")
    if s["set_aside"]:  # silent or too short audio: kept out of search and the map
        out.print(f"set aside:  silent {s['silent']}, too short {s['too_short']} (not searched)")
    for path, _, reason in s["set_aside"]:
        out.print(f"set aside:  {escape(path)}: {escape(reason)}")


@app.command()
def export(
    # str, not Path: a Path would make s3://bucket/ds the local folder s3:/bucket/ds.
    path: Annotated[str, typer.Argument(help="OUT.npz (ids, paths, vectors), OUT.parquet (plus tags), or with --parquet-dataset a new or empty folder or a bucket URI.")],
    parquet_dataset: Annotated[bool, typer.Option("--parquet-dataset", help="Write a folder of Parquet files (path, tags, duration, content hash, model id, vector) that Ray Data, DuckDB and Spark read directly; streamed, for libraries of any size.")] = False,
    rows_per_file: Annotated[Optional[int], typer.Option(min=1, help="With --parquet-dataset: rows per Parquet file (default 100000, ~70 MB).")] = None,
):
    """Write one row per searchable track: absolute path and L2-normalised float32 vector."""
    with open_library() as lib, clear_errors():
        if parquet_dataset:
            summary = lib.export_dataset(path, rows_per_file)
            console.print(f"wrote {summary.rows} tracks in {summary.files} Parquet files to {path}")
            return
        if "://" in path:
            raise InputError(f"{path}: only a --parquet-dataset goes to a bucket; .npz and .parquet are local files")
        if rows_per_file is not None:
            raise InputError("--rows-per-file splits a --parquet-dataset; one .npz or .parquet file has every row")
        lib.export(path)
    console.print(f"wrote {path}")


@app.command(cls=RayAddressCommand)
def embed(
    sources: Annotated[list[str], typer.Argument(metavar="SOURCE...", help="Folders, files or glob patterns ('~/Music/**/*.flac'); with --ray also bucket URIs (s3://bucket/prefix/, gs://..., file:///...).")],
    out_dir: Annotated[str, typer.Option("--out", help="A new or empty folder for the Parquet dataset (with --ray also a bucket URI).")],
    ray: RayOption = None,
    model: Annotated[str, typer.Option(help="'default' (the shipped model) or a model file.")] = "default",
    workers: Annotated[Optional[int], typer.Option(min=0, help="Worker processes (default: one per CPU, up to 16; 0: in this process). With --ray: workers across the cluster (default: one per CPU).")] = None,
    rows_per_file: Annotated[Optional[int], typer.Option(min=1, help="Rows per Parquet file (default 100000, ~70 MB; with --ray, at least this many).")] = None,
):
    """Embed audio straight into a Parquet dataset, without a library: one row per file (path,
    tags, duration, content hash, model id, vector; an error column for files that could not
    be analysed), for Ray Data, DuckDB or Spark. The batch job of a service: with --ray it runs
    on Ray Data across a cluster, where every node must see local folders at the same path
    (NFS, SMB) and buckets are read by the workers. Exit code 1 if any file could not be
    analysed."""
    from .dataset import DEFAULT_ROWS_PER_FILE, embed_to_dataset

    with progress_bar() as progress, clear_errors():
        try:
            summary = embed_to_dataset(sources, out_dir, model=model, ray=ray_config(ray), workers=workers,
                                       rows_per_file=rows_per_file or DEFAULT_ROWS_PER_FILE, report=ProgressReport(progress))
        except KeyboardInterrupt:  # 130, not click's "Aborted!" and 1, which means some files failed
            console.print(f"[yellow]interrupted[/]; {escape(out_dir)} holds part of a dataset: delete it before "
                          f"running again")
            raise typer.Exit(130)
    for path, reason in summary.failed:
        console.print(f"[yellow]failed:[/] {escape(path)}: {escape(reason)}")
    console.print(f"wrote {summary.rows} rows ({len(summary.failed)} failed) in {summary.files} Parquet files to {out_dir}")
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def train(
    folders: Annotated[list[Path], typer.Argument(help="Folders of music to learn from (no labels needed).")],
    out_path: Annotated[Path, typer.Option("--out", help="Model file to write (.safetensors, with a .json config beside it).")],
    objective: Annotated[str, typer.Option(help="contrastive (two excerpts of a track pulled together) or autoencoder (rebuild patches through a bottleneck).")] = "contrastive",
    minutes: Annotated[Optional[float], typer.Option(help="Training time budget in minutes (reading the music comes first and is not counted).")] = 5.0,
    steps: Annotated[Optional[int], typer.Option(help="Train for exactly this many steps instead (deterministic under --seed).")] = None,
    init: Annotated[Optional[Path], typer.Option(help="Start from this model instead of random weights ('default' for the shipped one).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Tracks per step.")] = 64,
    segments_per_track: Annotated[int, typer.Option(help="Excerpts kept per track to draw training pairs from.")] = 8,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    cosine: Annotated[bool, typer.Option("--cosine/--constant", help="Anneal the learning rate to 0 over the budget, or keep it constant.")] = False,
    release_weight: Annotated[float, typer.Option(help="Also pull together excerpts of different tracks of one release, with this weight (0: off). Releases come from a MANIFEST.tsv (file, package) in the folder, as scripts/fetch-training-corpus.sh writes.")] = 0.0,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Musical augmentations of each excerpt: EQ tilt, codec-like low-pass, a little of another track.")] = False,
    channels: Annotated[str, typer.Option(help="Channels of the encoder's convolution blocks, comma-separated (a new model only; --init keeps its own).")] = "16,32,64,128",
    workers: Annotated[Optional[int], typer.Option(min=0, help="Worker processes for decoding (0: in this process).")] = None,
):
    """Train the encoder self-supervised on folders of music and save it."""
    from .scan import scan
    from .models.files import DEFAULT_MODEL
    from .training import TrainConfig, read_releases
    from .training import train as run_training

    if steps is not None:
        minutes = None
    init_model = DEFAULT_MODEL if str(init) == "default" else init
    with clear_errors(), progress_bar() as progress:
        try:
            chans = tuple(int(c) for c in channels.split(","))
        except ValueError:
            raise InputError(f"--channels: comma-separated whole numbers such as 16,32,64,128, not {channels!r}") from None
        if out_path.is_dir():
            raise InputError(f"--out {out_path}: is a folder; give a model file such as {out_path / 'model.safetensors'}")
        cfg = TrainConfig(objective=objective, minutes=minutes, steps=steps, seed=seed, batch_size=batch_size,
                          segments_per_track=segments_per_track, lr=lr, cosine_decay=cosine,
                          release_weight=release_weight, augment=augment, channels=chans)
        files, _ = scan(folders)
        model, corpus = run_training(files, out_path, cfg, init=init_model, workers=workers,
                                     report=ProgressReport(progress), releases=read_releases(folders))
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
    workers: Annotated[Optional[int], typer.Option(min=0, help="Worker processes (default: one per CPU, up to 16; 0 analyses in this process).")] = None,
    in_library: Annotated[bool, typer.Option("--in-library", help="Index the labelled music into the library itself (default: a scratch library inside it, so it never shows up in your searches).")] = False,
):
    """Leave-one-out retrieval quality of the library's model on labelled music, beside the
    baselines computed in the same run: `mfcc` (hand-crafted statistics) and `random` (the
    untrained encoder). Indexes what is not indexed yet, into a scratch library inside yours
    unless --in-library. For each track every other track is
    ranked by cosine similarity; P@k is the share of the top k with the same label, mAP the
    mean average precision. Empty or 'unknown…' labels are left out of their column."""
    from .evaluate import evaluate as run_evaluation

    with open_library() as lib, progress_bar() as progress, clear_errors():
        results = run_evaluation(lib, labels, label, workers=workers, report=ProgressReport(progress),
                                 in_library=in_library)
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
    anchor_weight: Annotated[float, typer.Option(min=0.0, help="Pull the encoder toward its starting weights with this weight (L2-SP; 0: off), so fitting adapts the model instead of overwriting it.")] = FIT_ANCHOR_WEIGHT,
    keep_anyway: Annotated[bool, typer.Option("--keep-anyway", help="Use the fitted model even when the check on held-out tracks finds it no better than the current one.")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (of the training and of which tracks are held out).")] = 0,
    workers: Annotated[Optional[int], typer.Option(min=0, help="Worker processes for decoding (0: in this process).")] = None,
):
    """Adapt the current model to the music already in the library (no labels), starting from
    its weights. A fifth of the tracks (seeded) is held out of the fit; the fitted model replaces
    the current one only if it tells those tracks' excerpts apart better (a label-free check),
    and the library is then re-embedded with it. Otherwise the current model stays, and the
    fitted one is left in the library's models/ folder. Until re-embedding is done (or if it
    is interrupted), searches answer from the previous vectors."""
    with open_library() as lib, progress_bar() as progress, clear_errors():
        bars = ProgressReport(progress)
        checking = []

        def report(phase, done, total, note):  # the check reads the held-out tracks: its own bar
            if phase == "fit-check":
                if not checking:
                    checking.append(progress.add_task("Reading held-out tracks", total=total, note=""))
                progress.update(checking[0], completed=done, total=total)
            bars(phase, done, total, note)

        result = lib.fit(minutes=minutes, objective=objective, lr=lr, cosine=cosine, anchor_weight=anchor_weight,
                         seed=seed, keep_anyway=keep_anyway, workers=workers, report=report)
        print_fit(result, lib.model_id, reembedded=True)


def print_fit(result, model_id: str, reembedded: bool) -> None:
    """What a fit did: its check's scores, and which model the library now uses."""
    console.print(f"fit: {result.steps} steps; {escape(result.check.describe())}")
    if result.used:
        why = "it did better on the held-out tracks" if result.check.improved else "--keep-anyway, though it did not do better"
        console.print(f"using the fitted model ({why}): {escape(str(result.model))} ({model_id})"
                      + ("; the library is re-embedded with it" if reembedded else ""))
    else:
        console.print(f"kept the starting model {escape(str(result.model))} ({model_id}): the fit did not do "
                      f"better on the held-out tracks. The fitted model stays at {escape(str(result.fitted))} "
                      "(`songspace use` it to switch anyway)")


@app.command()
def use(
    model: Annotated[str, typer.Argument(help="'default' (the shipped model), 'mfcc' (hand-crafted statistics), or a model file.")],
):
    """Choose how the library embeds music. Tracks are re-embedded by the next `index`; until
    then searches answer from the previous vectors."""
    with open_library() as lib, clear_errors():
        lib.use_model(model)
        console.print(f"now using {lib.model_id}; run `songspace index FOLDER` to re-embed")


@app.command()
def demo_library(
    folder: Annotated[Path, typer.Argument(help="Where to write the demo tracks.")],
    per_style: Annotated[int, typer.Option(min=1, help="Tracks per style.")] = 6,
):
    """Synthesize a small demo library (a few distinct styles, mixed codecs) to try songspace on."""
    from .synth import make_demo_library

    paths = make_demo_library(folder, n_per_style=per_style)
    console.print(f"wrote {len(paths)} tracks to {folder}")


# ---------------------------------------------------------------------------------------------
# Tags you never typed, and organising: classify, clusters
# ---------------------------------------------------------------------------------------------


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

    from .playlists import track_row
    from .recommend.classify import classify, save_predictions

    with open_library() as lib, progress_bar() as progress, clear_errors():
        searcher = lib.searcher()
        result = classify(searcher, column, labels, baseline=not no_baseline, workers=workers,
                          report=ProgressReport(progress))
        save_predictions(lib.catalog, result)
        best = sorted(result.predictions, key=lambda p: -p.confidence)
        tracks = searcher.tracks([p.track_id for p in best])
    rows = [track_row(t, label=p.label, confidence=round(p.confidence, 4)) for t, p in zip(tracks, best)]
    if as_json:
        out.print_json(json.dumps({**asdict(result), "predictions": rows}))
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
    out_dir: Annotated[Path, typer.Argument(help="Folder for the playlists (made if missing).")],
    k: Annotated[Optional[int], typer.Option("-k", help="How many playlists (default: about sqrt(tracks/2)).")] = None,
    auto: Annotated[bool, typer.Option("--auto", help="Find the number of groups from the music (HDBSCAN); tracks in no group go to 'unclustered'.")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (same seed, same playlists).")] = 0,
    absolute: AbsoluteOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: every playlist with its tracks.")] = False,
):
    """Group the library into playlists by sound, each named from its tracks' dominant tags,
    written as M3U8 files into OUT_DIR."""
    from .playlists import track_row
    from .recommend.clusters import cluster_library, write_playlists

    with open_library() as lib, clear_errors():
        searcher = lib.searcher()
        groups = cluster_library(searcher, k, auto, seed)
        files = write_playlists(searcher, groups, out_dir, absolute)
        found = [(g, f, searcher.tracks(g.track_ids)) for g, f in zip(groups, files)]
    if as_json:
        out.print_json(json.dumps([{"name": g.name, "file": str(f), "noise": g.noise,
                                    "tracks": [track_row(t) for t in tracks]} for g, f, tracks in found]))
        return
    table = Table(title=f"{len(groups)} playlists in {out_dir}")
    for col in ("playlist", "tracks", "file"):
        table.add_column(col, overflow="fold")
    for g, f, tracks in found:
        table.add_row(g.name, str(len(tracks)), f.name)
    out.print(table)


# ---------------------------------------------------------------------------------------------
# Playlists: radio, path (and MPD)
# ---------------------------------------------------------------------------------------------


MpdOption = Annotated[Optional[str], typer.Option("--mpd", metavar="HOST:PORT", help="Also queue the list in this running MPD, after its current song (HOST:PORT, or its socket path).")]
MpdMusicDirOption = Annotated[Optional[Path], typer.Option("--mpd-music-dir", help="MPD's music directory (default: asked of MPD, or read from its config file).")]


def default_length(lib: Library, n: int | None, default: int) -> int:
    """-n as given (too many is an error), or the default capped to what the library holds."""
    return n if n is not None else min(default, len(lib.searcher()) or default)


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
):
    """A playlist around SEED tracks: close to them, varied, never drifting away."""
    from .playlists import track_row
    from .recommend.radio import radio

    with open_library() as lib, clear_errors():
        seeds = list(seeds or [])
        require_mpd_for_music_dir(mpd_music_dir, mpd is not None or mpd_current)
        if mpd_current:
            from .mpd import current_path

            seeds.append(str(current_path(mpd, mpd_music_dir)))
        n = default_length(lib, n, 30)
        matches = radio(lib.searcher(), seeds, avoid or (), n=n, seed=seed, artist_window=artist_window)
        if len(matches) < n:
            console.print(f"[yellow]only {len(matches)} tracks qualify[/] (asked for {n}): the others are seeds, "
                          f"close to an avoided track, far from the seeds, or would break the artist window")
        show_tracks(f"Radio from {len(seeds)} seed{'s' if len(seeds) > 1 else ''}",
                    [track_row(m.track, m.score) for m in matches], as_json, m3u8, absolute, [m.track for m in matches])
        if mpd is not None or mpd_current:
            queue_in_mpd([m.track for m in matches], mpd, mpd_music_dir)


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
):
    """A journey from A to B in small steps, each track closer to B than the one before."""
    from .playlists import track_row
    from .recommend.path import journey

    with open_library() as lib, clear_errors():
        require_mpd_for_music_dir(mpd_music_dir, mpd is not None)
        n = default_length(lib, n, 12)
        trip = journey(lib.searcher(), a, b, n=n)
        first, last = trip.steps[0].track, trip.steps[-1].track
        console.print(f"largest step {trip.largest_step:.3f}, straight A→B {trip.direct:.3f} "
                      f"(cosine distance), {len(trip.steps)} tracks")
        if len(trip.steps) < n:
            console.print(f"[yellow]only {len(trip.steps)} tracks[/] (asked for {n}): no more tracks lie "
                          f"between A and B, each closer to B than the one before")
        show_tracks(f"{first.label} → {last.label}: largest step {trip.largest_step:.3f}, straight {trip.direct:.3f}",
                    [track_row(s.track, step=round(s.step, 4), to_b=round(s.to_b, 4)) for s in trip.steps],
                    as_json, m3u8, absolute, trip.tracks, columns=("step", "to_b"))
        if mpd is not None:
            queue_in_mpd(trip.tracks, mpd, mpd_music_dir)


# ---------------------------------------------------------------------------------------------
# Segments: duplicates, identify, explain
# ---------------------------------------------------------------------------------------------


def clock(seconds: float) -> str:
    """Seconds as m:ss (or h:mm:ss), as players show a position."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def span_text(span: tuple[float, float]) -> str:
    return f"{clock(span[0])}–{clock(span[1])}"


@app.command()
def duplicates(
    threshold: Annotated[Optional[float], typer.Option(help="Mean cosine of the aligned segments a pair needs, 0-1 (default: measured on real music).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Files that are the same recording: another codec or bitrate, trimmed, quieter, or an
    excerpt of a longer file; with which part of each matches."""
    from .playlists import track_row
    from .recommend.duplicates import DEFAULT_THRESHOLD, duplicate_groups, find_duplicates

    with open_library() as lib, clear_errors():
        searcher = lib.searcher()
        pairs = find_duplicates(searcher, threshold=DEFAULT_THRESHOLD if threshold is None else threshold)
        tracks = {t.id: t for t in searcher.tracks(sorted({i for p in pairs for i in (p.a, p.b)}))}
    groups = duplicate_groups(pairs)
    group_of = {i: n for n, g in enumerate(groups, 1) for i in g}
    if as_json:
        out.print_json(json.dumps({
            "groups": groups,
            "pairs": [{"group": group_of[p.a], "similarity": p.similarity, "coverage": p.coverage, "offset": p.offset,
                       "a": track_row(tracks[p.a]), "a_span": p.a_span, "b": track_row(tracks[p.b]), "b_span": p.b_span}
                      for p in pairs]}))
        return
    table = Table(title=f"{len(pairs)} duplicate pairs in {len(groups)} groups")
    for col in ("group", "similarity", "coverage", "A", "A part", "B", "B part"):
        table.add_column(col, overflow="fold")
    for p in pairs:
        table.add_row(str(group_of[p.a]), f"{p.similarity:.3f}", f"{p.coverage:.2f}",
                      f"{p.a}: {tracks[p.a].label}", span_text(p.a_span), f"{p.b}: {tracks[p.b].label}", span_text(p.b_span))
    out.print(table)


@app.command()
def identify(
    file: Annotated[Path, typer.Argument(help="An audio excerpt (at least one segment, ~3 s).")],
    k: Annotated[int, typer.Option("-k", help="How many candidate tracks.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Which library track an excerpt comes from, and where in it it starts."""
    from .playlists import track_row
    from .recommend.identify import identify as run_identify

    with open_library() as lib, clear_errors():
        found = run_identify(lib.searcher(), file, k=k)
    if as_json:
        out.print_json(json.dumps([track_row(m.track, offset=m.offset, confidence=m.confidence,
                                             similarity=m.similarity, coverage=m.coverage) for m in found]))
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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """The moments of A and B that sound most alike: time ranges in each, with their similarity."""
    from .playlists import track_row
    from .recommend.explain import explain as run_explain

    with open_library() as lib, clear_errors():
        searcher = lib.searcher()
        track_a, track_b = searcher.resolve_track(a), searcher.resolve_track(b)
        found = run_explain(searcher, track_a.id, track_b.id, top=top)
    if as_json:
        out.print_json(json.dumps({"a": track_row(track_a), "b": track_row(track_b),
                                   "pairs": [{"a_span": m.a_span, "b_span": m.b_span, "similarity": m.similarity}
                                             for m in found]}))
        return
    table = Table(title=f"Why {track_a.label} sounds like {track_b.label}")
    for col in ("#", "similarity", f"A ({track_a.id})", f"B ({track_b.id})"):
        table.add_column(col, overflow="fold")
    for i, m in enumerate(found, 1):
        table.add_row(str(i), f"{m.similarity:.3f}", span_text(m.a_span), span_text(m.b_span))
    out.print(table)


# ---------------------------------------------------------------------------------------------
# The web page and the HTTP API
# ---------------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
    token: Annotated[Optional[str], typer.Option(envvar="SONGSPACE_TOKEN", help="Every request must carry it (Authorization: Bearer, or the page's login form).")] = None,
):
    """The web page and the JSON API (OpenAPI docs at /docs), in this one process."""
    from .server.auth import is_loopback_host

    if not token and not is_loopback_host(host):
        console.print(f"[red]error:[/] listening on {escape(host)} lets other machines in: give a token "
                      f"(--token or $SONGSPACE_TOKEN), or listen on 127.0.0.1")
        raise typer.Exit(2)
    import uvicorn

    from .server import create_app

    with clear_errors():
        server_app = create_app(state.get("library") or default_library_dir(), token=token or None)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"songspace at http://{shown}:{port}/  (API docs: /docs; Ctrl-C stops)")
    uvicorn.run(server_app, host=host, port=port, log_level="warning")


# ---------------------------------------------------------------------------------------------
# Checking a library
# ---------------------------------------------------------------------------------------------


@app.command()
def check():
    """Verify the library: the catalog (SQLite integrity check) and the vector index (rebuilt
    from the catalog when it does not match) and the stored segments (damaged ones dropped).
    Exit 2 when the catalog itself is damaged, 1 when tracks need analysing again."""
    with open_library() as lib, clear_errors():
        problems = lib.catalog.integrity()
        if problems:
            console.print(f"[red]error:[/] {escape(str(lib.catalog.path))} is damaged: {escape('; '.join(problems[:5]))}. "
                          f"Move it aside and index the music again to rebuild it, or restore it from a backup.")
            raise typer.Exit(2)
        counts = lib.catalog.counts()
        out.print(f"catalog   ok: {lib.catalog.path} ({counts['ok']} tracks ok, {counts['failed']} failed)")
        sound, note = lib.searcher().check_index()
        out.print(f"index     {'ok' if sound else 'rebuilt'}: {escape(note)}")
        checked, problems = lib.catalog.check_segments()
        before, after, dropped = lib.catalog.compact_segments(force=bool(problems))
        note = f"{checked} tracks' records read back" + (f", compacted {before:,} → {after:,} bytes" if after != before else "")
        if problems:
            out.print(f"segments  [yellow]{len(problems)} damaged[/]: {escape(problems[0])}; dropped, tracks {dropped[:10]} "
                      f"need analysing again ({note})")
            raise typer.Exit(1)
        else:
            out.print(f"segments  ok: {note}")


# ---------------------------------------------------------------------------------------------
# Users of the Subsonic API
# ---------------------------------------------------------------------------------------------

user_app = typer.Typer(help="Users of the Subsonic API (/rest/ of `songspace serve`).", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name, as typed in the Subsonic app.")],
    password: Annotated[Optional[str], typer.Option("--password", help="The password (asked, hidden, when not given).")] = None,
):
    """Add a user (or change their password). Subsonic's token auth needs the plain password on
    the server: it is kept in the catalog, which becomes readable by its owner only. Use a
    password made for this, not one used anywhere else."""
    if password is None:
        password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    if not name.strip() or not password:
        console.print("[red]error:[/] a user needs a name and a non-empty password")
        raise typer.Exit(2)
    with open_library() as lib, clear_errors():
        lib.catalog.add_user(name, password)
        console.print(f"user {escape(name)} can sign in at /rest/ ({lib.catalog.path} is now private: mode 600)")


@user_app.command("list")
def user_list():
    """The users of the Subsonic API."""
    with open_library() as lib:
        for name, created in lib.catalog.users():
            out.print(f"{escape(name)}\tadded {time.strftime('%Y-%m-%d %H:%M', time.localtime(created))}")


@user_app.command("remove")
def user_remove(name: Annotated[str, typer.Argument(help="User name.")]):
    """Remove a user (their playlists, stars and plays stay in the catalog)."""
    with open_library() as lib:
        if not lib.catalog.remove_user(name):
            console.print(f"[red]error:[/] no user {escape(name)!r}")
            raise typer.Exit(2)
        console.print(f"removed user {escape(name)}")


def require_mpd_for_music_dir(music_dir: Path | None, with_mpd: bool) -> None:
    if music_dir is not None and not with_mpd:
        raise InputError("--mpd-music-dir is for MPD: give --mpd too (or --mpd-current with radio)")


def queue_in_mpd(tracks: list, address: str | None, music_dir: Path | None) -> None:
    """Queue `tracks` in MPD after its current song (MpdError: exit 2 through clear_errors)."""
    from .mpd import play_list

    n = play_list([t.path for t in tracks], address, music_dir)
    console.print(f"queued {n} tracks in MPD after the current song")
