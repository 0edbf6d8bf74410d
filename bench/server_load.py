"""The HTTP server under load: `/api/tracks/{id}/similar` and `POST /api/radio` on ost-dev from
several concurrent clients, beside the same queries called in-process through one Searcher on
one thread (the baseline: what the query itself costs, without HTTP, JSON and threads).

    .venv/bin/python bench/server_load.py [--seconds 60] [--clients 4] [--data ../shared/data/ost-dev]
                                          [--library DIR  (an indexed ost-dev library, to skip indexing)]

Indexes ost-dev into a temporary library (not timed), starts the real server (`songspace serve`,
uvicorn, one process) on a free loopback port, then for --seconds drives it from --clients
threads, each with its own keep-alive httpx client, alternating similar (k=10) and radio
(2 seeds, n=30) over different tracks. Reports requests, errors (any non-200 or exception),
requests/s, p50 and p99 latency per endpoint. The clients run on the same machine as the
server, so on 2 cores they compete with it for CPU. A benchmark, not a test: it never fails
on speed, only exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from songspace import Library  # noqa: E402
from songspace.recommend.radio import radio  # noqa: E402
from songspace.recommend.similar import similar  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(name: str, latencies: list[float], errors: int, seconds: float) -> str:
    if not latencies:
        return f"{name:<28}{0:>9}{errors:>8}"
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return (f"{name:<28}{len(latencies):>9}{errors:>8}{len(latencies) / seconds:>10.1f}"
            f"{1000 * q[49]:>10.2f}{1000 * q[98]:>10.2f}")


HEADER = f"{'':<28}{'requests':>9}{'errors':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"


# ---------------------------------------------------------------------------------------------
# The two ways of asking
# ---------------------------------------------------------------------------------------------


def queries(ids: list[int], i: int):
    """The i-th query of the mix: ("similar", id) or ("radio", [two seed ids])."""
    a = ids[(7 * i) % len(ids)]
    return ("similar", a) if i % 2 == 0 else ("radio", [a, ids[(7 * i + 31) % len(ids)]])


def in_process(searcher, ids: list[int], seconds: float) -> dict[str, list[float]]:
    """The baseline: the same mix called directly, one thread, for `seconds`."""
    times: dict[str, list[float]] = {"similar": [], "radio": []}
    deadline, i = time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline:
        kind, arg = queries(ids, i)
        start = time.perf_counter()
        if kind == "similar":
            similar(searcher, searcher.track(arg), 10)
        else:
            radio(searcher, arg, n=30)
        times[kind].append(time.perf_counter() - start)
        i += 1
    return times


def client(base: str, ids: list[int], offset: int, deadline: float, times: dict, errors: dict, lock) -> None:
    i = offset
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.perf_counter() < deadline:
            kind, arg = queries(ids, i)
            start = time.perf_counter()
            try:
                if kind == "similar":
                    r = http.get(f"/api/tracks/{arg}/similar", params={"k": 10})
                else:
                    r = http.post("/api/radio", json={"seeds": arg, "n": 30})
                ok = r.status_code == 200 and r.json()["items"]
            except Exception:
                ok = False
            elapsed = time.perf_counter() - start
            with lock:
                (times[kind].append(elapsed) if ok else None)
                errors[kind] += 0 if ok else 1
            i += 1


def over_http(base: str, ids: list[int], clients: int, seconds: float) -> tuple[dict, dict, float]:
    times: dict[str, list[float]] = {"similar": [], "radio": []}
    errors = {"similar": 0, "radio": 0}
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + seconds
    threads = [threading.Thread(target=client, args=(base, ids, 1000 * c, deadline, times, errors, lock))
               for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, errors, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def start_server(library: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "SONGSPACE_LIBRARY": str(library)}
    env.pop("SONGSPACE_TOKEN", None)
    server = subprocess.Popen([sys.executable, "-m", "songspace", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        if server.poll() is not None:
            sys.exit(f"the server stopped: {server.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    sys.exit("the server did not answer within a minute")


def run(library: Path, seconds: float, clients: int) -> int:
    with Library.open(library) as lib:
        searcher = lib.searcher()
        ids = [int(i) for i in searcher.ids()]
        in_process(searcher, ids, 1.0)  # warm up: the index in memory, imports done
        base_times = in_process(searcher, ids, seconds)
    port = free_port()
    server = start_server(library, port)
    try:
        base = f"http://127.0.0.1:{port}"
        over_http(base, ids, clients, 2.0)  # warm up the server's Searcher
        times, errors, elapsed = over_http(base, ids, clients, seconds)
    finally:
        server.terminate()
        server.wait(30)

    print(f"ost-dev: {len(ids)} tracks, {os.cpu_count()} CPUs, {seconds:g} s per run")
    print(HEADER)
    for kind in ("similar", "radio"):
        print(summary(f"in-process {kind}, 1 thread", base_times[kind], 0, seconds))
    for kind in ("similar", "radio"):
        print(summary(f"HTTP {kind}, {clients} clients", times[kind], errors[kind], elapsed))
    print(summary(f"HTTP both, {clients} clients", times["similar"] + times["radio"], sum(errors.values()), elapsed))
    return 1 if sum(errors.values()) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ost-dev")
    parser.add_argument("--library", type=Path, help="an indexed library to use instead of indexing --data")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    if args.library is not None:
        sys.exit(run(args.library, args.seconds, args.clients))
    if not args.data.is_dir():
        sys.exit(f"{args.data}: not here (the ost-dev folder)")
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "library"
        with Library.open(library) as lib:
            lib.index([args.data])
        sys.exit(run(library, args.seconds, args.clients))


if __name__ == "__main__":
    main()
