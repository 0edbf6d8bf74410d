"""The AudioMuse-AI Navidrome plugin's calls (server/audiomuse.py), replayed exactly as the plugin
makes them (audiomuse_plugin.py) against a real uvicorn server with a token, over the demo
library plus a 64 kbit/s copy of one track, that copy stored as companion mode stores a track
of another server (its path names Navidrome's song id): shapes the plugin decodes, ids (the
remote server's where there is one), and the order of `songspace similar` / `songspace path`."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

import audiomuse_plugin as plugin
from helpers import serving

from songspace import Library
from songspace.server.subsonic_library import artist_id
from songspace.synth import STYLES, synth_track, write_audio

TOKEN = "plugin-token"
REMOTE_ID = "Nd5ongId42"  # the copy, as if indexed from a Navidrome (companion mode): named by Navidrome's id


@pytest.fixture(scope="module")
def served(_indexed_demo, demo_music, tmp_path_factory):
    root = tmp_path_factory.mktemp("audiomuse") / "library"
    shutil.copytree(_indexed_demo, root)
    extra = tmp_path_factory.mktemp("copies")
    style = STYLES[0]  # demo track <style>-0, again, as a 64 kbit/s mp3: the same recording
    copy = write_audio(extra / "copy.mp3", synth_track(style, 8.0, sr=22050, seed=0), 22050,
                       tags={"artist": f"{style} synth", "title": f"{style} 0 (mp3)", "album": "elsewhere"},
                       bit_rate=64_000)
    with Library.open(root) as lib:
        lib.index([demo_music, extra], workers=0)
        with lib.catalog._transaction():  # what companion mode stores: the path names the remote song
            lib.catalog.db.execute("UPDATE tracks SET path = ? WHERE path = ?",
                                   (f"subsonic://alice@navidrome.local:4533/{REMOTE_ID}", str(copy)))
        tracks = lib.catalog.tracks()
    original = next(t for t in tracks if f"{style}-0." in t.path)
    copied = next(t for t in tracks if t.remote_id == REMOTE_ID)
    with serving(root, token=TOKEN) as base:
        yield base, root, original, copied, {str(t.id): t for t in tracks}


def cli_json(root, *args) -> list[dict]:
    from songspace.cli import app

    result = CliRunner().invoke(app, ["--library", str(root), *map(str, args), "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stdout
    return json.loads(result.stdout)


def plugin_ids(rows: list[dict], served) -> list[str]:
    """The ids the plugin sees for CLI rows: the remote server's id, else the catalog id."""
    by_id = served[4]
    return [by_id[str(r["id"])].remote_id or str(r["id"]) for r in rows]


def ask(base, path, token=TOKEN):
    answer = plugin.replay(base, path, token)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_similar_tracks_is_songspace_similar_with_the_querys_copies_left_out(served):
    base, root, original, copy, _ = served
    answer = ask(base, plugin.similar_tracks(str(original.id), 5))
    plugin.check_tracks(answer)
    expected = [r for r in cli_json(root, "similar", original.id, "-k", 6) if not r["copy_of_query"]][:5]
    assert [a["item_id"] for a in answer] == plugin_ids(expected, served)
    assert REMOTE_ID not in {a["item_id"] for a in answer}
    assert [1 - a["distance"] for a in answer] == pytest.approx([r["score"] for r in expected], abs=1e-3)
    first = expected[0]
    assert (answer[0]["title"], answer[0]["author"], answer[0]["album"]) == (first["title"], first["artist"], first["album"])


def test_without_eliminate_duplicates_every_file_is_listed(served):
    base, root, original, copy, _ = served
    answer = ask(base, plugin.similar_tracks(str(original.id), 4, eliminate_duplicates=False, radius_similarity=False))
    plugin.check_tracks(answer)
    expected = cli_json(root, "similar", original.id, "-k", 4, "--keep-copies")
    assert [a["item_id"] for a in answer] == plugin_ids(expected, served)
    assert answer[0]["item_id"] == REMOTE_ID  # the copy sounds most like it, named by the remote server's id


def test_a_remote_track_is_asked_for_by_the_remote_id_only(served):
    base, root, original, copy, _ = served
    answer = ask(base, plugin.similar_tracks(REMOTE_ID, 3, eliminate_duplicates=False))
    plugin.check_tracks(answer)
    assert [a["item_id"] for a in answer] == plugin_ids(cli_json(root, "similar", copy.id, "-k", 3, "--keep-copies"),
                                                         served)
    assert answer[0]["item_id"] == str(original.id)
    assert plugin.replay(base, plugin.similar_tracks(str(copy.id), 3), TOKEN).status_code == 404


def test_find_path_is_songspace_path(served):
    base, root, original, _, by_id = served
    end = next(t for t in by_id.values() if STYLES[-1] in t.path)
    answer = ask(base, plugin.find_path(str(original.id), str(end.id)))  # count 25: more than the library holds
    plugin.check_path(answer)
    ids = [e["item_id"] for e in answer["path"]]
    assert ids == plugin_ids(cli_json(root, "path", original.id, end.id, "-n", len(by_id)), served)
    assert ids[0] == str(original.id) and ids[-1] == str(end.id) and answer["path"][0]["distance"] == 0


def test_similar_artists_by_name_or_id_with_representative_songs(served):
    base, _, original, _, by_id = served
    name = original.artist
    plain = ask(base, plugin.similar_artists(name, False))
    plugin.check_artists(plain)
    others = {f"{s} synth" for s in STYLES} - {name}
    assert {a["artist"] for a in plain} == others and all(a["component_matches"] == [] for a in plain)
    assert [a["artist_id"] for a in plain] == [artist_id(a["artist"]) for a in plain]
    assert [a["distance"] for a in plain] == sorted(a["distance"] for a in plain)
    assert ask(base, plugin.similar_artists(artist_id(name), False)) == plain  # the /rest/ artist id works too

    mixed = ask(base, plugin.similar_artists(name, True))
    plugin.check_artists(mixed)
    assert [a["artist"] for a in mixed] == [a["artist"] for a in plain]
    for a in mixed:
        (cm,) = a["component_matches"]
        assert cm["artist1_representative_songs"] and cm["artist2_representative_songs"]
        by_item = {t.remote_id or str(t.id): t for t in by_id.values()}
        assert {by_item[s["item_id"]].artist for s in cm["artist1_representative_songs"]} == {name}
        assert {by_item[s["item_id"]].artist for s in cm["artist2_representative_songs"]} == {a["artist"]}
    mix = plugin.songs_by_artist(mixed, 6)
    assert len(mix) == 6 and len(set(mix)) == 6


def test_the_token_is_required_and_bad_requests_are_4xx(served):
    base, root, original, _, by_id = served
    assert plugin.replay(base, plugin.similar_tracks(str(original.id), 5), token=None).status_code == 401
    assert plugin.replay(base, plugin.similar_tracks(str(original.id), 5), token="wrong").status_code == 401
    missing = plugin.replay(base, plugin.similar_tracks("no-such-song", 5), TOKEN)
    assert missing.status_code == 404 and "item_id" in missing.json()["detail"]
    assert plugin.replay(base, plugin.similar_tracks(str(original.id), -1), TOKEN).status_code == 422
    assert ask(base, plugin.similar_tracks(str(original.id), 0)) == []  # as AudioMuse-AI: nothing asked
    everything = [r for r in cli_json(root, "similar", original.id, "-k", len(by_id) - 1) if not r["copy_of_query"]]
    assert [a["item_id"] for a in ask(base, plugin.similar_tracks(str(original.id), 100_000))] == \
        plugin_ids(everything, served)  # more than the library holds: all of it
    same = plugin.replay(base, plugin.find_path(str(original.id), str(original.id)), TOKEN)
    assert same.status_code == 400
    same = plugin.replay(base, plugin.find_path(REMOTE_ID, REMOTE_ID), TOKEN)  # named as asked, not by catalog id
    assert same.status_code == 400 and repr(REMOTE_ID) in same.json()["detail"], same.json()
    assert plugin.replay(base, plugin.similar_artists("Nobody At All", True), TOKEN).status_code == 404
