"""Vectors out of songspace: export the library's, or embed files straight into a dataset."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape

from ..errors import InputError
from .base import app, clear_errors, console, open_library
from .output import ProgressReport, progress_bar
from .ray_option import RayAddressCommand, RayOption, ray_config


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
    from ..dataset import DEFAULT_ROWS_PER_FILE, embed_to_dataset

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
