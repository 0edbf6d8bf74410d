"""The map is ready when the page opens: a quick PCA stored by `index`, laid out by UMAP (in a
child process) by the server in the background, new
tracks placed without moving the old ones, a full recompute on request, and a server that stops
at once on SIGTERM even while UMAP runs. Over a library of 16 short tracks (UMAP needs 15)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from helpers import free_port
from songspace import Library
from songspace import map as library_map
from songspace.catalog import Catalog
from songspace.map_layout import MIN_UMAP, numba_cache_dir
from songspace.synth import make_demo_library

pytestmark = pytest.mark.slow  # UMAP runs for real (a child process that imports umap)


@pytest.fixture(scope="module")
def _sixteen(tmp_path_factory) -> Path:
    """16 short tracks, 4 per style, indexed by the library (not the CLI: no map stored yet)."""
    root = tmp_path_factory.mktemp("map16")
    make_demo_library(root / "music", n_per_style=4, seconds=3.0)
    with Library.open(root / "library") as lib:
        lib.index([root / "music"], workers=0)
        assert lib.status()["searchable"] == 16 >= MIN_UMAP
    return root


@pytest.fixture
def sixteen(_sixteen, tmp_path) -> tuple[Path, Path]:
    """(music, library): private copies, with no map stored."""
    music = Path(shutil.copytree(_sixteen / "music", tmp_path / "music"))
    library = Path(shutil.copytree(_sixteen / "library", tmp_path / "library"))
    return music, library


def stored_map(library: Path) -> tuple[str | None, str | None, dict]:
    catalog = Catalog(library / "catalog.sqlite", readonly=True)
    try:
        stamp, points = catalog.map_points()
        return stamp, catalog.map_method(), points
    finally:
        catalog.close()


def searchable_ids(library: Path) -> set[int]:
    with Library.open(library, readonly=True) as lib:
        return {int(i) for i in lib.searcher().space().index.all()[0]}


def test_index_leaves_a_umap_map_and_new_tracks_do_not_move_the_old_ones(_sixteen, songspace, library_dir, tmp_path):
    music = Path(shutil.copytree(_sixteen / "music", tmp_path / "music"))

    r = songspace("index", music, check=True)
    out = r.stdout + r.stderr
    assert "quick PCA" in out and "songspace serve" in out  # the index run never waits for UMAP
    assert stored_map(library_dir)[1] == "pca" and set(stored_map(library_dir)[2]) == searchable_ids(library_dir)
    with Library.open(library_dir) as lib:  # what the server's map job does in the background
        assert "UMAP" in library_map.refresh(lib.searcher(), lib.catalog)
    stamp, method, before = stored_map(library_dir)
    assert method == "umap" and set(before) == searchable_ids(library_dir)
    xy = np.array(list(before.values()))
    assert np.all((xy >= 0) & (xy <= 1)) and len({tuple(p) for p in xy}) > 1
    # numba's compilation kept for the next process, umap's layout loop included (umap itself
    # does not mark it cache=True)
    assert list(numba_cache_dir().rglob("layouts._optimize_layout_euclidean_single_epoch-*.nbi"))

    # Two more tracks: a copy of a mapped one under another name, and a new piece.
    twin_source = next(music.rglob("*.ogg"))
    shutil.copy(twin_source, music / f"copy-of-{twin_source.name}")
    make_demo_library(music / "more", n_per_style=1, seconds=3.0, seed=7)
    r = songspace("index", music, check=True)
    out = r.stdout + r.stderr
    assert "placed" in out and "UMAP" not in out  # placed, not laid out again
    stamp2, method2, after = stored_map(library_dir)
    assert stamp2 != stamp and method2 == "umap"
    assert set(after) == searchable_ids(library_dir) and len(after) == 16 + 1 + 4
    assert {i: after[i] for i in before} == before  # nothing already on the map moved
    with Library.open(library_dir, readonly=True) as lib:
        twin = lib.catalog.by_path(str(music / f"copy-of-{twin_source.name}")).id
        original = lib.catalog.by_path(str(twin_source)).id
    np.testing.assert_allclose(after[twin], before[original], atol=1e-4)  # same sound, same place
    new = np.array([after[i] for i in set(after) - set(before)])
    assert np.all((new >= 0) & (new <= 1))


def test_the_server_lays_out_a_missing_map_by_itself_and_recomputes_on_request(sixteen):
    _, library = sixteen
    from songspace.server import create_app

    with TestClient(create_app(library), base_url="http://127.0.0.1") as client:
        first = client.get("/api/map")  # at once, never waiting for UMAP: the quick layout
        assert first.status_code == 200
        assert first.json()["count"] == 16 and {p["id"] for p in first.json()["points"]} == searchable_ids(library)
        done = wait_for_map(client, lambda m: m["final"] and m["stored"] and not m["pending"])
        assert done["method"] == "umap" and stored_map(library)[1] == "umap"

        # Recompute: stored points all put in one spot are laid out again.
        stamp, _, points = stored_map(library)
        writer = Catalog(library / "catalog.sqlite")
        writer.put_map(stamp, [(i, 0.5, 0.5) for i in points], "umap")
        writer.close()
        assert {(p["x"], p["y"]) for p in client.get("/api/map").json()["points"]} == {(0.5, 0.5)}
        r = client.post("/api/map/recompute")
        assert r.status_code == 202, r.text
        again = wait_for_map(client, lambda m: not m["pending"])
        assert len({(p["x"], p["y"]) for p in again["points"]}) > 1 and again["method"] == "umap"
        assert {p["id"]: (p["x"], p["y"]) for p in again["points"]} == {
            p["id"]: (p["x"], p["y"]) for p in done["points"]}  # the same vectors, the same seed: the same map


def wait_for_map(client, ready, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout  # a hang guard, not a timing
    while True:
        m = client.get("/api/map").json()
        if ready(m):
            return m
        assert m.get("error") is None, m["error"]
        assert time.monotonic() < deadline, f"the map never got ready: {m['method']}, {m['computing']}"
        time.sleep(0.3)


def test_a_map_before_any_vector_says_so(library_dir):
    from songspace.server import create_app

    Library.open(library_dir).close()
    with TestClient(create_app(library_dir), base_url="http://127.0.0.1") as client:
        r = client.get("/api/map")
        assert r.status_code == 404 and "no track has been analysed" in r.json()["detail"]


def children_of(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_serve_stops_on_sigterm_while_umap_runs(sixteen):
    _, library = sixteen
    port = free_port()
    env = {**os.environ, "SONGSPACE_LIBRARY": str(library)}
    server = subprocess.Popen([sys.executable, "-m", "songspace", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120  # a hang guard
        computing = None
        while computing != "umap":
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the server never started laying out the map"
            try:
                computing = httpx.get(f"http://127.0.0.1:{port}/api/map", timeout=10).json().get("computing")
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        umap_children = children_of(server.pid)
        assert umap_children, "UMAP runs in a child process"
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)  # a hang guard: without the fix it waited for UMAP to finish
        assert code in (0, 143, -signal.SIGTERM), server.stdout.read()
        assert "Traceback" not in server.stdout.read()
        for child in umap_children:
            for _ in range(100):
                if not alive(child):
                    break
                time.sleep(0.05)
            assert not alive(child), "the UMAP process outlived the server"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    stamp, method, points = stored_map(library)
    assert method == "pca" and set(points) == searchable_ids(library)  # the quick map stays stored


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)")
def test_the_page_shows_the_quick_map_then_umap_and_recomputes_with_its_button(sixteen):
    """In Chromium: a library with no map opens on the quick layout at once, the page follows
    the server to UMAP by itself, and "Recompute" lays it out again."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from helpers import serving

    _, library = sixteen
    with serving(library, index_workers=0) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(300_000)  # a hang guard: UMAP runs meanwhile
        page.goto(url + "/")
        page.wait_for_function("document.querySelector('#map-canvas').dataset.points == 16")
        page.wait_for_function("/16 tracks .* UMAP · /.test(document.querySelector('#map-info').textContent)"
                               " && !document.querySelector('#map-info').textContent.includes('…')")
        assert not page.locator("#map-recompute").is_disabled()

        stamp, _, points = stored_map(library)
        writer = Catalog(library / "catalog.sqlite")
        writer.put_map(stamp, [(i, 0.5, 0.5) for i in points], "umap")  # every dot in one spot
        writer.close()
        page.click("#map-recompute")
        page.wait_for_function("document.querySelector('#map-info').textContent.includes('laying out with UMAP')")
        page.wait_for_function("!document.querySelector('#map-info').textContent.includes('…')")
        spots = {tuple(round(v) for v in page.evaluate(f"Object.values(songspace.map.screenOf({i}))"))
                 for i in stored_map(library)[2]}
        assert len(spots) > 1  # drawn apart again
        assert page.locator("#map-canvas").get_attribute("data-points") == "16"
        assert not errors, errors
        browser.close()
