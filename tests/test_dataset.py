"""Embeddings as a Parquet dataset, without Ray: `export --parquet-dataset` from a library and
`embed` straight from audio, read back with DuckDB and pyarrow. (On Ray: tests/test_ray.py.)"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from songspace import Library
from songspace.dataset import COLUMNS, embed_to_dataset, export_dataset
from songspace.errors import InputError


def read(folder: Path) -> dict[str, tuple]:
    """{path: (vector or None, error, model_id)} through DuckDB, over every file of the folder."""
    rows = duckdb.sql(f"SELECT path, vector, error, model_id FROM read_parquet('{folder}/*.parquet')").fetchall()
    return {p: (None if v is None else np.asarray(v, np.float32), e, m) for p, v, e, m in rows}


def test_export_parquet_dataset(indexed_library, songspace, tmp_path):
    out = tmp_path / "ds"
    result = songspace("export", str(out), "--parquet-dataset", "--rows-per-file", "5", check=True)
    assert "wrote 12 tracks in 3 Parquet files" in result.stderr
    assert sorted(f.name for f in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    schema = pq.read_schema(out / "part-00000.parquet")
    assert tuple(schema.names) == COLUMNS
    assert str(schema.field("vector").type) == "fixed_size_list<element: float>[256]"

    rows = read(out)
    with Library.open(indexed_library) as lib:
        tracks = lib.catalog.tracks()
        assert sorted(rows) == sorted(t.path for t in tracks)
        for t in tracks:
            vector, error, model_id = rows[t.path]
            assert error is None and model_id == lib.model_id
            np.testing.assert_array_equal(vector, lib.catalog.vector(t.id)[1])
    genres = {g for (g,) in duckdb.sql(f"SELECT DISTINCT genre FROM read_parquet('{out}/*.parquet')").fetchall()}
    assert {t.genre for t in tracks} == genres  # the tags travel too (null where a codec kept none)

    again = songspace("export", str(out), "--parquet-dataset")  # never mixed into an existing dataset
    assert again.exit_code == 2 and "already holds files" in again.output and "Traceback" not in again.output


def test_export_takes_a_uri_and_refuses_what_it_cannot_write(indexed_library, songspace, tmp_path):
    # A URI stays one (as a Path, file:///x was the local folder "file:/x" under the current one).
    songspace("export", f"file://{tmp_path}/ds", "--parquet-dataset", check=True)
    assert [f.name for f in (tmp_path / "ds").iterdir()] == ["part-00000.parquet"]
    (tmp_path / "vectors.parquet").write_bytes(b"not a folder")
    for args in ((str(tmp_path / "vectors.parquet"), "--parquet-dataset"),  # a file where the folder would go
                 (f"file://{tmp_path}/v.npz",),  # only a dataset goes to a URI
                 (str(tmp_path / "x"), "--parquet-dataset", "--rows-per-file", "0")):
        result = songspace("export", *args)
        assert result.exit_code == 2 and "Traceback" not in result.output, (args, result.output)
    assert not (tmp_path / "x").exists()


def test_a_failed_export_leaves_no_half_written_file(tmp_path):
    class FailingCatalog:  # its second page fails, as a damaged database or a full disk would
        def embedded_rows(self, model_id):
            yield [(1, "/music/a.flac", None, None, None, None, 8.0, "hash", np.ones(4, np.float32).tobytes())]
            raise OSError("disk I/O error")

    with pytest.raises(OSError, match="disk I/O error"):
        export_dataset(FailingCatalog(), "model", tmp_path / "ds")
    assert list((tmp_path / "ds").iterdir()) == []


def test_export_of_an_empty_library_still_has_the_columns(library_dir, tmp_path):
    with Library.open(library_dir) as lib:
        lib.index([], workers=0)
        summary = lib.export_dataset(tmp_path / "ds")
    assert (summary.files, summary.rows) == (1, 0)
    assert tuple(pq.read_schema(tmp_path / "ds" / "part-00000.parquet").names) == COLUMNS


def test_embed_without_a_library(music, indexed_library, songspace, tmp_path):
    (music / "broken.flac").write_bytes(b"\x00" * 4096)
    out = tmp_path / "ds"
    result = songspace("embed", str(music / "*" / "*.*"), str(music / "broken.flac"), "--out", str(out),
                       "--workers", "0", "--rows-per-file", "100")
    assert result.exit_code == 1, result.output  # one file could not be analysed
    assert "wrote 13 rows (1 failed) in 1 Parquet files" in result.stderr and "broken.flac" in result.stderr
    rows = read(out)
    vector, error, model_id = rows[str(music.resolve() / "broken.flac")]
    assert vector is None and model_id is None and error
    with Library.open(indexed_library) as lib:  # the same music, indexed: the same vectors
        stored = {Path(t.path).name: lib.catalog.vector(t.id)[1] for t in lib.catalog.tracks()}
    embedded = {Path(p).name: v for p, (v, e, m) in rows.items() if e is None}
    assert sorted(embedded) == sorted(stored)
    assert min(float(np.dot(embedded[n], stored[n])) for n in stored) >= 0.999
    assert not [f for f in out.iterdir() if f.name.startswith(".")]  # no half-written shard left behind


def test_embed_refuses_what_it_cannot_do(music, tmp_path):
    with pytest.raises(InputError, match="needs Ray"):
        embed_to_dataset(["s3://bucket/music/"], tmp_path / "a", workers=0)
    with pytest.raises(InputError, match="mfcc"):
        embed_to_dataset([music], tmp_path / "b", model="mfcc", workers=0)
    with pytest.raises(InputError, match="no audio files match"):
        embed_to_dataset([str(tmp_path / "*.flac")], tmp_path / "c", workers=0)
    with pytest.raises(InputError, match="no such folder"):
        embed_to_dataset([tmp_path / "missing"], tmp_path / "d", workers=0)
    assert not any((tmp_path / d).exists() for d in "abcd")  # refused before anything was written
