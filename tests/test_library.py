"""Indexing, incremental updates, queries and export through the Python API."""

import functools
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from songspace import Library, QueryError
from songspace.recommend.similar import Manners, similar
from songspace.synth import synth_track, write_audio

RAW = Manners(collapse_copies=False)  # every file listed, as search ranks them


def index(lib, folder):
    return lib.index([folder], workers=0)


def test_index_then_similar(music, library_dir):
    with Library.open(library_dir) as lib:
        report = index(lib, music)
        assert (report.added, report.failed) == (12, [])
        assert report.audio_seconds == pytest.approx(12 * 8.0, rel=0.02)
        matches = similar(lib.searcher(), 1, 5, RAW)
        assert len(matches) == 5
        assert 1 not in [m.track.id for m in matches]
        scores = [m.score for m in matches]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0001 <= s <= 1.0001 for s in scores)
        t = lib.catalog.track(1)
        assert t.status == "ok" and t.content_hash and t.duration == pytest.approx(8.0, abs=0.1)
        assert t.artist.endswith("synth") and t.album and t.title and t.genre


def test_rerun_only_processes_what_changed(music, library_dir):
    with Library.open(library_dir) as lib:
        index(lib, music)
        before = {t.path: (t.id, lib.catalog.vector(t.id)[1]) for t in lib.catalog.tracks()}
        again = index(lib, music)
        assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 12)

        files = sorted(p for p in music.rglob("*") if p.is_file())
        touched, changed, deleted = files[0], files[1], files[2]
        os.utime(touched, (time.time() + 5, time.time() + 5))  # new mtime, same content
        write_audio(changed.with_suffix(".wav"), synth_track("noise_beat", 6.0, seed=99), 16000)
        changed.unlink()
        changed = changed.with_suffix(".wav")  # a replaced file under a new name: one removed, one added
        deleted.unlink()
        write_audio(music / "new.flac", synth_track("bass_drone", 5.0, seed=7), 16000)

        third = index(lib, music)
        assert third.removed == 2 and third.added == 2 and third.updated == 0 and third.failed == []
        assert third.unchanged == 10  # the touched file was re-hashed, found identical, and kept
        t = lib.catalog.by_path(str(touched.resolve()))
        assert t.id == before[str(touched.resolve())][0]
        np.testing.assert_array_equal(lib.catalog.vector(t.id)[1], before[str(touched.resolve())][1])
        assert lib.catalog.by_path(str(deleted.resolve())) is None
        assert lib.catalog.by_path(str(changed.resolve())).status == "ok"
        assert len(lib.searcher()) == 12  # 12 - 2 removed + 2 added


def test_a_folder_emptied_like_an_unmounted_drive_keeps_its_tracks(music, library_dir, tmp_path):
    with Library.open(library_dir) as lib:
        index(lib, music)
        away = tmp_path / "away"
        shutil.move(music, away)  # the mount point stays, empty
        music.mkdir()
        report = index(lib, music)
        assert report.removed == 0 and report.kept_empty == [(str(music.resolve()), 12)]
        assert len(lib.searcher()) == 12
        report = lib.index([music], workers=0, allow_empty=True)  # the music is really gone
        assert report.removed == 12 and report.kept_empty == [] and len(lib.catalog.tracks()) == 0


def test_changed_content_is_reembedded(music, library_dir):
    with Library.open(library_dir) as lib:
        index(lib, music)
        target = sorted(music.rglob("*.wav"))[0]
        old = lib.catalog.by_path(str(target.resolve()))
        write_audio(target, synth_track("bright_arpeggio", 8.0, sr=22050, seed=5), 22050)
        report = index(lib, music)
        assert report.updated == 1
        new = lib.catalog.by_path(str(target.resolve()))
        assert new.id == old.id and new.content_hash != old.content_hash
        assert new.duration == pytest.approx(8.0, abs=0.1)


def test_query_forms(music, library_dir, tmp_path):
    with Library.open(library_dir) as lib:
        index(lib, music)
        some = lib.catalog.tracks()[4]
        assert lib.searcher().resolve(str(some.id)).id == some.id
        assert lib.searcher().resolve(some.path).id == some.id
        assert lib.searcher().resolve(f"{some.artist} - {some.title}").id == some.id
        with pytest.raises(QueryError, match="tracks match"):
            lib.searcher().resolve("synth")  # ambiguous: lists candidates
        with pytest.raises(QueryError, match="no track matches"):
            lib.searcher().resolve("no such song anywhere")

        outside = write_audio(tmp_path / "outside.ogg", synth_track("mid_chords", 6.0, seed=3), 16000)
        matches = similar(lib.searcher(), str(outside), 3, RAW)
        assert len(matches) == 3
        assert len(lib.catalog.tracks()) == 12  # embedded on the fly, not added

        # A query that is itself in the library finds its own copy first when given as an outside file.
        copy = Path(tmp_path / "copy").with_suffix(Path(some.path).suffix)
        copy.write_bytes(Path(some.path).read_bytes())
        assert similar(lib.searcher(), str(copy), 1, RAW)[0].track.id == some.id


def test_searcher_follows_catalog_changes(music, library_dir):
    with Library.open(library_dir) as lib:
        index(lib, music)
        searcher = lib.searcher()
        first = [m.track.id for m in similar(searcher, 2, 4, RAW)]
        assert len(searcher) == 12
        gone = first[0]
        lib.catalog.remove([gone])  # the same Searcher sees the change at its next query
        assert len(searcher) == 11
        assert [m.track.id for m in similar(searcher, 2, 3, RAW)] == first[1:]


def test_export_npz_and_parquet(music, library_dir, tmp_path):
    with Library.open(library_dir) as lib:
        index(lib, music)
        lib.export(tmp_path / "out.npz")
        lib.export(tmp_path / "out.parquet")
        with pytest.raises(ValueError, match="npz or .parquet"):
            lib.export(tmp_path / "out.csv")
    data = np.load(tmp_path / "out.npz")
    assert data["vectors"].dtype == np.float32 and data["vectors"].shape[0] == 12
    np.testing.assert_allclose(np.linalg.norm(data["vectors"], axis=1), 1.0, atol=1e-5)
    assert all(Path(p).is_absolute() and Path(p).exists() for p in data["paths"])
    table = pq.read_table(tmp_path / "out.parquet").to_pydict()
    assert table["paths"] == list(data["paths"])
    tagged = [a for p, a in zip(table["paths"], table["artist"]) if not p.endswith(".wav")]  # WAV carries no tags here
    assert tagged and all(a and a.endswith("synth") for a in tagged)
    np.testing.assert_allclose(np.array(table["vectors"], dtype=np.float32), data["vectors"])


def test_a_new_model_reembeds_and_never_mixes(music, library_dir, tmp_path):
    import torch

    from songspace.features import FeatureConfig
    from songspace.models.checkpoint import save_model
    from songspace.models.encoder import Encoder

    with Library.open(library_dir) as lib:
        index(lib, music)
        old_id = lib.model_id
        torch.manual_seed(123)
        other = save_model(tmp_path / "other.safetensors", Encoder(), FeatureConfig())
        lib.use_model(other.path)
        assert lib.model_id == other.model_id != old_id
        # Search keeps answering from the old vectors until the new model has caught up.
        assert lib.searcher().model_id == old_id and len(lib.searcher()) == 12
        report = index(lib, music)
        assert report.updated == 12
        assert lib.catalog.models() == {other.model_id: 12}
        assert lib.searcher().model_id == other.model_id and len(lib.searcher()) == 12


def test_segment_vectors_are_stored_beside_the_track_vector(music, library_dir):
    with Library.open(library_dir) as lib:
        index(lib, music)
        for t in lib.catalog.tracks():
            starts, segs = lib.catalog.segments(t.id)
            assert len(starts) == len(segs) == 5  # 8-s tracks: patches at 0, 1.5, 3.1, 4.6 and the end
            assert starts[-1] + 3.072 == pytest.approx(t.duration, abs=0.05)
            mean = segs.mean(axis=0)
            np.testing.assert_allclose(mean / np.linalg.norm(mean), lib.catalog.vector(t.id)[1], atol=3e-3)


def test_index_with_fit_trains_then_embeds_with_the_fitted_model(music, library_dir, monkeypatch):
    # This is about index driving a fit; whether a fit is kept is test_fit.py's: keep it here.
    monkeypatch.setattr(Library, "_fit", functools.partialmethod(Library._fit, keep_anyway=True))
    with Library.open(library_dir) as lib:
        index(lib, music)
        shipped = lib.model_id
        phases = set()
        report = lib.index([music], fit=True, fit_minutes=0.05, workers=0, report=lambda p, *a: phases.add(p))
        assert {"fit-corpus", "fit", "analyse"} <= phases
        assert Path(report.fitted_model).parent == library_dir.resolve() / "models"
        assert lib.model_id != shipped and lib.model == report.fitted_model
        assert report.updated == 12  # every track re-embedded by the fitted model
        assert lib.catalog.models() == {lib.model_id: 12}
        info = json.loads(Path(report.fitted_model).with_suffix(".json").read_text())["info"]
        assert info["init"] == shipped  # adapted from the shipped weights, not from scratch


def test_indexing_with_one_worker_keeps_torch_out_of_this_process(music, library_dir):
    import subprocess
    import sys

    code = ("import sys; from songspace import Library; "
            f"r = Library.open({str(library_dir)!r}).index([{str(music)!r}], workers=1); "
            "print(r.added, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300).stdout
    assert out.split() == ["12", "False"]


def test_fit_leaves_reembedding_to_the_caller_and_search_never_goes_empty(music, library_dir):
    with Library.open(library_dir) as lib:
        index(lib, music)
        shipped = lib.model_id
        result = lib.fit(minutes=0.05, workers=0, keep_anyway=True)  # test_fit.py tests the check
        searcher = lib.searcher()
        assert result.changed and lib.model_id != shipped and lib.catalog.models() == {shipped: 12}
        assert searcher.model_id == shipped and len(searcher) == 12  # the old vectors keep answering
        assert len(similar(searcher, 1, 3, RAW)) == 3
        report = lib.index(lib.catalog.folders(), workers=0)  # the caller re-embeds
        assert report.updated == 12
        assert searcher.model_id == lib.model_id and lib.catalog.models() == {lib.model_id: 12}
