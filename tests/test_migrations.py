"""Catalog migrations: every step opens a catalog written by the schema before it, and nothing
stored is lost."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from songspace import segment_store as ss
from songspace.catalog import Catalog, migrations
from songspace.errors import CatalogError

# The schema as songspace wrote it before versioning (catalog.py up to the split into a package),
# copied here so that a change to the steps cannot change what this test opens.
UNVERSIONED = """
CREATE TABLE IF NOT EXISTS tracks (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL UNIQUE,
    size         INTEGER,
    mtime        REAL,
    content_hash TEXT,
    duration     REAL,
    title        TEXT,
    artist       TEXT,
    album        TEXT,
    genre        TEXT,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error        TEXT,
    updated_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    track_id       INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    model_id       TEXT NOT NULL,
    vector         BLOB NOT NULL,  -- float32, unit length
    segments       BLOB,           -- float16 (n, dim): one unit vector per few-second patch
    segment_starts BLOB            -- float32 (n,): where each patch starts in the track, seconds
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS folders (path TEXT PRIMARY KEY);  -- what `index` was pointed at
-- Labels songspace predicted (classify): kept apart from the file's own tags, never written to files.
CREATE TABLE IF NOT EXISTS predictions (
    track_id   INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,   -- what was predicted: genre, mood, ...
    label      TEXT NOT NULL,
    confidence REAL NOT NULL,   -- the classifier's probability for `label`
    model_id   TEXT NOT NULL,   -- the embedding it was predicted from
    PRIMARY KEY (track_id, name)
);
-- The library map (map.py): 2-D coordinates derived from the searched vectors, a cache; meta 'map'
-- holds the stamp (model id and generation) they were computed for.
CREATE TABLE IF NOT EXISTS map_points (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    x        REAL NOT NULL,
    y        REAL NOT NULL
);
-- The change log: one row per change to a track's searchable state, written in the same
-- transaction as the change, so derived indexes (vectors.py) apply only what is newer than them.
CREATE TABLE IF NOT EXISTS changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL,   -- no foreign key: a removed track's row stays
    op       TEXT NOT NULL       -- 'put' (stored or re-embedded), 'failed', 'removed'
);
-- The Subsonic face (server/subsonic.py). Users keep their plain password, as Subsonic's token
-- auth (md5(password + salt)) needs it: the file is made private (0600) when a user is added.
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS playlists (
    id      INTEGER PRIMARY KEY,
    owner   TEXT NOT NULL,
    name    TEXT NOT NULL,
    comment TEXT,
    public  INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    changed REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS playlist_entries (
    playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    track_id    INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    PRIMARY KEY (playlist_id, position)
);
CREATE TABLE IF NOT EXISTS stars (user TEXT NOT NULL, item TEXT NOT NULL, starred REAL NOT NULL, PRIMARY KEY (user, item));
CREATE TABLE IF NOT EXISTS plays (  -- scrobbles: may feed radio later
    id        INTEGER PRIMARY KEY,
    user      TEXT NOT NULL,
    track_id  INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    played_at REAL NOT NULL
);
-- The segment sidecar (segment_store.py): where each track's segment vectors lie in the file that
-- meta 'segments_file' names (the embeddings.segments BLOBs of older catalogs move there on open).
CREATE TABLE IF NOT EXISTS segment_records (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    offset   INTEGER NOT NULL,  -- bytes into the sidecar
    nbytes   INTEGER NOT NULL,
    n        INTEGER NOT NULL,  -- segments
    codec    INTEGER NOT NULL   -- segment_store.F16 (full) or I8 (projected)
);
-- The projection each model's segments are stored under: (dims, dim) float32, fitted once.
CREATE TABLE IF NOT EXISTS segment_projections (model_id TEXT PRIMARY KEY, basis BLOB NOT NULL, dims INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', '0');
"""

DIM = 32


def unit(rng, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def unversioned_catalog(path) -> dict:
    """A catalog as the last unversioned songspace left it, with a row in every table and
    segment vectors in the sidecar; what was written, to compare with."""
    rng = np.random.default_rng(0)
    db = sqlite3.connect(path)
    db.executescript(UNVERSIONED)
    vectors, segments = {}, {}
    sidecar = ss.SegmentFile(path.parent / ss.DEFAULT_FILE)
    for i in (1, 2, 3):
        db.execute("INSERT INTO tracks VALUES (?, ?, 10, 1.5, ?, 30.0, ?, 'artist', 'album', 'genre', 'ok', NULL, 5.0)",
                   (i, f"/music/{i}.flac", f"hash{i}", f"title {i}"))
        vectors[i] = unit(rng, 1)[0]
        db.execute("INSERT INTO embeddings VALUES (?, 'm1', ?, NULL, NULL)", (i, vectors[i].tobytes()))
        starts, vecs = np.arange(8, dtype=np.float32) * 1.5, unit(rng, 8)
        [(offset, nbytes)] = sidecar.append([ss.encode(i, starts, vecs, None)])
        db.execute("INSERT INTO segment_records VALUES (?, 'm1', ?, ?, 8, ?)", (i, offset, nbytes, ss.F16))
        segments[i] = starts, vecs
        db.execute("INSERT INTO changes (track_id, op) VALUES (?, 'put')", (i,))
    sidecar.close()
    db.execute("INSERT INTO tracks VALUES (4, '/music/bad.mp3', 1, 1.0, NULL, NULL, NULL, NULL, NULL, NULL, 'failed', "
               "'not audio', 5.0)")
    db.executescript("""
        UPDATE meta SET value = '9' WHERE key = 'generation';
        INSERT INTO meta VALUES ('model', 'mfcc');
        INSERT INTO folders VALUES ('/music');
        INSERT INTO predictions VALUES (1, 'genre', 'rock', 0.75, 'm1');
        INSERT INTO map_points VALUES (2, 0.5, -1.5);
        INSERT INTO meta VALUES ('map', 'm1:9');
        INSERT INTO users VALUES ('ann', 'secret', 100.0);
        INSERT INTO playlists VALUES (1, 'ann', 'mix', 'a comment', 1, 100.0, 200.0);
        INSERT INTO playlist_entries VALUES (1, 0, 3), (1, 1, 1);
        INSERT INTO stars VALUES ('ann', 'so-2', 300.0);
        INSERT INTO plays (user, track_id, played_at) VALUES ('ann', 2, 400.0), ('ann', 2, 500.0);
    """)
    db.commit()
    db.close()
    return {"vectors": vectors, "segments": segments}


def assert_survived(cat: Catalog, written: dict) -> None:
    """Every row `unversioned_catalog` wrote reads back through the catalog's named queries."""
    assert [t.path for t in cat.ok_tracks()] == ["/music/1.flac", "/music/2.flac", "/music/3.flac"]
    [bad] = cat.failed_tracks()
    assert bad.error == "not audio" and cat.counts() == {"ok": 3, "failed": 1}
    t = cat.by_path("/music/2.flac")
    assert (t.title, t.artist, t.album, t.genre, t.content_hash, t.model_id) == ("title 2", "artist", "album", "genre",
                                                                                   "hash2", "m1")
    ids, vecs = cat.vectors("m1")
    assert ids.tolist() == [1, 2, 3] and np.array_equal(vecs, np.stack([written["vectors"][i] for i in (1, 2, 3)]))
    found = cat.segments_of([1, 2, 3], "m1")
    for i, (starts, vecs) in written["segments"].items():
        assert np.allclose(found[i][0], starts, atol=1e-3) and np.allclose(found[i][1], vecs, atol=1e-3)
    assert cat.get_meta("model") == "mfcc" and cat.folders() == ["/music"]
    assert cat.last_change() == 3 and cat.changes_since(1) == (3, [2, 3])
    assert cat.predictions("genre") == {1: ("rock", 0.75)} and cat.map_points() == ("m1:9", {2: (0.5, -1.5)})
    assert cat.users() == [("ann", 100.0)] and cat.user_password("ann") == "secret"
    [mix] = cat.playlists()
    assert (mix["name"], mix["comment"], mix["public"], mix["track_ids"]) == ("mix", "a comment", True, [3, 1])
    assert cat.stars("ann") == {"so-2": 300.0} and cat.play_counts() == {2: (2, 500.0)}


def test_step_1_opens_an_unversioned_catalog(tmp_path):
    path = tmp_path / "catalog.sqlite"
    written = unversioned_catalog(path)
    ro = Catalog(path, readonly=True)  # a reader neither migrates nor minds the old version
    assert ro.schema_version == 0
    assert_survived(ro, written)
    ro.close()
    cat = Catalog(path)
    assert cat.schema_version == migrations.LATEST
    assert cat.generation == 9  # nothing a derived index must rebuild for
    assert_survived(cat, written)
    cat.close()


def test_step_1_creates_the_tables_an_older_catalog_lacks(tmp_path):
    path = tmp_path / "catalog.sqlite"
    db = sqlite3.connect(path)  # as the first songspace wrote it: no change log, no Subsonic tables
    db.executescript("""
        CREATE TABLE tracks (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER, mtime REAL,
            content_hash TEXT, duration REAL, title TEXT, artist TEXT, album TEXT, genre TEXT,
            status TEXT NOT NULL, error TEXT, updated_at REAL NOT NULL);
        CREATE TABLE embeddings (track_id INTEGER PRIMARY KEY, model_id TEXT NOT NULL, vector BLOB NOT NULL,
            segments BLOB, segment_starts BLOB);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO tracks VALUES (1, '/music/a.ogg', 1, 1.0, 'h', 3.0, NULL, NULL, NULL, NULL, 'ok', NULL, 5.0);
    """)
    db.commit()
    db.close()
    cat = Catalog(path)
    assert [t.path for t in cat.tracks()] == ["/music/a.ogg"] and cat.generation == 0
    cat.add_user("ann", "pw")
    assert cat.playlists() == [] and cat.last_change() == 0 and cat.users()[0][0] == "ann"
    cat.close()


@pytest.mark.parametrize("step", range(2, migrations.LATEST + 1))
def test_each_step_opens_a_catalog_of_the_version_before(tmp_path, monkeypatch, step):
    path = tmp_path / "catalog.sqlite"
    written = unversioned_catalog(path)
    with monkeypatch.context() as m:  # songspace as it was when `step - 1` was the newest step
        m.setattr(migrations, "STEPS", migrations.STEPS[: step - 1])
        m.setattr(migrations, "LATEST", step - 1)
        old = Catalog(path)
        assert old.schema_version == step - 1
        old.close()
    cat = Catalog(path)
    assert cat.schema_version == migrations.LATEST
    assert_survived(cat, written)
    cat.close()


def test_step_2_indexes_the_segment_records_by_codec(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite")
    plan = " ".join(r[-1] for r in cat.db.execute(
        "EXPLAIN QUERY PLAN SELECT model_id, SUM(n) FROM segment_records WHERE codec = 1 GROUP BY model_id"))
    assert "segment_records_by_codec" in plan
    cat.close()


def test_step_5_api_keys_go_with_their_user(tmp_path, monkeypatch):
    path = tmp_path / "catalog.sqlite"
    step = migrations.STEPS.index(migrations.step_5_api_keys) + 1
    with monkeypatch.context() as m:  # a catalog from before API keys, with a user
        m.setattr(migrations, "STEPS", migrations.STEPS[: step - 1])
        m.setattr(migrations, "LATEST", step - 1)
        old = Catalog(path)
        old.add_user("ann", "pw")
        old.close()
    cat = Catalog(path)
    cat.add_api_key("ann", "ab" * 32)
    assert cat.api_key_user("ab" * 32) == "ann" and cat.api_key_user("cd" * 32) is None
    cat.remove_user("ann")
    assert cat.api_key_user("ab" * 32) is None
    cat.close()


def test_a_catalog_from_a_newer_songspace_is_refused(tmp_path):
    path = tmp_path / "catalog.sqlite"
    Catalog(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    db.close()
    for readonly in (False, True):
        with pytest.raises(CatalogError, match=f"{path}.*newer songspace"):
            Catalog(path, readonly=readonly)


def test_step_4_adds_the_tag_fields_and_marks_the_tags_to_read_again(tmp_path, monkeypatch):
    path = tmp_path / "catalog.sqlite"
    written = unversioned_catalog(path)
    with monkeypatch.context() as m:  # a catalog of schema 3: the four tags only
        m.setattr(migrations, "STEPS", migrations.STEPS[:3])
        m.setattr(migrations, "LATEST", 3)
        Catalog(path).close()
    cat = Catalog(path)
    assert cat.schema_version == migrations.LATEST
    t = cat.by_path("/music/2.flac")
    assert (t.title, t.artist, t.album, t.genre) == ("title 2", "artist", "album", "genre")
    assert (t.tags_version, t.albumartist, t.track, t.year, t.artists, t.compilation, t.audio_hash) == \
        (0, None, None, None, (), False, None)  # the next index reads the files' tags again
    generation = cat.generation
    cat.put_tags(t.id, {"albumartist": "The Ensemble", "track": 2, "artists": ["A", "B"], "compilation": True,
                        "tags_version": 1}, audio_hash="abc")
    t = cat.by_path("/music/2.flac")
    assert (t.albumartist, t.track, t.artists, t.compilation, t.tags_version, t.audio_hash, t.title) == \
        ("The Ensemble", 2, ("A", "B"), True, 1, "abc", "title 2")
    assert cat.generation == generation + 1 and cat.last_change() == 3  # browsing refreshes; vectors untouched
    assert_survived(cat, written)
    cat.close()


def _catalog_at(path, monkeypatch, version: int) -> None:
    """Migrate the catalog at `path` only up to `version`, as the songspace of that step did."""
    with monkeypatch.context() as m:
        m.setattr(migrations, "STEPS", migrations.STEPS[:version])
        m.setattr(migrations, "LATEST", version)
        Catalog(path).close()


def test_step_6_folds_the_searched_text_of_every_track(tmp_path, monkeypatch):
    path = tmp_path / "catalog.sqlite"
    written = unversioned_catalog(path)
    step = migrations.STEPS.index(migrations.step_6_search_key) + 1
    _catalog_at(path, monkeypatch, step - 1)
    db = sqlite3.connect(path)
    db.execute("UPDATE tracks SET title = 'Café Colours', artist = 'Hoffmann' WHERE id = 3")  # written by that songspace
    db.commit()
    db.close()
    old = Catalog(path, readonly=True)  # a reader of the older catalog: the same answers, folded row by row
    assert [t.id for t in old.search_text("cafe hoffmann")] == [3]
    old.close()
    cat = Catalog(path)
    assert cat.db.execute("SELECT COUNT(*) FROM tracks WHERE search_key IS NULL").fetchone()[0] == 0
    assert [t.id for t in cat.search_text("cafe hoffmann")] == [3] == [t.id for t in cat.search_text("COLO*")]
    assert [t.id for t in cat.search_text("title 2")] == [2] and [t.id for t in cat.search_text("bad")] == [4]
    assert [t.id for t in cat.search_text("music")] == [1, 2, 3, 4]  # the folder a file lies in is searched
    cat.put_tags(2, {"title": "Geosphere"})  # a write folds again
    assert [t.id for t in cat.search_text("geo")] == [2] and cat.search_text("title 2") == []
    cat.put_tags(2, {"title": "title 2"})
    assert_survived(cat, written)
    cat.close()


def test_step_7_play_queues_bookmarks_and_ratings_per_user(tmp_path, monkeypatch):
    path = tmp_path / "catalog.sqlite"
    unversioned_catalog(path)
    _catalog_at(path, monkeypatch, migrations.STEPS.index(migrations.step_7_listening))
    cat = Catalog(path)
    cat.save_play_queue("ann", [3, 1], current=1, position=1500, changed_by="phone")
    q = cat.play_queue("ann")
    assert (q["track_ids"], q["current"], q["position"], q["changed_by"]) == ([3, 1], 1, 1500, "phone")
    assert cat.play_queue("bob") is None
    cat.save_bookmark("ann", 2, 9000, "chorus")
    cat.save_bookmark("ann", 2, 9500, None)  # moved, not doubled
    assert [(b["track_id"], b["position"], b["comment"]) for b in cat.bookmarks("ann")] == [(2, 9500, None)]
    cat.rate("ann", "2", 4)
    cat.rate("ann", "al-x", 5)
    cat.rate("ann", "al-x", 0)
    assert cat.ratings("ann") == {"2": 4} and cat.ratings("bob") == {}
    cat.remove([2])  # a track removed takes its bookmarks with it
    assert cat.bookmarks("ann") == []
    cat.save_play_queue("ann", [], None, 0, "phone")
    assert cat.play_queue("ann") is None
    cat.close()


def test_step_13_timbre_blobs_and_moments_per_track(tmp_path, monkeypatch):
    path = tmp_path / "catalog.sqlite"
    written = unversioned_catalog(path)
    _catalog_at(path, monkeypatch, migrations.STEPS.index(migrations.step_13_timbre))
    old = Catalog(path, readonly=True)  # a reader of the catalog before the step: no track has a blob
    assert old.timbres_of([1, 2, 3]) == {} and old.lacking_timbre("m1") == 3 and old.moments_of([1], "m1") == {}
    old.close()
    cat = Catalog(path)
    assert cat.without_timbre() == {1, 2, 3} and cat.lacking_timbre("m1") == 3  # what the next index fills in
    cat.put_timbre(2, b"\x01" * 460)
    cat.put_moments("m1", [2], np.array([[0.4, 0.1, 6.0, 1.0]]))
    assert cat.timbres_of([1, 2]) == {2: b"\x01" * 460} and cat.moments_of([2], "m1") == {2: (0.4, 0.1, 6.0, 1.0)}
    assert_survived(cat, written)
    vector = written["vectors"][3]
    cat.put_ok("/music/3.flac", size=10, mtime=1.5, content_hash="hash3", duration=30.0, tags={"title": "title 3"},
               model_id="m1", vector=vector, audio_hash=None, timbre=b"\x02" * 460)  # with its vector, one transaction
    assert cat.lacking_timbre("m1") == 1 and cat.lacking_moments("m1").tolist() == [3]
    cat.put_timbre(2, b"\x03" * 460)  # a new blob: its moments are measured again
    assert cat.moments_of([2], "m1") == {} and cat.lacking_moments("m1").tolist() == [2, 3]
    cat.remove([2])  # a track removed takes its rows with it
    assert cat.timbres_of([2]) == {} and cat.db.execute("SELECT COUNT(*) FROM proximity").fetchone()[0] == 0
    cat.close()
