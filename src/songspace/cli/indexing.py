"""Building and keeping a library: index, status, fit, use, check, demo-library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from .. import autotags
from ..errors import InputError
from ..library import FIT_ANCHOR_WEIGHT
from ..progress import Phase
from .base import app, clear_errors, console, indexed, open_library, out, print_json
from .companion import SERVER_HELP, client_for
from .output import PlainJsonOption, ProgressReport, progress_bar
from .ray_option import RayAddressCommand, RayOption, ray_config


def location(text: str):
    """An `index` argument: a folder or file (a Path), or a server's address kept as written (a
    Path would fold its "//")."""
    from ..remote import is_remote

    return text if is_remote(text) else Path(text)


@app.command(cls=RayAddressCommand)
def index(
    folders: Annotated[list[Path], typer.Argument(metavar="FOLDERS... | subsonic://USER@HOST[:PORT]", parser=location, help="Music folders (or files) to index. " + SERVER_HELP)],
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
    file could not be analysed (see `songspace status`) or a folder could not be read (its
    tracks stay). Links to folders are followed. With --ray the files are analysed
    across a Ray cluster, and this process still writes every result to the library as it
    arrives. Workers read each file at its path when every node mounts the music at the same
    path (NFS, SMB); otherwise this process sends them its bytes.

    Companion mode: `songspace index subsonic://USER@HOST[:PORT]` indexes the library of
    another Subsonic server (Navidrome, Airsonic, gonic, supysonic...) through its API, keyed by
    that server's song ids, so `radio --to-playlist` can put playlists there."""
    with clear_errors():
        config = ray_config(ray, ship_below, always_ship)
        server = remote_server(folders, fit=fit, ray=config is not None)
        # signed in before anything is opened or shown: a password prompt is not drawn over by the bars
        client = client_for(server) if server is not None else None
    with open_library() as lib, progress_bar() as progress, clear_errors():
        try:
            if client is not None:
                report = lib.index_remote(client, allow_empty=allow_empty, report=ProgressReport(progress))
            else:
                report = lib.index(folders, fit=fit, fit_minutes=minutes, workers=workers,
                                   report=ProgressReport(progress), ray=config, device=device, allow_empty=allow_empty)
        except KeyboardInterrupt:  # outside the analysis stage (which stops cleanly by itself)
            console.print("[yellow]interrupted[/]; run the same command again to resume")
            raise typer.Exit(130)
        model_id = lib.model_id
        map_note = refresh_map(lib) if not report.interrupted else None
    summary = (f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
               f"removed {report.removed}, failed {len(report.failed)}")
    if report.retagged:  # of the unchanged: new tags read, the audio not analysed again
        summary += f", tags read again {report.retagged}"
    if report.timbre_added:  # of the unchanged: embedded before the timbre companion, given their Gaussian
        summary += f", timbre added {report.timbre_added}"
    if report.fit is not None:
        print_fit(report.fit, model_id, reembedded=False)
    for path, reason in report.failed:
        console.print(f"[yellow]failed:[/] {path}: {reason}")
    for path, reason in report.set_aside:  # silent or too short: recorded, not searched, not a failure
        console.print(f"set aside: {escape(path)}: {escape(reason)}")
    for folder, n in report.kept_empty:
        why = "lists no songs now (rescanning?)" if client is not None else "holds no audio now (not mounted?)"
        console.print(f"[yellow]kept:[/] {escape(folder)} {why}; its {n} tracks stay. "
                      "If the music is really gone, run again with --allow-empty.")
    for folder, reason, n in report.unreadable:
        console.print(f"[yellow]unreadable:[/] {escape(folder)}: {escape(reason)}; "
                      f"{f'its {n} tracks stay' if n else 'nothing in it was indexed'}")
    if report.interrupted:
        console.print(f"[yellow]interrupted[/] ({summary}); run the same command again to resume")
        raise typer.Exit(130)
    console.print(summary)
    if report.tags_note:  # tags out of the box (autotags.py), predicted by the run
        console.print(escape(report.tags_note))
    if report.timbre_note:  # the timbre companion's moments (proximity.py)
        console.print(escape(report.timbre_note))
    if map_note:
        console.print(escape(map_note))
    if report.failed or report.unreadable:
        raise typer.Exit(1)


def remote_server(locations: list[str], *, fit: bool, ray: bool):
    """The Subsonic server `index` is given (remote.RemoteServer), or None for folders."""
    from ..remote import RemoteServer, is_remote

    remote = [x for x in locations if is_remote(x)]
    if not remote:
        return None
    if len(locations) > 1:
        raise InputError("index one Subsonic server at a time, without folders beside it")
    if fit or ray:
        raise InputError(f"{'--fit' if fit else '--ray'} is for music folders: the songs of a server are "
                         "downloaded and analysed one at a time here")
    return RemoteServer.parse(remote[0])


def refresh_map(lib) -> str:
    """The library map brought up to date for the page (map.py): new tracks placed among their
    mapped neighbours, a first map (or a new model's) stored as a quick PCA. UMAP's layout is
    left to `songspace serve`, which runs it in the background while the page shows the quick
    map: an index run never waits for it."""
    from .. import map as library_map

    return library_map.refresh(lib.searcher(), lib.catalog, umap=False)


@app.command()
def status(as_json: PlainJsonOption = False):
    """Counts, the current model, and every failure with its reason."""
    # A library is read, never written; one not indexed yet is made, empty, as before.
    with open_library(readonly=indexed()) as lib, clear_errors():
        s = lib.status()
        s["predicted_tags"] = autotags.summary(lib.searcher().catalog)  # {group: {tag: tracks}}
    if as_json:
        print_json(s)
        return
    out.print(f"library:    {s['library']}")
    out.print(f"model:      {s['model']['id']}  ({s['model']['path']})")
    if s["searched_model"] != s["model"]["id"]:
        out.print(f"searching:  {s['searched_model']} until the model above has re-embedded the library")
    out.print(f"folders:    {', '.join(s['folders']) or '(none yet)'}")
    if s.get("servers"):  # companion mode: indexed from these Subsonic servers
        out.print(f"servers:    {escape(', '.join(s['servers']))}")
    out.print(f"tracks:     {s['tracks']}  (ok {s['ok']}, failed {s['failed']}, searchable {s['searchable']})")
    for model_id, n in s["embeddings_by_model"].items():
        stale = "" if model_id == s["model"]["id"] else "  (another model: re-embedded by the next `index`)"
        out.print(f"embedded:   {n} by {model_id}{stale}")
    out.print(f"ranking:    {s['ranking']['by']} ({escape(s['ranking']['note'])})")
    for group, counts in s["predicted_tags"].items():
        top = ", ".join(f"{escape(tag)} {n}" for tag, n in list(counts.items())[:6])
        out.print(f"{group + ':':<12}{top}{', ...' if len(counts) > 6 else ''}  (predicted; `songspace tags`)")
    for path, reason in s["failures"]:
        out.print(f"[yellow]failed:[/] {path}: {reason}")
    if s["set_aside"]:  # silent or too short audio: kept out of search and the map
        out.print(f"set aside:  silent {s['silent']}, too short {s['too_short']} (not searched)")
    for path, _, reason in s["set_aside"]:
        out.print(f"set aside:  {escape(path)}: {escape(reason)}")


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
            if phase == Phase.FIT_CHECK:
                if not checking:
                    checking.append(progress.add_task("Reading held-out tracks", total=total, note=""))
                progress.update(checking[0], completed=done, total=total)
            bars(phase, done, total, note)

        result = lib.fit(minutes=minutes, objective=objective, lr=lr, cosine=cosine, anchor_weight=anchor_weight,
                         seed=seed, keep_anyway=keep_anyway, workers=workers, report=report)
        again = None
        if result.changed:  # a new model: re-embed the library with it now (a server's songs too)
            again = lib.update(workers=workers, report=report)
        print_fit(result, lib.model_id, reembedded=True)
        for where, reason, n in again.unreadable if again is not None else []:
            console.print(f"[yellow]not re-embedded:[/] {escape(where)}: {escape(reason)}; its {n} tracks keep "
                          "the previous model's vectors until it is indexed again")


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
def check():
    """Verify the library: the catalog (SQLite integrity check) and the vector index (rebuilt
    from the catalog when it does not match) and the stored segments (damaged ones dropped).
    Exit 2 when the catalog itself is damaged, 1 when tracks need analysing again."""
    from ..check import check_library

    with open_library() as lib, clear_errors():
        found = check_library(lib)
    if found.catalog_damaged:
        console.print(f"[red]error:[/] {escape(found.catalog)} is damaged: {escape('; '.join(found.damage[:5]))}. "
                      f"Move it aside and index the music again to rebuild it, or restore it from a backup.")
        raise typer.Exit(2)
    out.print(f"catalog   ok: {found.catalog} ({found.ok} tracks ok, {found.failed} failed)")
    out.print(f"index     {'ok' if found.index_sound else 'rebuilt'}: {escape(found.index_note)}")
    note = f"{found.segments_checked} tracks' records read back"
    if found.bytes_after != found.bytes_before:
        note += f", compacted {found.bytes_before:,} → {found.bytes_after:,} bytes"
    if found.segment_problems:
        out.print(f"segments  [yellow]{len(found.segment_problems)} damaged[/]: {escape(found.segment_problems[0])}; "
                  f"dropped, tracks {found.dropped[:10]} need analysing again ({note})")
        raise typer.Exit(1)
    out.print(f"segments  ok: {note}")


@app.command()
def demo_library(
    folder: Annotated[Path, typer.Argument(help="Where to write the demo tracks.")],
    per_style: Annotated[int, typer.Option(min=1, help="Tracks per style.")] = 6,
):
    """Synthesize a small demo library (a few distinct styles, mixed codecs) to try songspace on."""
    from ..synth import make_demo_library

    paths = make_demo_library(folder, n_per_style=per_style)
    console.print(f"wrote {len(paths)} tracks to {folder}")
