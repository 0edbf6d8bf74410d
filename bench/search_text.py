"""Text search over a large catalog: the stored folded key searched in SQL (catalog/search.py,
what `Catalog.search_text` and the Subsonic search do) beside the baseline it replaced, folding
each row's text in Python at query time.

    .venv/bin/python bench/search_text.py [--tracks 200000] [--seed 0]

A real catalog (catalog/ with its migrations) is filled with `--tracks` rows of made-up tags
(words drawn from a vocabulary of 5,000, some with accents), written through the catalog's own
`put_failed` + `put_tags` (so the key is made as on every write), then each query is timed both
ways, best of 3. Prints the figures; a benchmark, it never fails on them.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from songspace.catalog import Catalog
from songspace.catalog.search import matches, terms, track_key

ACCENTED = str.maketrans("aeiou", "áéîöu")


def words(rng: random.Random, n: int) -> list[str]:
    found = []
    for _ in range(n):
        w = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        found.append(w.translate(ACCENTED) if rng.random() < 0.1 else w)
    return found


def best(fn, repeat: int = 3) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        n = len(fn())
        times.append(time.perf_counter() - start)
    return min(times), n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    vocab = words(rng, 5000)
    with tempfile.TemporaryDirectory() as tmp:
        cat = Catalog(Path(tmp) / "catalog.sqlite")
        start = time.perf_counter()
        with cat._transaction():  # one transaction for the fill: the bench times searching, not writing
            for i in range(args.tracks):
                path = f"/music/{rng.choice(vocab)}/{i:06d} {rng.choice(vocab)}.flac"
                cat.db.execute("INSERT INTO tracks (path, status, updated_at, title, artist, album) "
                               "VALUES (?, 'ok', 0, ?, ?, ?)",
                               (path, " ".join(rng.sample(vocab, 3)), " ".join(rng.sample(vocab, 2)),
                                " ".join(rng.sample(vocab, 2))))
                cat._refold(i + 1)
        print(f"{args.tracks} tracks written with their keys in {time.perf_counter() - start:.1f} s")
        rows = cat.db.execute("SELECT id, title, artist, album, path FROM tracks").fetchall()

        def python_per_row(query: str):
            found = terms(query)
            return [i for i, title, artist, album, path in rows
                    if matches(found, track_key(title, artist, (), None, album, path))]

        print(f"{'query':28} {'hits':>6} {'SQL key (ms)':>13} {'Python per row (ms)':>20}")
        for query in ["hoffmann geosphere", vocab[5], vocab[7][:3] + "*", vocab[9].upper(), "a b c"]:
            sql_s, n = best(lambda: cat.search_ids(query))
            py_s, m = best(lambda: python_per_row(query), repeat=1)
            assert n == m, (query, n, m)
            print(f"{query!r:28} {n:>6} {sql_s * 1000:>13.0f} {py_s * 1000:>20.0f}")
        cat.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
