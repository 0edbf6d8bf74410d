"""The GPU path: workers decode, one process embeds several files per batch (gpu.py).

In CI there is no GPU, so the batching runs on the CPU device: everything but the `.to("cuda")` is
the code a GPU machine runs, and it must give the vectors the per-file CPU path gives. Where torch
sees a CUDA GPU (a lent GPU machine), the last test runs the same check on it.
"""

import numpy as np
import pytest
import torch

from songspace import gpu
from songspace.analysis import Task, analyse
from songspace.errors import InputError
from songspace.library import Library
from songspace.models.files import DEFAULT_MODEL


def test_batches_across_files_give_the_per_file_vectors(music):
    check_batched_against_per_file(music, "cpu", min_cosine=0.9999, segment_atol=2e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_gives_the_cpu_vectors(music):
    # The GPU computes convolutions in TF32 (torch's default), so a looser bound than on the CPU:
    # the tolerance, cosine >= 0.999 per track.
    check_batched_against_per_file(music, "cuda", min_cosine=0.999, segment_atol=2e-2)


def check_batched_against_per_file(music, device: str, min_cosine: float, segment_atol: float):
    files = sorted(str(p) for p in music.rglob("*.*"))
    broken = music / "broken.mp3"
    broken.write_bytes(b"not audio at all")
    per_file = {r.path: r for r in map(analyse, [Task(f, str(DEFAULT_MODEL)) for f in files])}
    decoded = [analyse(Task(f, str(DEFAULT_MODEL), decode_only=True)) for f in [*files, str(broken)]]
    assert [r.status for r in decoded] == ["decoded"] * len(files) + ["failed"]
    assert all(r.vector is None and len(r.audio.y) > 0 for r in decoded[:-1])
    # 12 tracks of 8 s hold 5 patches each: 12 patches per batch means 4 batches of 3 files.
    batched = list(gpu.embed_in_batches(decoded, str(DEFAULT_MODEL), device, max_patches=12))
    assert len(batched) == len(files) + 1
    failed = [r for r in batched if r.status == "failed"]
    assert [r.path for r in failed] == [str(broken)]
    for r in batched:
        if r.status == "failed":
            continue
        ref = per_file[r.path]
        assert r.status == "ok" and r.audio is None and r.model_id == ref.model_id
        assert r.content_hash == ref.content_hash and r.tags == ref.tags and r.duration == pytest.approx(ref.duration)
        assert float(r.vector @ ref.vector) > min_cosine
        np.testing.assert_array_equal(r.segment_starts, ref.segment_starts)
        np.testing.assert_allclose(r.segments.astype(np.float32), ref.segments.astype(np.float32), atol=segment_atol)


def test_index_through_the_batching_path(music, library_dir, tmp_path, monkeypatch):
    with Library.open(tmp_path / "cpu") as lib:
        lib.index([music], device="cpu")
        ref = {t.path: lib.catalog.vector(t.id)[1] for t in lib.catalog.tracks()}
    # As on a GPU machine, with the CPU standing in for the GPU.
    monkeypatch.setattr("songspace.indexing.executors.embedding_device", lambda requested: "cpu")
    with Library.open(library_dir) as lib:
        report = lib.index([music])
        assert report.added == len(ref) and not report.failed
        for t in lib.catalog.tracks():
            assert float(lib.catalog.vector(t.id)[1] @ ref[t.path]) > 0.9999
            starts, segs = lib.catalog.segments(t.id)
            assert len(starts) == len(segs) == 5


def test_device_choice():
    assert gpu.embedding_device("cpu") is None
    with pytest.raises(InputError, match="^device 'tpu': expected auto") as raised:
        gpu.embedding_device("tpu")
    assert raised.value.param == "device"  # the parameter, named by the library; the CLI names its flag
    if torch.cuda.is_available():
        assert gpu.embedding_device("auto") == "cuda"
    else:
        assert gpu.embedding_device("auto") is None
        with pytest.raises(InputError, match="no CUDA GPU"):
            gpu.embedding_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for a GPU that is absent")
def test_cli_asking_for_a_missing_gpu_says_so(cli, music):
    r = cli("index", str(music), "--device", "cuda")
    assert r.returncode == 2
    # The library names the parameter; the CLI adds the option that gives it.
    assert "device cuda: torch sees no CUDA GPU" in r.stderr and "(--device)" in r.stderr
    assert "Traceback" not in r.stderr
