"""Models: train one on folders of music, evaluate the library's on labelled music."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import InputError
from .base import app, clear_errors, console, open_library, out, print_json
from .output import PlainJsonOption, ProgressReport, progress_bar


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
    corpus_cache: Annotated[Optional[Path], typer.Option(help="Keep the decoded excerpts in this folder and reuse them when the same tracks are trained on again (bench/package_cv.py --corpus-cache writes the same).")] = None,
):
    """Train the encoder self-supervised on folders of music and save it."""
    from ..method import resolve as resolve_method
    from ..scan import scan
    from ..training import TrainConfig, read_releases
    from ..training import train as run_training

    if steps is not None:
        minutes = None
    with clear_errors(), progress_bar() as progress:
        init_model = None if init is None else resolve_method(init).file
        if init is not None and init_model is None:
            raise InputError(f"--init {init}: 'default' or a model file")
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
                                     report=ProgressReport(progress), releases=read_releases(folders),
                                     corpus_cache=corpus_cache)
    for path, reason in corpus.failures:
        console.print(f"[yellow]skipped:[/] {path}: {reason}")
    t = model.info["training"]
    console.print(f"trained {model.model_id}: {t['steps']} steps in {t['seconds']} s on {t['tracks']} tracks "
                  f"({t['device']}), loss {t['final_loss']:.3f} → {model.path}")


@app.command()
def evaluate(
    labels: Annotated[Path, typer.Argument(help="labels.csv (a 'path' column relative to it, then label columns such as album, artist, genre), or a folder whose subfolders are the labels.")],
    label: Annotated[Optional[list[str]], typer.Option("--label", help="Label column to score (repeatable). Default: album, artist, genre where present.")] = None,
    as_json: PlainJsonOption = False,
    workers: Annotated[Optional[int], typer.Option(min=0, help="Worker processes (default: one per CPU, up to 16; 0 analyses in this process).")] = None,
    in_library: Annotated[bool, typer.Option("--in-library", help="Index the labelled music into the library itself (default: a scratch library inside it, so it never shows up in your searches).")] = False,
):
    """Leave-one-out retrieval quality of the library's model on labelled music, beside the
    baselines computed in the same run: `mfcc` (hand-crafted statistics) and `random` (the
    untrained encoder). Indexes what is not indexed yet, into a scratch library inside yours
    unless --in-library. For each track every other track is
    ranked as search ranks (`songspace`: the model's cosine fused with the timbre companion;
    `songspace cosine`: the model alone); P@k is the share of the top k with the same label,
    mAP the mean average precision. Empty or 'unknown…' labels are left out of their column."""
    from ..evaluate import evaluate as run_evaluation

    with open_library() as lib, progress_bar() as progress, clear_errors():
        results = run_evaluation(lib, labels, label, workers=workers, report=ProgressReport(progress),
                                 in_library=in_library)
    if as_json:
        print_json(results)
        return
    table = Table(title=f"Leave-one-out retrieval, {results['tracks']} tracks, model {results['model']}")
    for col in ("label", "method", "P@1", "P@5", "P@10", "mAP", "queries"):
        table.add_column(col, justify="left" if col in ("label", "method") else "right")
    for column, by_method in results["labels"].items():
        for method, sc in by_method.items():
            table.add_row(column, method, *(f"{sc[k]:.3f}" for k in ("p@1", "p@5", "p@10", "map")), str(sc["queries"]))
    out.print(table)
