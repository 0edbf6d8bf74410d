"""Tags out of the box: the tags head inside the model file, predictions stored by `index`,
shown by `tags`, `status` and radio's --json, and radio's --genre/--mood filters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from songspace import autotags
from songspace.catalog import Catalog
from songspace.models.checkpoint import load_model
from songspace.models.files import DEFAULT_MODEL
from songspace.models.tags_head import PREFIX, TagsHead, add_head, load_head


def copy_model(folder: Path, head: bool) -> Path:
    """The shipped model copied into `folder`, with its tags head or stripped of it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    shutil.copy(DEFAULT_MODEL, path)
    shutil.copy(DEFAULT_MODEL.with_suffix(".json"), path.with_suffix(".json"))
    if not head:
        save_file({k: v for k, v in load_file(str(path)).items() if not k.startswith(PREFIX)}, str(path))
        config = json.loads(path.with_suffix(".json").read_text())
        config.pop("tags", None)
        path.with_suffix(".json").write_text(json.dumps(config))
    return path


def test_the_shipped_model_has_a_head_of_genres_and_moods():
    head = load_head()
    assert head is not None
    assert set(head.groups) == {"genre", "mood"}
    assert "calm" in [head.names[i] for i in head.group("mood")]
    probs = head.probabilities(np.eye(1, head.weight.shape[1], dtype=np.float32))
    assert probs.shape == (1, len(head.names)) and ((probs > 0) & (probs < 1)).all()


def test_a_model_loads_with_and_without_a_head(tmp_path):
    shipped = load_model()
    bare = copy_model(tmp_path / "bare", head=False)
    assert load_head(bare) is None
    without = load_model(bare)  # still loads: the encoder is all it needs
    assert without.model_id == shipped.model_id
    for k, v in shipped.encoder.state_dict().items():
        assert np.array_equal(v.numpy(), without.encoder.state_dict()[k].numpy())

    dim = shipped.encoder.cfg.embed_dim
    rng = np.random.default_rng(0)
    head = TagsHead(("a", "b", "c"), ("genre", "genre", "mood"), rng.standard_normal((3, dim)).astype(np.float32),
                    rng.standard_normal(3).astype(np.float32), {"teacher": "test"})
    add_head(bare, head)
    back = load_head(bare)
    assert back.names == head.names and back.groups == head.groups and back.info["teacher"] == "test"
    assert np.array_equal(back.weight, head.weight) and np.array_equal(back.bias, head.bias)
    assert load_model(bare).model_id == shipped.model_id  # the head is not part of the model id


def test_index_stores_tags_shown_by_tags_and_status(music, songspace, library_dir):
    result = songspace("index", str(music), "--workers", "0", check=True)
    assert result.stderr.count("tags:") == 1
    head = load_head()
    catalog = Catalog(library_dir / "catalog.sqlite")
    stored = autotags.stored(catalog)
    ok = {t.id for t in catalog.ok_tracks()}
    catalog.close()
    assert set(stored["genre"]) == ok and set(stored["mood"]) == ok
    genres = {head.names[i] for i in head.group("genre")}
    assert {tag for tag, _ in stored["genre"].values()} <= genres

    rows = json.loads(songspace("tags", "--json", check=True).stdout)
    assert {r["id"]: r["predicted"]["genre"]["tag"] for r in rows["items"]} == {i: t for i, (t, _) in stored["genre"].items()}
    assert sum(rows["counts"]["mood"].values()) == len(ok)

    some = min(ok)
    one = json.loads(songspace("tags", str(some), "--json", check=True).stdout)
    ranked = one["tags"]["genre"]
    assert [t["lift"] for t in ranked] == sorted((t["lift"] for t in ranked), reverse=True)
    assert ranked[0]["tag"] == stored["genre"][some][0]  # the stored tag is the most distinctive one
    assert ranked[0]["probability"] == pytest.approx(stored["genre"][some][1], abs=1e-4)
    assert len(one["tags"]["mood"]) == len(head.group("mood"))

    status = json.loads(songspace("status", "--json", check=True).stdout)
    assert sum(status["predicted_tags"]["genre"].values()) == len(ok)
    assert "predicted" in songspace("status", check=True).stdout


def test_radio_filters_by_predicted_mood_and_lists_the_known_ones(indexed_library, songspace):
    songspace("tags", "--refresh", check=True)
    catalog = Catalog(indexed_library / "catalog.sqlite")
    moods = autotags.stored(catalog)["mood"]
    catalog.close()
    common = max({t for t, _ in moods.values()}, key=lambda t: sum(1 for m, _ in moods.values() if m == t))
    seed = min(moods)
    rows = json.loads(songspace("radio", str(seed), "-n", "3", "--mood", common, "--json", check=True).stdout)
    assert rows and all(r["predicted"]["mood"]["tag"] == common for r in rows)
    assert all(moods[r["id"]][0] == common for r in rows)

    wrong = songspace("radio", str(seed), "--mood", "grumpy")
    assert wrong.exit_code == 2
    assert "grumpy" in wrong.stderr and "calm" in wrong.stderr and "--mood" in wrong.stderr
    wrong = songspace("radio", str(seed), "--genre", "polka")
    assert wrong.exit_code == 2 and "rock" in wrong.stderr and "--genre" in wrong.stderr


def test_a_model_without_a_head_has_no_tags_said_once(music, songspace, tmp_path):
    bare = copy_model(tmp_path / "bare", head=False)
    songspace("use", str(bare), check=True)
    result = songspace("index", str(music), "--workers", "0", check=True)
    assert result.stderr.count("tags unavailable") == 1
    shown = songspace("tags")
    assert shown.exit_code == 2 and "tags unavailable" in shown.stderr and "no tags head" in shown.stderr
    assert songspace("radio", "1", "--mood", "calm").exit_code == 2
    assert songspace("similar", "1", check=True).exit_code == 0  # everything else works as before


def test_tags_of_a_model_left_behind_are_not_kept(music, songspace, library_dir):
    songspace("index", str(music), "--workers", "0", check=True)
    assert json.loads(songspace("status", "--json", check=True).stdout)["predicted_tags"]["genre"]
    songspace("use", "mfcc", check=True)  # MFCC statistics: no tags head
    songspace("index", str(music), "--workers", "0", check=True)
    assert not any(json.loads(songspace("status", "--json", check=True).stdout)["predicted_tags"].values())
    catalog = Catalog(library_dir / "catalog.sqlite")
    assert not any(autotags.stored(catalog).values())
    catalog.close()


@pytest.mark.parametrize("bad", [np.zeros((2, 3), np.float32), np.zeros(5, np.float32)])
def test_the_head_refuses_vectors_of_another_size(bad):
    from songspace.errors import ModelError

    with pytest.raises(ModelError, match="track vectors"):
        load_head().probabilities(bad)


def test_similar_and_path_json_rows_carry_the_stored_predictions(indexed_library, songspace):
    songspace("tags", "--refresh", check=True)
    catalog = Catalog(indexed_library / "catalog.sqlite")
    stored = autotags.stored(catalog)
    catalog.close()
    a, b = sorted(stored["genre"])[:2]
    for args in (("similar", str(a), "-k", "3"), ("path", str(a), str(b), "-n", "4")):
        rows = json.loads(songspace(*args, "--json", check=True).stdout)
        assert rows
        for r in rows:
            for group in ("genre", "mood"):
                assert r["predicted"][group]["tag"] == stored[group][r["id"]][0], (args, r["id"])


def test_index_tags_only_the_tracks_it_changed(music, songspace, library_dir):
    """After an index the tags of the tracks it stored are predicted, not the whole library's
    again; `tags --refresh` redoes them all."""
    from songspace.synth import STYLES, synth_track, write_audio

    songspace("index", str(music), "--workers", "0", check=True)
    catalog = Catalog(library_dir / "catalog.sqlite")
    kept = min(t.id for t in catalog.ok_tracks())
    catalog.db.execute("UPDATE predictions SET label = 'marker' WHERE track_id = ?", (kept,))
    catalog.close()
    write_audio(music / "added.wav", synth_track(STYLES[0], 8.0, seed=99), 16000)

    again = songspace("index", str(music), "--workers", "0", check=True)
    assert "tags: 1 tracks tagged" in again.stderr
    catalog = Catalog(library_dir / "catalog.sqlite")
    stored, ok = autotags.stored(catalog), {t.id for t in catalog.ok_tracks()}
    catalog.close()
    assert set(stored["genre"]) == ok and set(stored["mood"]) == ok  # the new track has its tags
    assert stored["genre"][kept][0] == "marker" and stored["mood"][kept][0] == "marker"  # the others untouched

    assert "no track changed" in songspace("index", str(music), "--workers", "0", check=True).stderr
    songspace("tags", "--refresh", check=True)
    catalog = Catalog(library_dir / "catalog.sqlite")
    assert autotags.stored(catalog)["genre"][kept][0] != "marker"
    catalog.close()
