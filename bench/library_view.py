"""How long the library view takes to build (server/subsonic_library.py: the artists, albums and
folders behind Subsonic and the page's album and artist views), at 10k and 100k tracks.

For each size it writes a synthetic catalog tagged as real libraries are (album artists, featured
artists, two-disc albums, compilations with and without an album artist, untagged loose files,
MusicBrainz ids, sort names, ReplayGain, two indexed folders and a few files outside them), rows
bulk-inserted in one transaction into the schema `songspace index` makes. Then, in a fresh child
process for each:

  rows     the baseline: the same rows read alone (every column of an ok track, one query,
           fetchall), nothing built from them
  view     what the first Subsonic call or album view waits for: `subsonic_library.view`, the
           catalog read and the view built from it

The child also digests the view (every id, name, order and key, and the Subsonic shape of every
song, album and artist), so two versions of the code can be checked to give the same answers.
`--compare REV` runs the view step a second time with the code of git revision REV (its `src`,
from `git archive`), in the same run: the "before" beside the "after", and whether the digests match.

    .venv/bin/python bench/library_view.py                         # 10k and 100k (~1 min)
    .venv/bin/python bench/library_view.py --compare f4d652d --repeat 3  # beside the code before (~3 min)
    .venv/bin/python bench/library_view.py --sizes 100000 --profile
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
MODEL_ID = "synthetic-256"
GENRES = ["Rock", "Jazz", "Electronic", "Pop", "Hip-Hop", "Classical", "Folk", "Metal", "Soul", "Ambient"]
WORDS = ["Night", "Blue", "River", "Ghost", "Gold", "Ünïcode", "Café", "Storm", "Echo", "Glass", "Fire", "Moon",
         "Северный", "夜", "Road", "Heart", "Dream", "Stone", "Light", "Wave"]
EXTS = [".flac", ".mp3", ".ogg", ".m4a", ".opus"]


# ---------------------------------------------------------------------------------------------
# Synthetic library
# ---------------------------------------------------------------------------------------------


def _name(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def synthetic_rows(n: int, roots: list[str], seed: int = 0) -> list[dict]:
    """`n` tracks' catalog fields (tags.TAG_COLUMNS and the file's), album by album."""
    rng = random.Random(seed)
    n_artists = max(4, n // 120)
    artists = [f"{'The ' if i % 7 == 0 else ''}{_name(rng, 2)} {i}" for i in range(n_artists)]
    rows: list[dict] = []
    album_no = 0
    while len(rows) < n:
        album_no += 1
        root = roots[album_no % len(roots)]
        size = rng.randint(6, 16)
        discs = 2 if rng.random() < 0.12 else 1
        kind = rng.random()
        year = rng.randint(1960, 2025)
        album = f"{_name(rng, 2)} {album_no}"
        genres = rng.sample(GENRES, rng.randint(1, 3))
        common = {"album": album, "date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "year": year,
                  "original_date": str(year - rng.randint(0, 5)), "genre": genres[0],
                  "genres": genres if len(genres) > 1 else None, "disc_total": discs, "track_total": size,
                  "mb_album_id": f"{album_no:08x}-0000-4000-8000-{album_no:012x}" if rng.random() < 0.7 else None,
                  "album_sort": album if rng.random() < 0.3 else None, "rg_album_gain": -7.5, "rg_album_peak": 0.98,
                  "folder_image": None}
        if kind < 0.03:  # loose files: no tags at all, one folder of them
            common = {}
            folder = f"{root}/Loose/{album_no}"
        elif kind < 0.13:  # a compilation: each track by someone else
            if kind < 0.08:
                common["albumartist"] = "Various Artists"
            common["compilation"] = 1
            folder = f"{root}/Compilations/{album}"
        else:  # an artist's album, mostly with an album artist tag, a guest on some tracks
            main = rng.choice(artists)
            if rng.random() < 0.8:
                common.update(albumartist=main, mb_albumartist_id=f"{album_no % n_artists:08x}-0000-4000-8000-0",
                              albumartist_sort=main.removeprefix("The ") + ", The" if main.startswith("The ") else None)
            folder = f"{root}/{main}/{year} - {album}"
        if rng.random() < 0.5 and common:
            common["folder_image"] = f"{folder}/cover.jpg"
        ext = rng.choice(EXTS)
        for i in range(min(size, n - len(rows))):
            disc = 1 + i * discs // size
            number = i - (disc - 1) * (size // discs) + 1
            title = _name(rng, rng.randint(1, 4))
            sub = f"{folder}/CD{disc}" if discs > 1 else folder
            path = f"{sub}/{number:02d} {title}.{ext[1:]}"
            if not common:
                rows.append({"path": path})
                continue
            artist = rng.choice(artists) if "compilation" in common or rng.random() < 0.1 else main
            row = {**common, "path": path, "title": title, "artist": artist, "track": number,
                   "disc": disc if discs > 1 or rng.random() < 0.5 else None, "mb_track_id":
                   f"{len(rows):08x}-0000-4000-8000-000000000000" if common.get("mb_album_id") else None,
                   "rg_track_gain": round(rng.uniform(-12, 0), 2), "rg_track_peak": round(rng.random(), 6),
                   "title_sort": None, "artist_sort": artist.removeprefix("The ") if rng.random() < 0.3 else None}
            if rng.random() < 0.1:  # featuring: two credited artists
                other = rng.choice(artists)
                row["artist"] = f"{artist} feat. {other}"
                row["artists"] = [artist, other]
            if rng.random() < 0.05:
                row["lyrics"] = "la la la\n" * 20
            rows.append(row)
    for i in range(0, n, 5000):  # a few files outside every indexed folder
        rows[i]["path"] = f"/elsewhere/{i}/{Path(rows[i]['path']).name}"
    return rows


def write_catalog(path: Path, n: int, roots: list[str]) -> float:
    """A catalog of `n` ok tracks (ids 1..n) with embeddings, written in bulk."""
    sys.path.insert(0, str(SRC))
    from songspace.catalog import Catalog
    from songspace.catalog.search import track_key
    from songspace.tags import LISTS, TAG_COLUMNS, TAGS_VERSION

    Catalog(path).close()  # the schema, exactly as the indexer makes it
    t0 = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    now = time.time()
    cols = ["id", "path", "size", "mtime", "content_hash", "duration", "status", "updated_at", *TAG_COLUMNS,
            "audio_hash", "tags_version", "search_key"]
    vector = bytes(4 * 256)
    values = []
    for i, r in enumerate(synthetic_rows(n, roots), 1):
        tags = {c: r.get(c) for c in TAG_COLUMNS}
        for name in LISTS:
            tags[name] = json.dumps(r[name], ensure_ascii=False) if r.get(name) else None
        tags["compilation"] = int(bool(r.get("compilation")))
        key = track_key(r.get("title"), r.get("artist"), r.get("artists") or (), r.get("albumartist"), r.get("album"),
                        r.get("genre"), r.get("genres") or (), r["path"])
        values.append((i, r["path"], 4_000_000 + i, now - i, f"{i:032x}", 180.0 + i % 200, "ok", now,
                       *tags.values(), f"{i:032x}", TAGS_VERSION, key))
    db.executemany(f"INSERT INTO tracks ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values)
    db.executemany("INSERT INTO embeddings VALUES (?, ?, ?, NULL, NULL)",
                   ((i, MODEL_ID, vector) for i in range(1, n + 1)))
    db.executemany("INSERT INTO folders VALUES (?)", [(r,) for r in roots])
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# Child steps (each in a fresh process, with the code under test first on sys.path)
# ---------------------------------------------------------------------------------------------


class _Searcher:
    """What `subsonic_library.view` asks of a Searcher: its catalog, and something to make the
    view once (the real one keeps it in the snapshot; building the vector index is not timed here)."""

    def __init__(self, catalog):
        self.catalog = catalog

    def derived(self, name, build):
        return build()


def digest(v) -> str:
    """A hash of everything the view answers: every id, name, order and search key, and the
    Subsonic shape of every song, album and artist."""
    import hashlib

    from songspace.server import subsonic_library as lib

    h = hashlib.sha256()

    def put(x):
        h.update(json.dumps(x, sort_keys=True, default=str).encode())

    marks = lib.Marks()
    put([v.generation, [d.id for d in v.roots], list(v.songs), v.artist_keys, v.album_keys])
    for t in v.songs.values():
        put([lib.song(v, t, marks), v.album_of[t.id].id, v.dir_of[t.id].id])
    for a in v.albums.values():
        put([lib.album(a, marks), lib.album_dir(a, marks), [t.id for t in a.songs]])
    for a in v.artists.values():
        put([lib.artist(a, marks), [x.id for x in a.albums], [t.id for t in a.songs],
             [x.id for x in lib.albums_of(v, a)]])
    for d in v.dirs.values():
        put([d.id, d.path, d.name, d.folder, d.parent, [x.id for x in d.dirs], [t.id for t in d.songs]])
    return h.hexdigest()[:16]


def child(args) -> dict:
    from songspace.catalog import Catalog
    from songspace.server import subsonic_library as lib
    from songspace.tags import TAG_COLUMNS

    if args.child == "rows":
        db = sqlite3.connect(args.catalog)
        columns = ", ".join(f"t.{c}" for c in ("id", "path", "size", "mtime", "content_hash", "duration", "status",
                                                "error", *TAG_COLUMNS, "audio_hash", "tags_version"))
        t0, c0 = time.perf_counter(), time.process_time()
        rows = db.execute(f"SELECT {columns}, e.model_id FROM tracks t LEFT JOIN embeddings e ON e.track_id = t.id "
                          "WHERE t.status = 'ok' ORDER BY t.id").fetchall()
        return {"s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "n": len(rows)}
    cat = Catalog(args.catalog)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0, c0 = time.perf_counter(), time.process_time()
    v = lib.view(_Searcher(cat))
    out = {"s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "n": len(v.songs),
           "albums": len(v.albums), "artists": len(v.artists), "dirs": len(v.dirs)}
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(18)
        out["profile"] = text.getvalue()
    out["digest"] = digest(v)
    return out


def run_child(step: str, catalog: Path, src: Path, profile: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", step, "--catalog", str(catalog)] + (["--profile"] if profile else [])
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"child {step} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def source_of(rev: str, into: Path) -> Path:
    """The `src` folder of git revision `rev`, extracted under `into`."""
    archive = into / "src.tar"
    subprocess.run(["git", "-C", str(HERE.parent), "archive", "-o", str(archive), rev, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / rev.replace("/", "_"), filter="data")
    return into / rev.replace("/", "_") / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--compare", metavar="REV", help="also time the view with the code of this git revision")
    parser.add_argument("--profile", action="store_true", help="print the busiest functions of each view build")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each step; the one of least CPU time shown")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--catalog", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory(prefix="library-view-") as tmp:
        tmp = Path(tmp)
        roots = [str(tmp / "music"), str(tmp / "more music")]
        for r in roots:
            os.makedirs(r)  # real folders: the view tells a folder from a file by looking
        versions = [("this code", SRC)]
        if args.compare:
            versions.append((args.compare, source_of(args.compare, tmp)))
        print(f"{'tracks':>8} {'step':<22} {'wall s':>8} {'cpu s':>8}  view")
        for n in args.sizes:
            catalog = tmp / f"catalog-{n}.db"
            write_s = write_catalog(catalog, n, roots)
            print(f"{n:>8} {'(catalog written)':<22} {write_s:8.2f}")
            rows = min((run_child("rows", catalog, SRC, False) for _ in range(args.repeat)), key=lambda r: r["cpu_s"])
            print(f"{n:>8} {'rows alone (baseline)':<22} {rows['s']:8.2f} {rows['cpu_s']:8.2f}  {rows['n']} rows")
            digests = set()
            for label, src in versions:
                # the least CPU time of --repeat runs: the steadier figure on a shared machine
                r = min((run_child("view", catalog, src, args.profile) for _ in range(args.repeat)),
                        key=lambda r: r["cpu_s"])
                digests.add(r["digest"])
                print(f"{n:>8} {'view, ' + label:<22} {r['s']:8.2f} {r['cpu_s']:8.2f}  {r['n']} songs, "
                      f"{r['albums']} albums, {r['artists']} artists, {r['dirs']} dirs; digest {r['digest']}")
                if args.profile:
                    print(r["profile"])
            if len(versions) > 1:
                print(f"{n:>8} same answers: {'yes' if len(digests) == 1 else 'NO'}")
            catalog.unlink()


if __name__ == "__main__":
    main()
