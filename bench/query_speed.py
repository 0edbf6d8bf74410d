"""How long one `similar`, `radio -n 30` and `path -n 12` take on ost-dev.

    .venv/bin/python bench/query_speed.py [--data ../shared/data/ost-dev] [--repeat 20]

Indexes ost-dev into a fresh library (not timed), then times each query three ways:
  warm      through one Searcher kept in memory, as a server answers (median of --repeat runs
            over different queries)
  warm cpu  the same in the process's CPU time: what to compare on a busy machine, where wall
            times move with the load
  cold      a fresh Searcher each time, which reads the vectors from the catalog first: what one
            CLI command pays inside its process
  command   the whole `songspace ...` command in a new process, beside `songspace --help` in the
            same run (the baseline: interpreter start-up and imports alone)
Each query is timed twice in the same run: ranked by cosine alone (the timbre companion set
not ready in the catalog, as in a library indexed before it) and by the fusion (rerank.py: the
50 nearest by cosine re-ranked with timbre), which is what search does once the library has it.
A benchmark, not a test: it prints figures and never fails on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from songspace import Library, proximity  # noqa: E402
from songspace.query import Searcher  # noqa: E402
from songspace.recommend.path import journey  # noqa: E402
from songspace.recommend.radio import radio  # noqa: E402
from songspace.recommend.similar import similar  # noqa: E402


def median_ms(run, args_list, clock=time.perf_counter) -> float:
    times = []
    for args in args_list:
        start = clock()
        run(*args)
        times.append(1000 * (clock() - start))
    return statistics.median(times)


def command_ms(library: Path, args: list[str], repeat: int = 3) -> float:
    env = {**os.environ, "SONGSPACE_LIBRARY": str(library)}
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "songspace", *args], env=env, check=True, capture_output=True)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def set_ranking(lib: Library, fused: bool) -> None:
    """Mark the timbre companion ready or not (the next question reads it: the generation moves)."""
    state = proximity.state(lib.catalog)
    state["ready"] = fused
    lib.catalog.put_proximity_state(proximity.STAMP, json.dumps(state))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ost-dev")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data}: not here (the ost-dev folder)")

    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "library"
        with Library.open(library) as lib:
            lib.index([args.data])
            searcher = lib.searcher()
            ids = [int(i) for i in searcher.ids()]
            r = args.repeat
            queries = [(ids[(7 * i) % len(ids)],) for i in range(r)]
            seeds = [([ids[(7 * i) % len(ids)], ids[(7 * i + 31) % len(ids)]],) for i in range(r)]
            pairs = [(ids[(7 * i) % len(ids)], ids[(7 * i + 53) % len(ids)]) for i in range(r)]
            catalog = lib.catalog.path

            def cold(run):
                return lambda *a: run(Searcher(catalog), *a)

            cases = {
                "similar -k 10": (lambda s, q: similar(s, q, 10), queries, ["similar", "1"]),
                "radio -n 30": (lambda s, q: radio(s, q, n=30), seeds, ["radio", "1", "32", "-n", "30"]),
                "path -n 12": (lambda s, a, b: journey(s, a, b, n=12), pairs, ["path", "1", "54", "-n", "12"]),
            }
            print(f"ost-dev: {len(ids)} tracks, {os.cpu_count()} CPUs; median of {r} queries (warm, cold), "
                  f"of 3 runs (command)")
            print(f"{'query':<15}{'ranking':<9}{'warm ms':>10}{'warm cpu':>10}{'cold ms':>10}{'command ms':>13}")
            for name, (run, inputs, command) in cases.items():
                for ranking in ("cosine", "fused"):
                    set_ranking(lib, ranking == "fused")
                    run(searcher, *inputs[0])  # the snapshot and the companion's sample loaded, as a server has them
                    warm = median_ms(lambda *a: run(searcher, *a), inputs)
                    warm_cpu = median_ms(lambda *a: run(searcher, *a), inputs, time.process_time)
                    cold_ms = median_ms(cold(run), inputs)
                    print(f"{name:<15}{ranking:<9}{warm:>10.2f}{warm_cpu:>10.2f}{cold_ms:>10.1f}"
                          f"{command_ms(library, command):>13.0f}")
            print(f"{'--help':<24}{'':>20}{'':>10}{command_ms(library, ['--help']):>13.0f}  (baseline: start-up only)")


if __name__ == "__main__":
    main()
