"""Embeddings as a dataset: a folder of Parquet files that Ray Data, DuckDB, Spark or pandas read
as they are, with no songspace in sight.

One row per audio file:

  path          string   absolute path, or the URI of an object in a bucket
  title, artist, album, genre
                string   the file's tags (null when absent)
  duration      float64  seconds
  content_hash  string   blake2b-128 of the file's bytes (the same file twice: the same hash)
  model_id      string   the model that made the vector: never compare vectors of two models
  vector        fixed_size_list<float32>[dim]   unit length (for the `mfcc` method: the raw
                statistics, to standardise over the collection before comparing)
  error         string   why the file could not be analysed (then every column but path is
                null); null for every analysed file

The rows are spread over several files (`rows_per_file` each; ~70 MB at 100,000 rows of 256
dimensions), so readers split the work by file. `export_dataset` and a local `embed_to_dataset`
write each file under a hidden temporary name and rename it when complete: a reader, or a
crash, never meets half a file there. On Ray, Ray Data's `write_parquet` writes the final names
directly: a failed or interrupted run leaves part of a dataset, to delete before running again.

Two ways to make one:
  export_dataset     what a library's catalog holds (the searched model's vectors), streamed
                     page by page, so memory stays flat at any size
  embed_to_dataset   audio straight into a dataset, without a catalog (the batch job of a
                     service): locally through the process pool, or on Ray with Ray Data
                     (files listed or read from a bucket → `map_batches` on an actor pool of
                     analysers → `write_parquet`). Ray Data fits here as it does not for
                     `index`: nothing waits on single results, and it brings bucket reading,
                     backpressure and sharded writing.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .analysis import Analysis, Task, analyse, analyse_bytes
from .audio import AUDIO_EXTENSIONS
from .errors import ClusterError, InputError
from .method import embedder, resolve
from .models.files import read_config
from .progress import Phase, Report
from .scan import is_audio_name, scan
from .status import Outcome
from .tags import TAG_NAMES
from .workers import run_parallel

DEFAULT_ROWS_PER_FILE = 100_000
COLUMNS = ("path", *TAG_NAMES, "duration", "content_hash", "model_id", "vector", "error")
_BUFFERED_ROWS = 1_000  # analysed rows held before they are handed to the writer


@dataclass
class DatasetSummary:
    """What a dataset folder holds, read back from its files."""

    out: str
    files: int
    rows: int
    failed: list[tuple[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Rows and tables
# ---------------------------------------------------------------------------------------------


def schema(dim: int):
    import pyarrow as pa

    return pa.schema([("path", pa.string()), *((t, pa.string()) for t in TAG_NAMES), ("duration", pa.float64()),
                      ("content_hash", pa.string()), ("model_id", pa.string()),
                      ("vector", pa.list_(pa.float32(), dim)), ("error", pa.string())])


def row_of(a: Analysis) -> tuple:
    """An analysis as a row in COLUMNS order; anything but "ok" becomes an error row."""
    if a.status != Outcome.OK:
        return (a.path, *([None] * (len(COLUMNS) - 2)), a.error or a.status)
    return (a.path, *(a.tags.get(t) for t in TAG_NAMES), a.duration, a.content_hash, a.model_id, a.vector, None)


def rows_table(rows: list[tuple], dim: int):
    """Rows in COLUMNS order as a table of `schema(dim)`."""
    import pyarrow as pa

    columns = list(zip(*rows)) if rows else [()] * len(COLUMNS)
    vectors = columns[COLUMNS.index("vector")]
    if all(v is not None for v in vectors):  # the common case, without a Python list per row
        flat = np.asarray(vectors, dtype=np.float32).reshape(-1) if rows else np.zeros(0, np.float32)
        vector_array = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim)
    else:
        vector_array = pa.array([None if v is None else np.asarray(v, np.float32) for v in vectors],
                                pa.list_(pa.float32(), dim))
    arrays = [vector_array if name == "vector" else pa.array(list(col), schema(dim).field(name).type)
              for name, col in zip(COLUMNS, columns)]
    return pa.Table.from_arrays(arrays, schema=schema(dim))


# ---------------------------------------------------------------------------------------------
# Writing: shards, each complete before it is visible
# ---------------------------------------------------------------------------------------------


def prepare_out(out: str | Path):
    """(pyarrow filesystem, path in it) of an output folder, made if missing. Refuses a folder
    that already holds files: a second run into it would mix two datasets."""
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(as_uri(out))
        found = filesystem.get_file_info(fs.FileSelector(path, allow_not_found=True))
        if not found:
            filesystem.create_dir(path, recursive=True)
    except OSError as e:  # a file there, no permission, no such bucket, no credentials
        raise InputError(f"{out}: {e.strerror or e}") from None
    if found:
        raise InputError(f"{out}: already holds files ({found[0].base_name}, ...); write a dataset into an empty "
                         f"or new folder")
    return filesystem, path


def as_uri(place: str | Path) -> str:
    """A bucket URI as it is; a local path made absolute (pyarrow wants one)."""
    text = str(place)
    return text if "://" in text else Path(text).expanduser().resolve().as_posix()


class ShardWriter:
    """Tables into `path/part-00000.parquet`, `part-00001.parquet`, ..., `rows_per_file` rows
    each, streamed (a shard is never held whole). At least one file is written, so that an
    empty dataset still tells readers its columns."""

    def __init__(self, filesystem, path: str, dim: int, rows_per_file: int = DEFAULT_ROWS_PER_FILE):
        if rows_per_file < 1:
            raise InputError(f"rows_per_file must be at least 1, not {rows_per_file}")
        self.filesystem, self.path, self.schema = filesystem, path.rstrip("/"), schema(dim)
        self.rows_per_file = rows_per_file
        self.files: list[str] = []
        self.rows = 0
        self._writer = None
        self._in_file = 0

    def write(self, table) -> None:
        while len(table):
            if self._writer is None:
                self._open()
            take = min(len(table), self.rows_per_file - self._in_file)
            self._writer.write_table(table.slice(0, take))
            table = table.slice(take)
            self._in_file += take
            self.rows += take
            if self._in_file == self.rows_per_file:
                self._finish()

    def close(self) -> None:
        if self._writer is None and not self.files:
            self._open()
        if self._writer is not None:
            self._finish()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        elif self._writer is not None:  # leave no half shard behind, not even a hidden one
            self._writer.close()
            self.filesystem.delete_file(self._partial)

    def _open(self) -> None:
        import pyarrow.parquet as pq

        name = f"part-{len(self.files):05d}.parquet"
        self._final, self._partial = f"{self.path}/{name}", f"{self.path}/.{name}.partial"
        self._writer = pq.ParquetWriter(self._partial, self.schema, filesystem=self.filesystem)
        self._in_file = 0

    def _finish(self) -> None:
        self._writer.close()
        self.filesystem.move(self._partial, self._final)
        self.files.append(self._final)
        self._writer = None


def summarize(out: str | Path) -> DatasetSummary:
    """Files, rows and failures of a dataset folder, read from its path and error columns."""
    import pyarrow.dataset as pads

    ds = pads.dataset(as_uri(out), format="parquet")
    table = ds.to_table(columns=["path", "error"], filter=pads.field("error").is_valid())
    return DatasetSummary(str(out), len(ds.files), ds.count_rows(),
                          list(zip(table.column("path").to_pylist(), table.column("error").to_pylist())))


# ---------------------------------------------------------------------------------------------
# From a catalog
# ---------------------------------------------------------------------------------------------


def export_dataset(catalog, model_id: str, out: str | Path, rows_per_file: int = DEFAULT_ROWS_PER_FILE) -> DatasetSummary:
    """Write the searchable tracks `model_id` embedded, in catalog id order."""
    filesystem, path = prepare_out(out)
    # The writer is made at the first page, which gives the dimension; the stack closes it even
    # when the export fails, and its half-written shard is removed.
    with ExitStack() as stack:
        writer = None
        for page in catalog.embedded_rows(model_id):
            vectors = np.frombuffer(b"".join(r[-1] for r in page), dtype=np.float32).reshape(len(page), -1)
            if writer is None:
                writer = stack.enter_context(ShardWriter(filesystem, path, vectors.shape[1], rows_per_file))
            writer.write(rows_table([(*r[1:8], model_id, v, None) for r, v in zip(page, vectors)], vectors.shape[1]))
        if writer is None:  # no tracks: one empty file still gives readers the columns
            stack.enter_context(ShardWriter(filesystem, path, 0, rows_per_file))
    return summarize(out)


# ---------------------------------------------------------------------------------------------
# From audio, without a catalog
# ---------------------------------------------------------------------------------------------


def list_sources(sources: Iterable[str | Path]) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """(local audio files, [(path, reason)] for entries that only look like audio, bucket URIs).
    A source is a folder (walked), a file, a glob pattern (`~/Music/**/*.flac`), or a URI
    (`s3://bucket/prefix/`, `gs://...`, `file:///...`) that Ray Data lists and reads."""
    files, bad, uris = [], [], []
    for source in map(str, sources):
        if "://" in source:
            uris.append(source)
        elif any(c in source for c in "*?["):
            matches = [os.path.abspath(m) for m in glob.glob(os.path.expanduser(source), recursive=True)]
            found = [m for m in matches if os.path.isfile(m) and is_audio_name(os.path.basename(m))]
            if not found:
                raise InputError(f"{source}: no audio files match")
            files.extend(found)
        else:
            more, more_bad = scan([source])
            files.extend(more)
            bad.extend(more_bad)
    return sorted(set(files)), bad, uris


def embedding_model(model: str | Path | None) -> str:
    """A model file to embed with ("default" or None: the shipped one)."""
    method = resolve(model)
    if method.standardised:
        raise InputError(f"model {str(model)!r}: a dataset holds a model's vectors; MFCC statistics only compare "
                         "after standardising over a whole library (index the music, then export it)")
    return method.name


def embed_to_dataset(sources: Iterable[str | Path], out: str | Path, *, model: str | Path | None = None,
                     ray=None, workers: int | None = None, rows_per_file: int = DEFAULT_ROWS_PER_FILE,
                     report: Report | None = None) -> DatasetSummary:
    """Analyse every audio file of `sources` (see `list_sources`) into a dataset at `out` (a
    new or empty folder, or a bucket URI). `ray`: a `distributed.RayConfig` to run on Ray Data
    (needed for bucket URIs), else the local process pool with `workers`."""
    model = embedding_model(model)
    dim = read_config(model)["encoder"]["embed_dim"]
    files, bad, uris = list_sources(sources)
    if ray is None and (uris or "://" in str(out)):
        raise InputError(f"{(uris or [out])[0]}: reading or writing a bucket needs Ray (ray=...)")
    if ray is not None:
        from .distributed import require_ray

        require_ray()  # before the output folder is made
    filesystem, path = prepare_out(out)
    bad_rows = [row_of(Analysis(p, Outcome.FAILED, error=reason)) for p, reason in bad]
    if ray is None:
        _embed_here(files, bad_rows, model, dim, ShardWriter(filesystem, path, dim, rows_per_file), workers, report)
    else:
        from pyarrow.fs import FileSelector

        _embed_on_ray(files, uris, model, dim, out, ray, workers, rows_per_file)
        # Entries known to be bad need no worker: their rows are written here, and so is one
        # empty file when Ray wrote none (no audio found): as locally, readers get the columns.
        if bad_rows or not filesystem.get_file_info(FileSelector(path)):
            with ShardWriter(filesystem, path, dim, rows_per_file) as writer:
                writer.write(rows_table(bad_rows, dim))
    return summarize(out)


def _embed_here(files, rows, model, dim, writer: ShardWriter, workers, report) -> None:
    report = report or (lambda *a: None)
    with writer:
        report(Phase.EMBED, 0, len(files), "")
        for done, a in enumerate(run_parallel(analyse, [Task(p, model) for p in files], workers), 1):
            rows.append(row_of(a))
            if len(rows) >= _BUFFERED_ROWS:
                writer.write(rows_table(rows, dim))
                rows = []
            report(Phase.EMBED, done, len(files), Path(a.path).name)
        writer.write(rows_table(rows, dim))


class EmbedBatch:
    """Ray Data's callable class for `map_batches`: one per actor, the model loaded once. A batch
    holds paths to read in place or, from a bucket, the files' bytes."""

    def __init__(self, model: str, files: dict[str, bytes], dim: int, scheme: str | None):
        from .analysis import remove_stale_temp_files
        from .distributed import install_model
        from .workers import one_thread

        one_thread()
        remove_stale_temp_files()
        self.model, self.dim, self.scheme = install_model(model, files), dim, scheme
        embedder(self.model)

    def __call__(self, batch: dict):
        rows = []
        for i, path in enumerate(batch["path"]):
            if "bytes" in batch:  # Ray Data drops a URI's scheme from the path; put it back
                a = analyse_bytes(Task(f"{self.scheme}://{path}", self.model), batch["bytes"][i])
            else:
                a = analyse(Task(str(path), self.model))
            rows.append(row_of(a))
        return rows_table(rows, self.dim)


def _embed_on_ray(files, uris, model, dim, out, config, workers, rows_per_file) -> None:
    """Ray Data writes the final file names directly: a failure leaves part of a dataset, and
    the error says so."""
    from ray.exceptions import RayError

    from .distributed import first_line, worker_error

    partial = f"; {out} may hold part of a dataset: delete it before running again"
    try:
        _run_ray_data(files, uris, model, dim, as_uri(out), config, workers, rows_per_file)
    except RayError as e:  # a model that cannot load, songspace missing on a node, ...
        raise ClusterError(f"Ray Data failed: {worker_error(e)}{partial}") from None
    except FileNotFoundError as e:  # Ray Data's names the missing source, and nothing else
        raise InputError(f"{e.filename or first_line(e)}: not found{partial}") from None
    except OSError as e:  # no such bucket, no credentials for it, ...
        raise InputError(f"{first_line(e)}{partial}") from None


def _run_ray_data(files, uris, model, dim, out_uri, config, workers, rows_per_file) -> None:
    from .distributed import cluster_cpus, connected, first_line, model_files
    from .workers import MALLOC_ENV

    with connected(config.address) as ray:
        import ray.data

        cpus = cluster_cpus(ray)  # whatever `workers` says: with no CPU, no actor would ever start
        actors = workers or cpus
        inputs = []
        if files:
            items = [{"path": p} for p in files]
            # Blocks of a few files: a block goes to one actor, so one big block would keep the
            # others idle, and a block per file costs a task per file.
            blocks = min(len(items), max(4 * actors, -(-len(items) // 16)))
            inputs.append((ray.data.from_items(items, override_num_blocks=blocks), None))
        extensions = sorted(e.lstrip(".") for e in AUDIO_EXTENSIONS)
        for uri in uris:
            # Reading and writing are I/O: num_cpus=0, or they would wait forever for the CPUs
            # the analysers hold (a fixed pool of one actor per CPU).
            try:
                ds = ray.data.read_binary_files(uri, include_paths=True, file_extensions=extensions, num_cpus=0)
            except ValueError as e:  # no audio files there, a scheme pyarrow does not know
                raise InputError(f"{uri}: {first_line(e)}") from None
            inputs.append((ds, uri.split("://", 1)[0]))
        sent_model = model_files(model)
        for ds, scheme in inputs:
            ds = ds.map_batches(EmbedBatch, fn_constructor_args=(model, sent_model, dim, scheme), batch_size=4,
                                compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1, batch_format="numpy",
                                runtime_env={"env_vars": MALLOC_ENV})
            ds.write_parquet(out_uri, min_rows_per_file=rows_per_file, ray_remote_args={"num_cpus": 0})
