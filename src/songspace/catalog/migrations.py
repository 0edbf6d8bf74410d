"""The catalog's schema, as numbered migration steps.

`PRAGMA user_version` says which steps a file has been through: 0 for a catalog written before
versioning (of any age: its tables are whatever songspace made then). Opening a catalog for
writing runs the steps it has not had, in order, each recording its number when done; so a
catalog of any earlier songspace opens as the newest, and nothing stored is lost. A step must
be safe to run again after an interruption (CREATE ... IF NOT EXISTS; data moved in resumable
batches). A catalog written by a newer songspace (a higher number than `LATEST`) is refused.

A new catalog field is one new step at the end of `STEPS` (ALTER TABLE ... ADD COLUMN, a new
table, an index), tested in tests/test_migrations.py by opening a catalog written at the
previous version.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np

from .. import segment_store
from ..errors import CatalogError

# Step 1: every table of songspace as it stood when versioning began. On a catalog of version 0
# it creates whatever that catalog was still missing.
TABLES = """
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
    segments       BLOB,           -- before the sidecar: float16 (n, dim); NULL once moved there
    segment_starts BLOB            -- before the sidecar: float32 (n,) starts in seconds
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
-- meta 'segments_file' names.
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


def step_1_tables(cat) -> None:
    """Every table (those a catalog of version 0 lacks are created), and the segment BLOBs of
    catalogs older than the sidecar moved into it."""
    cat.db.executescript(TABLES)
    move_segment_blobs(cat)


def step_2_segment_index(cat) -> None:
    """An index for the question segment upkeep asks after every index run: how many full
    segments each model has stored (segments.py, `Segments.upkeep`)."""
    cat.db.execute("CREATE INDEX IF NOT EXISTS segment_records_by_codec ON segment_records (codec, model_id)")


def step_3_statuses(cat) -> None:
    """Tracks may also be 'silent' or 'too_short' (audio that decoded but is no music to compare).
    The status CHECK constraint cannot be altered in SQLite, so the tracks table is rebuilt once
    as SQLite's ALTER TABLE documentation prescribes: one transaction (a kill leaves the old table
    or the new, never neither), ids kept, so every table pointing at tracks still points right."""
    sql = cat.db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tracks'").fetchone()[0]
    if "'silent'" in sql or "CHECK" not in sql:  # rebuilt by an interrupted run, or never constrained
        return
    create = sql.replace("CHECK (status IN ('ok', 'failed'))",
                         "CHECK (status IN ('ok', 'failed', 'silent', 'too_short'))")
    if create == sql:
        raise CatalogError(f"{cat.path}: the tracks table has an unexpected shape; cannot add track statuses")
    columns = ", ".join(row[1] for row in cat.db.execute("PRAGMA table_info(tracks)"))
    cat.db.execute("PRAGMA foreign_keys=OFF")  # dropping the old table must not cascade
    try:
        with cat._transaction():
            cat.db.execute(re.sub(r"^CREATE TABLE (IF NOT EXISTS )?\"?tracks\"?", "CREATE TABLE tracks_new", create))
            cat.db.execute(f"INSERT INTO tracks_new ({columns}) SELECT {columns} FROM tracks")
            cat.db.execute("DROP TABLE tracks")
            cat.db.execute("ALTER TABLE tracks_new RENAME TO tracks")
            if cat.db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise CatalogError(f"{cat.path}: rows point at tracks that are gone")
    finally:
        cat.db.execute("PRAGMA foreign_keys=ON")


# Step 4: the tags a library really has (tags.py). Multi-valued fields (artists, genres) are JSON
# lists in one column: the catalog reads a track as one row, and SQLite's json_each can still
# look inside. `tags_version` 0 marks a row whose tags an older reader filled: the next index
# re-reads them without analysing the audio again (library.py).
TAG_FIELDS = """
albumartist TEXT; artists TEXT; genres TEXT;
track INTEGER; track_total INTEGER; disc INTEGER; disc_total INTEGER;
date TEXT; year INTEGER; original_date TEXT; original_year INTEGER; compilation INTEGER NOT NULL DEFAULT 0;
mb_track_id TEXT; mb_album_id TEXT; mb_artist_id TEXT; mb_albumartist_id TEXT;
artist_sort TEXT; albumartist_sort TEXT; title_sort TEXT; album_sort TEXT;
rg_track_gain REAL; rg_track_peak REAL; rg_album_gain REAL; rg_album_peak REAL;
picture_type INTEGER; picture_mime TEXT; folder_image TEXT; lyrics TEXT; lyrics_file TEXT;
audio_hash TEXT; tags_version INTEGER NOT NULL DEFAULT 0
"""


def step_4_tags(cat) -> None:
    """Album artist, track and disc numbers, dates, compilation, MusicBrainz ids, sort names,
    ReplayGain, pictures and lyrics (where to find them), the hash of the audio alone: new
    columns of tracks, filled by the next index from the files' tags (tags only, no analysis).
    One transaction; a column already there (an interrupted run) is not added again."""
    have = {row[1] for row in cat.db.execute("PRAGMA table_info(tracks)")}
    with cat._transaction():
        for field in TAG_FIELDS.split(";"):
            name = field.split()[0]
            if name not in have:
                cat.db.execute(f"ALTER TABLE tracks ADD COLUMN {field.strip()}")


def step_5_api_keys(cat) -> None:
    """OpenSubsonic API keys (`songspace user key NAME`): only each key's SHA-256 is kept, so the
    catalog cannot give a key away; a user's keys go with the user."""
    cat.db.execute("CREATE TABLE IF NOT EXISTS api_keys (key_sha256 TEXT PRIMARY KEY, "
                   "user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, created REAL NOT NULL)")


def step_6_search_key(cat) -> None:
    """Each track's searched text, folded (catalog/search.py): a column filled here once, a few
    thousand rows per transaction (an interrupted run resumes with the rows still empty), and
    on every write after."""
    from .search import track_key

    if "search_key" not in {row[1] for row in cat.db.execute("PRAGMA table_info(tracks)")}:
        cat.db.execute("ALTER TABLE tracks ADD COLUMN search_key TEXT")
    while True:
        with cat._transaction():
            rows = cat.db.execute("SELECT id, title, artist, artists, albumartist, album, genre, genres, path "
                                  "FROM tracks WHERE search_key IS NULL LIMIT 5000").fetchall()
            cat.db.executemany("UPDATE tracks SET search_key = ? WHERE id = ?",
                               [(track_key(title, artist, json.loads(artists) if artists else (), albumartist,
                                           album, genre, json.loads(genres) if genres else (), path), i)
                                for i, title, artist, artists, albumartist, album, genre, genres, path in rows])
        if not rows:
            break


# Step 7: what a Subsonic user keeps besides stars and playlists (catalog/listening.py).
LISTENING = """
CREATE TABLE IF NOT EXISTS play_queues (  -- one per user: what they were playing, to resume elsewhere
    user       TEXT PRIMARY KEY,
    track_ids  TEXT NOT NULL,   -- JSON list, in order (a track removed since simply drops out)
    current    INTEGER,         -- the position in track_ids (from 0) of the track playing
    position   INTEGER NOT NULL DEFAULT 0,  -- milliseconds into it
    changed    REAL NOT NULL,
    changed_by TEXT NOT NULL    -- the client that saved it
);
CREATE TABLE IF NOT EXISTS bookmarks (
    user     TEXT NOT NULL,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,  -- milliseconds
    comment  TEXT,
    created  REAL NOT NULL,
    changed  REAL NOT NULL,
    PRIMARY KEY (user, track_id)
);
CREATE TABLE IF NOT EXISTS ratings (  -- 1 to 5 stars, per user, of the face's ids (songs, albums, artists)
    user   TEXT NOT NULL,
    item   TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    PRIMARY KEY (user, item)
);
"""


def step_7_listening(cat) -> None:
    """Play queues, bookmarks and ratings of Subsonic users."""
    cat.db.executescript(LISTENING)


def step_8_stream_defaults(cat) -> None:
    """Each Subsonic user's stream defaults (`songspace user stream`): a bit rate cap in kbit/s
    and a format to transcode to, used when a player asks for neither (issue 24, transcoding).
    Its own table, so nothing else in `users` changes; a user's defaults go with the user."""
    cat.db.execute("CREATE TABLE IF NOT EXISTS stream_defaults (user TEXT PRIMARY KEY "
                   "REFERENCES users(name) ON DELETE CASCADE, max_bit_rate INTEGER, format TEXT)")


def step_9_remote_songs(cat) -> None:
    """Companion mode (catalog/companion.py): the servers a library was indexed from (their
    addresses, never a password), and for each track indexed from one, the ids that server gives
    its artist and album, so the AudioMuse-AI plugin, which names artists by the server's ids, is
    answered in them. Tables of their own, so `tracks` and `Track` stay as they are; a track's
    row goes with the track."""
    cat.db.execute("CREATE TABLE IF NOT EXISTS remote_servers (address TEXT PRIMARY KEY, indexed_at REAL)")
    cat.db.execute("CREATE TABLE IF NOT EXISTS remote_songs (track_id INTEGER PRIMARY KEY "
                   "REFERENCES tracks(id) ON DELETE CASCADE, artist_id TEXT, album_id TEXT)")
    cat.db.execute("CREATE INDEX IF NOT EXISTS remote_songs_by_artist ON remote_songs (artist_id)")


def _add_column(cat, table: str, column: str) -> None:
    """ALTER TABLE `table` ADD COLUMN `column` ("name TYPE"), unless it is there already: a step
    may run again over tables a later version made (a catalog's version set back by hand)."""
    if column.split()[0] not in {row[1] for row in cat.db.execute(f"PRAGMA table_info({table})")}:
        cat.db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def step_10_star_songs(cat) -> None:
    """A song of each starred album, noted when it is starred: re-read tags (a new album artist)
    can regroup an album under a new id, and its star then follows that song to the album it is
    in now (server/subsonic_request.py). NULL for other stars and those made before."""
    _add_column(cat, "stars", "song INTEGER")


def step_11_remote_suffix(cat) -> None:
    """Companion mode: each remote song's file suffix ("flac"), as its server's entry says, for
    the song entries songspace serves (a remote track's path has none): players pick a decoder
    and name their cached files by it. NULL until the next `index subsonic://...` fills it."""
    _add_column(cat, "remote_songs", "suffix TEXT")


def step_12_rating_songs(cat) -> None:
    """A song of each rated album, noted when it is rated, as step 10 does for stars: an album
    regrouped under a new id takes its rating with it (server/subsonic_request.py). NULL for
    other ratings and those made before."""
    _add_column(cat, "ratings", "song INTEGER")


# Step 13: the timbre companion (catalog/timbre.py, proximity.py).
TIMBRE = """
CREATE TABLE IF NOT EXISTS timbre (  -- timbre.pack: float16 mean + Cholesky factor, 460 bytes
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    blob     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS proximity (  -- mutual proximity's moments against a sample of the library
    track_id  INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    model_id  TEXT NOT NULL,  -- the cosine half depends on the model
    cos_mu    REAL NOT NULL,
    cos_sd    REAL NOT NULL,
    timbre_mu REAL NOT NULL,
    timbre_sd REAL NOT NULL,
    PRIMARY KEY (track_id, model_id)
);
"""


def step_13_timbre(cat) -> None:
    """Each track's timbre Gaussian and its mutual-proximity moments: tables of their own, empty
    until the next `index` fills them (the audio of every track decoded once more, no CNN);
    search ranks by cosine alone until every searchable track has one."""
    cat.db.executescript(TIMBRE)


STEPS = [step_1_tables, step_2_segment_index, step_3_statuses, step_4_tags, step_5_api_keys,
         step_6_search_key, step_7_listening, step_8_stream_defaults,
         step_9_remote_songs, step_10_star_songs, step_11_remote_suffix,
         step_12_rating_songs, step_13_timbre]  # step n is STEPS[n - 1]; only ever append
LATEST = len(STEPS)


def check_version(cat) -> int:
    """The file's schema version; CatalogError when a newer songspace wrote it."""
    cat.db.execute("PRAGMA schema_version").fetchone()  # a file that is not a database fails here
    version = cat.schema_version
    if version > LATEST:
        raise CatalogError(f"{cat.path}: written by a newer songspace (catalog schema {version}; this one "
                           f"knows up to {LATEST}); upgrade songspace to open it")
    return version


def migrate(cat) -> None:
    """Run the steps the catalog has not had, in order, each recording its number when done."""
    for number in range(check_version(cat) + 1, LATEST + 1):
        STEPS[number - 1](cat)
        cat.db.execute(f"PRAGMA user_version = {number}")


def move_segment_blobs(cat) -> None:
    """Move segment BLOBs of a catalog older than the sidecar into it (projected once a model has
    enough of them), a few hundred tracks per transaction, so an interrupted migration resumes;
    nothing is analysed again. VACUUM gives the space back when it is quick."""
    db = cat.db
    models = [r[0] for r in db.execute("SELECT DISTINCT model_id FROM embeddings WHERE segments IS NOT NULL")]
    if not models:
        return
    for model_id in models:
        if cat.segment_projection(model_id) is None:
            total = db.execute("SELECT COALESCE(SUM(LENGTH(segment_starts)), 0) / 4 FROM embeddings "
                               "WHERE model_id = ? AND segments IS NOT NULL", (model_id,)).fetchone()[0]
            if total >= segment_store.FIT_SEGMENTS:  # fitted from up to ~200k segments spread over the library
                every = max(1, int(total // 200_000))
                rows = db.execute(
                    "SELECT segments, segment_starts FROM embeddings WHERE model_id = ? AND segments IS NOT NULL "
                    "AND LENGTH(segment_starts) > 0 ORDER BY track_id", (model_id,))
                sample = [np.frombuffer(seg, np.float16).reshape(len(st) // 4, -1).astype(np.float32)
                          for k, (seg, st) in enumerate(rows) if k % every == 0]  # streamed, never all at once
                proj = segment_store.fit_projection(np.concatenate(sample))
                db.execute("INSERT INTO segment_projections VALUES (?, ?, ?)", (model_id, proj.tobytes(), proj.shape[0]))
    last = -1
    while True:
        with cat._transaction():
            # Keyset paging: each batch starts after the last, instead of rescanning moved rows.
            rows = db.execute("SELECT track_id, model_id, segments, segment_starts FROM embeddings "
                              "WHERE segments IS NOT NULL AND track_id > ? ORDER BY track_id LIMIT 256",
                              (last,)).fetchall()
            if rows:
                last = rows[-1][0]
            items = []
            for track_id, model_id, seg, st in rows:
                starts = np.frombuffer(st or b"", dtype=np.float32)
                if len(starts):  # an empty BLOB (a method without segments) has nothing to move
                    items.append((track_id, model_id, starts,
                                  np.frombuffer(seg, np.float16).reshape(len(starts), -1).astype(np.float32)))
            if items:
                cat._put_segments(items)
            db.executemany("UPDATE embeddings SET segments = NULL, segment_starts = NULL WHERE track_id = ?",
                           [(r[0],) for r in rows])
            if not rows:
                cat._bump()
                break
    pages, free = (db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count"))
    size = pages * db.execute("PRAGMA page_size").fetchone()[0]
    if size <= 512 * 2**20:
        db.execute("VACUUM")
    else:
        warnings.warn(f"{cat.path}: segment vectors moved to the sidecar; {free} free pages stay in the file "
                      f"until it is vacuumed (sqlite3 {cat.path} VACUUM, with the library idle)", stacklevel=3)

