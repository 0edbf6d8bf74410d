"""Fault injection, as SQLite's crash tests do it (issue 22): kill -9 at evenly spaced durable
steps of `index` (a new library, and a library whose music changed), `use` + the re-embedding
`index`, `fit` (which re-embeds), `user add`, `check` (it saves the vector index), and a
`serve` under load (readers in threads while it indexes through the API and takes playlist,
star and play writes); timed kills of `fit` at evenly spaced fractions of a clean run's wall
time (training and writing the model file hold no durable step to stop at); and a full disk
at evenly spaced amounts of free space under `index`, `use` + `index`, `user add` and a `serve`
under load (a tmpfs: needs root, skipped with the reason otherwise).
After each: `songspace check`, the work finished (the command run again, or `index`), and the
library compared with a clean run's: same tracks, vectors and segments bit-identical, users,
playlists, stars and plays intact, the catalog's integrity check ok.

How the kill points are picked and why: tests/fault_kit.py. Prints one row per scenario and the
totals ("killed/stopped": runs the kill reached before they finished, or that the full disk
stopped); every fault that left something wrong is listed below the table. Exit 1 if any did.

    PYTHONPATH=src python bench/fault_injection.py [--points 12] [--only index,serve] [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

import fault_disk as fd
import fault_kit as kit
import fault_scenarios as fs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=12, help="kill points per scenario (default 12)")
    ap.add_argument("--fit-points", type=int, default=5, help="kill points of fit (each trains anew: slow)")
    ap.add_argument("--timed-points", type=int, default=3, help="timed kills of fit (fractions of a clean run)")
    ap.add_argument("--disk-points", type=int, default=6, help="amounts of free space per disk-full scenario")
    ap.add_argument("--only", default="", help="comma-separated words: run only scenarios whose name holds one")
    ap.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary folder, removed)")
    args = ap.parse_args()
    wanted = [w for w in args.only.split(",") if w]

    def chosen(name: str) -> bool:
        return not wanted or any(w in name for w in wanted)

    with tempfile.TemporaryDirectory(prefix="songspace-faults-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        world = fs.make_world(root / "world")
        rows: list[tuple[str, dict, float]] = []
        bad: list[kit.Outcome] = []

        def record(name: str, outcomes: list[kit.Outcome], t0: float) -> None:
            rows.append((name, kit.summary(outcomes), time.monotonic() - t0))
            bad.extend(o for o in outcomes if not o.verdict.sound)
            print(f"  {name}: {kit.summary(outcomes)}", file=sys.stderr, flush=True)

        for s in fs.scenarios(world):
            if chosen(s.name):
                t0 = time.monotonic()
                points = args.fit_points if s.fitted else args.points
                record(f"kill -9: {s.name}", fs.run_kills(s, root / slug(s.name), points, world), t0)
        for s in fs.scenarios(world):  # timed kills where long stretches have no step: training, the model file
            if s.fitted and chosen("timed " + s.name) and args.timed_points:
                t0 = time.monotonic()
                record(f"kill -9 timed: {s.name}", fs.run_kills(s, root / ("timed-" + slug(s.name)), args.timed_points,
                                                                world, timed=True), t0)
        if chosen("serve"):
            t0 = time.monotonic()
            record("kill -9: serve under load", fs.run_serve_kills(world, root / "serve", args.points), t0)
        disk = fd.Tmpfs(root / "disk")
        try:
            for s in [*fd.disk_scenarios(world), None]:  # None: a server under load
                name = s.name if s is not None else "serve under load"
                if not args.disk_points or not chosen("disk " + name):
                    continue
                if disk.why_not:
                    print(f"  disk full: {name}: skipped, {disk.why_not}", file=sys.stderr)
                    continue
                t0 = time.monotonic()
                work = root / ("disk-" + slug(name))
                record(f"disk full: {name}", fd.run_disk_full(s, disk, work, args.disk_points) if s is not None
                       else fd.run_serve_disk_full(world, disk, work, args.disk_points), t0)
        finally:
            disk.close()

    print_table(rows)
    for o in bad:
        print(f"  {o.scenario} at step {o.point} ({o.step[:60]}): {o.verdict}")
    print(f"({time.monotonic() - started:.0f} s in all)")
    return 1 if bad else 0


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def print_table(rows) -> None:
    head = ("scenario", "points", "killed/stopped", "lost tracks", "corrupt", "other", "seconds")
    lines = [(name, str(s["points"]), str(s["reached"]), str(s["lost tracks"]), str(s["corrupt catalogs"]),
              str(s["differences"]), f"{secs:.0f}") for name, s, secs in rows]
    total = {k: sum(s[k] for _, s, _ in rows) for k in ("points", "reached", "lost tracks", "corrupt catalogs",
                                                       "differences")}
    lines.append(("total", str(total["points"]), str(total["reached"]), str(total["lost tracks"]),
                  str(total["corrupt catalogs"]), str(total["differences"]), f"{sum(r[2] for r in rows):.0f}"))
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*head))
    for n, line in enumerate(lines):
        if n == len(lines) - 1:
            print("  ".join("-" * w for w in widths))
        print(fmt.format(*line))


if __name__ == "__main__":
    sys.exit(main())
