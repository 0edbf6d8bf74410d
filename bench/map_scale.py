"""The library map at 10k and 100k tracks: time and peak memory of each way of laying it out,
numba's compile cache, and the page's first paint with 100k dots in headless Chromium.

Synthetic clustered unit vectors (bench/scale.py's, 256-d like the shipped model). Each step
runs in a fresh child process (its peak RSS is its own):

  quick       the quick layout (PCA), stored at once so the page has a map while UMAP runs
  umap        UMAP, as the map's child process runs it (numba cache warm)
  place       1,000 new tracks placed among the n mapped ones (what an index run adds costs)
  baseline    the same run, today's way before this change: every change a full UMAP at 10k in
              a fresh process, numba left as umap ships it (only its own few cache=True functions)
  numba       import + UMAP of 200 tracks in a fresh process: cold cache, then warm (a second
              process), and as umap ships (its own few cache=True functions only, a first run)
  page        100k tracks in a catalog with their map stored; `songspace serve`; Chromium opens
              the page: first contentful paint, all 100k dots drawn, a full redraw of the dots,
              2,000 hover hit-tests, a box select by mouse; and GET /api/map's time and size

    .venv/bin/python bench/map_scale.py                    # 10k and 100k (~10 min on 2 cores)
    .venv/bin/python bench/map_scale.py --sizes 10000 --no-page
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
N_NEW = 1000
CHROMIUM = Path("/usr/bin/chromium")


def rss_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------------------------------
# Child steps: each prints one JSON line
# ---------------------------------------------------------------------------------------------


def child(step: str, data: Path, n: int) -> dict:
    from songspace import map_layout

    vectors = np.load(data / "vectors.npy", mmap_mode="r")
    known = np.array(vectors[:n])
    if step == "quick":
        t0 = time.perf_counter()
        xy = map_layout.quick_layout(known)
        seconds = time.perf_counter() - t0
        np.save(data / f"quick-{n}.npy", xy)
        return {"s": seconds, "peak_mb": rss_peak_mb()}
    if step in ("umap", "baseline", "numba-cold", "numba-warm", "numba-shipped"):
        t0 = time.perf_counter()
        if step in ("umap", "numba-cold", "numba-warm"):
            map_layout.cache_numba()
        import warnings

        warnings.simplefilter("ignore")
        import umap  # noqa: F401

        t1 = time.perf_counter()
        xy = map_layout.umap_layout(known)
        t2 = time.perf_counter()
        if step == "umap":
            np.save(data / f"umap-{n}.npy", xy)
        return {"import_s": t1 - t0, "fit_s": t2 - t1, "s": t2 - t0, "peak_mb": rss_peak_mb()}
    if step == "place":
        base = data / f"umap-{n}.npy"
        xy = np.load(base if base.exists() else data / f"quick-{n}.npy")
        new = np.array(vectors[len(vectors) - N_NEW:])
        t0 = time.perf_counter()
        placed = map_layout.place(new, known, xy)
        seconds = time.perf_counter() - t0
        assert placed.shape == (N_NEW, 2) and np.all((placed >= 0) & (placed <= 1))
        return {"s": seconds, "peak_mb": rss_peak_mb()}
    raise ValueError(step)


def run_child(step: str, data: Path, n: int, env: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", step, "--data", str(data), "--n", str(n)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"{step} at {n} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# The page with 100k tracks
# ---------------------------------------------------------------------------------------------


def page_bench(data: Path, n: int) -> dict:
    import httpx
    from scale import MODEL_ID, write_catalog

    from songspace.catalog import Catalog
    from songspace.query import Searcher

    root = data / f"library-{n}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    vectors = np.load(data / "vectors.npy", mmap_mode="r")
    write_catalog(root / "catalog.sqlite", np.array(vectors[:n]))
    searcher = Searcher(root / "catalog.sqlite")  # builds and saves the vector index once
    space = searcher.space()
    ids, _ = space.index.all()
    xy_file = data / f"umap-{n}.npy"
    xy = np.load(xy_file if xy_file.exists() else data / f"quick-{n}.npy")
    writer = Catalog(root / "catalog.sqlite")
    writer.put_map(f"{space.model_id}@{space.stamp[0]}", [(int(i), float(x), float(y)) for i, (x, y) in zip(ids, xy)],
                   "umap" if xy_file.exists() else "pca")
    writer.close()
    assert space.model_id == MODEL_ID
    del searcher, space

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "SONGSPACE_LIBRARY": str(root)}
    server = subprocess.Popen([sys.executable, "-m", "songspace", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(url + "/api/status", timeout=30)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        t0 = time.perf_counter()
        r = httpx.get(url + "/api/map", timeout=300)
        api = {"api_map_s": time.perf_counter() - t0, "api_map_mb": len(r.content) / 2**20,
               "api_map_stored": r.json()["stored"]}
        return {**api, **browser_bench(url, n)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def browser_bench(url: str, n: int) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(600_000)
        page.goto(url + "/")
        page.wait_for_function(f"document.querySelector('#map-canvas').dataset.points == {n}")
        page.wait_for_function("document.querySelector('#map-canvas').dataset.drawn > 0")
        timing = page.evaluate("""() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const fcp = performance.getEntriesByName('first-contentful-paint')[0];
            return {fcp_ms: fcp ? fcp.startTime : null, now_ms: performance.now(), dom_ms: nav.domContentLoadedEventEnd};
        }""")
        redraw = page.evaluate("""() => {
            songspace.map.renderNow();
            const t = performance.now();
            for (let i = 0; i < 5; i++) songspace.map.renderNow();
            return (performance.now() - t) / 5;
        }""")
        hover = page.evaluate("""() => {
            const c = document.querySelector('#map-canvas'); const w = c.clientWidth, h = c.clientHeight;
            let seed = 1; const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
            const t = performance.now();
            for (let i = 0; i < 2000; i++) songspace.map.hit(rnd() * w, rnd() * h);
            return (performance.now() - t) / 2000;
        }""")
        box = page.locator("#map-canvas").bounding_box()
        page.click("#map-select-mode")
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx - 60, cy - 60)
        page.mouse.down()
        page.mouse.move(cx + 60, cy + 60, steps=4)
        before = page.evaluate("document.querySelector('#selection-info') ? document.querySelector('#selection-info').textContent : ''")
        t0 = time.perf_counter()
        page.mouse.up()
        page.wait_for_function("(b) => document.querySelector('#selection-info').textContent !== b", arg=before)
        select_ms = (time.perf_counter() - t0) * 1e3
        selected = page.evaluate("(songspace.state.lists.selection || []).length")
        browser.close()
    return {"fcp_ms": timing["fcp_ms"], "map_drawn_ms": timing["now_ms"], "redraw_ms": redraw,
            "hover_hit_ms": hover, "box_select_ms": select_ms, "box_selected": selected}


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--no-page", action="store_true", help="leave out the page in Chromium")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "map_scale.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data, args.n)))
        return

    from scale import clustered_vectors

    work = Path(tempfile.mkdtemp(prefix="songspace-map-bench-"))
    results: dict = {"sizes": {}}
    try:
        biggest = max(args.sizes)
        np.save(work / "vectors.npy", clustered_vectors(biggest + N_NEW, seed=3))
        print(f"work folder {work}; vectors {biggest + N_NEW} x 256", flush=True)

        # numba's compile cache: fresh processes, 200 tracks
        cold_cache = {"NUMBA_CACHE_DIR": str(work / "numba-cold")}
        shipped = {"NUMBA_CACHE_DIR": str(work / "numba-shipped")}
        numba = {"cold": run_child("numba-cold", work, 200, cold_cache),
                 "warm": run_child("numba-warm", work, 200, cold_cache)}
        # as umap ships: its few cache=True functions cached (for the baseline below), the rest compiled
        numba["shipped"] = run_child("numba-shipped", work, 200, shipped)
        results["numba"] = numba
        for k, v in numba.items():
            print(f"numba {k:8s} import {v['import_s']:5.1f} s  UMAP(200) {v['fit_s']:5.1f} s  total {v['s']:5.1f} s", flush=True)

        warm = {"NUMBA_CACHE_DIR": str(work / "numba-cold")}
        for n in args.sizes:
            r = {"quick": run_child("quick", work, n)}
            print(f"{n:>7}  quick (PCA)   {r['quick']['s']:7.2f} s  peak {r['quick']['peak_mb']:6.0f} MB", flush=True)
            r["umap"] = run_child("umap", work, n, warm)
            print(f"{n:>7}  UMAP          {r['umap']['s']:7.1f} s  peak {r['umap']['peak_mb']:6.0f} MB"
                  f"  (import {r['umap']['import_s']:.1f} s)", flush=True)
            r["place"] = run_child("place", work, n)
            print(f"{n:>7}  place {N_NEW} new {r['place']['s']:7.2f} s  peak {r['place']['peak_mb']:6.0f} MB", flush=True)
            if n == min(args.sizes):
                r["baseline"] = run_child("baseline", work, n, shipped)
                print(f"{n:>7}  baseline: full UMAP as before (fresh process, numba as shipped) "
                      f"{r['baseline']['s']:7.1f} s  peak {r['baseline']['peak_mb']:6.0f} MB", flush=True)
            results["sizes"][n] = r

        if not args.no_page and CHROMIUM.exists():
            n = biggest
            page = page_bench(work, n)
            results["page"] = {"n": n, **page}
            print(f"page, {n} tracks: GET /api/map {page['api_map_s']:.1f} s ({page['api_map_mb']:.1f} MB); "
                  f"first contentful paint {page['fcp_ms']:.0f} ms; all dots drawn {page['map_drawn_ms']:.0f} ms; "
                  f"full redraw {page['redraw_ms']:.1f} ms; hover hit-test {page['hover_hit_ms'] * 1e3:.1f} us; "
                  f"box select {page['box_select_ms']:.0f} ms ({page['box_selected']} tracks)", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
        print(f"results in {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
