"""The catalog: SQLite (WAL) holding tracks, tags, per-track status and embeddings, and what hangs
off them. It is the source of truth; the vector index and everything else are derived from it.
It knows nothing about audio.

One `Catalog` (one connection) made of one part per concern:
  store.py       the connection, transactions, meta, the generation and the change log
  migrations.py  the schema as numbered steps, run on open (`PRAGMA user_version`)
  tracks.py      tracks, their embeddings, the indexed folders; named queries, never SQL text
  segments.py    the segment sidecar's rows, each model's projection, the sidecar's upkeep
  listening.py   users, playlists, stars, plays (the Subsonic face)
  derived.py     predictions (classify) and the library map's cache
  companion.py   the Subsonic servers indexed from, and their artist and album ids of each track
  timbre.py      each track's timbre Gaussian and mutual-proximity moments (the timbre companion)
"""

from __future__ import annotations

from .companion import Companion
from .derived import Derived
from .listening import Listening
from .segments import Segments
from .timbre import Timbres
from .tracks import Track, Tracks

__all__ = ["Catalog", "Track"]


class Catalog(Tracks, Segments, Listening, Derived, Companion, Timbres):
    """`Catalog(path)` opens (creating or migrating) the catalog for writing; `readonly=True`
    opens an existing one for reading only (see `store.Store`)."""
