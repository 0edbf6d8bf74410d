"""The page, in a real browser: Playwright for Python driving Debian's Chromium (headless, the
system binary; a browser is never downloaded) against the real server (uvicorn, in a thread, on
a free port) over the indexed demo library (12 tracks).

Screenshots of each view go to test-screenshots/ at the repository root.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helpers import serving

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-screenshots"

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
uvicorn = pytest.importorskip("uvicorn")

BACKGROUND = (0x12, 0x14, 0x1A)  # the map's background colour (app.js)


# ---------------------------------------------------------------------------------------------
# The server and the browser, once for the module
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(_indexed_demo, tmp_path_factory):
    """The base URL of a real songspace server over a private copy of the indexed demo library."""
    root = Path(shutil.copytree(_indexed_demo, tmp_path_factory.mktemp("page") / "library"))
    with serving(root, index_workers=0) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page (its own storage) on the app, loaded, with every request it made recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.requests = []
    page.responses = []
    page.errors = []
    page.on("request", lambda r: page.requests.append(r))
    page.on("response", lambda r: page.responses.append(r))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("#search-results li.track")
    page.wait_for_function("document.querySelector('#map-canvas').dataset.points > 0")
    yield page
    assert not page.errors, f"JavaScript errors on the page: {page.errors}"
    outside = [r.url for r in page.requests if not r.url.startswith((server, "data:", "blob:"))]
    assert not outside, f"the page loaded something from outside the app: {outside}"
    context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def rows(page, list_selector: str):
    return page.locator(f"{list_selector} li.track")


def ids(page, list_selector: str) -> list[int]:
    return [int(i) for i in rows(page, list_selector).evaluate_all("els => els.map(e => e.dataset.id)")]


def playable_row(page):
    """A search result in a format any Chromium plays (ogg, flac, wav, mp3)."""
    items = page.evaluate("songspace.state.lists.search.map(t => [t.id, t.path])")
    for track_id, path in items:
        if path.rsplit(".", 1)[-1] in ("ogg", "flac", "wav", "mp3"):
            return page.locator(f'#search-results li.track[data-id="{track_id}"]'), track_id
    pytest.fail(f"no track in a common format among {items}")


def wait_playing(page, track_id: int) -> None:
    page.wait_for_function(f"""() => {{ const a = document.querySelector('#audio');
        return a.src.endsWith('/api/tracks/{track_id}/audio') && !a.paused && a.readyState >= 2; }}""")
    start = page.evaluate("document.querySelector('#audio').currentTime")
    page.wait_for_function(f"document.querySelector('#audio').currentTime > {start} + 0.3")


# ---------------------------------------------------------------------------------------------
# Search and listen
# ---------------------------------------------------------------------------------------------


def test_search_shows_results(page):
    assert rows(page, "#search-results").count() == 12
    assert "of 12" in page.locator("#search-info").inner_text()
    assert "12 tracks" in page.locator("#status").inner_text()
    page.fill("#search", "arpeggio")
    page.wait_for_function("document.querySelectorAll('#search-results li.track').length === 3")
    assert all("arpeggio" in t.lower() for t in rows(page, "#search-results").all_inner_texts())
    shot(page, "search")
    page.fill("#search", "no such music anywhere")
    page.wait_for_function("document.querySelectorAll('#search-results li.track').length === 0")
    assert "Nothing matches" in page.locator("#search-info").inner_text()


def test_play_and_seek(page):
    row, track_id = playable_row(page)
    page.evaluate("window.__playing = 0; document.querySelector('#audio').addEventListener('playing', () => window.__playing++)")
    row.locator(".title").click()
    wait_playing(page, track_id)
    assert page.evaluate("window.__playing") >= 1
    assert row.get_attribute("class").split().count("playing") == 1
    assert page.locator("#now-playing").inner_text() != ""

    # Seek: the element jumps, plays on from there, and the audio came as a range response.
    page.evaluate("window.__seeked = false; const a = document.querySelector('#audio'); "
                  "a.addEventListener('seeked', () => window.__seeked = true, {once: true}); a.currentTime = 5")
    page.wait_for_function("window.__seeked")
    page.wait_for_function("document.querySelector('#audio').currentTime > 5.2")
    audio = [r for r in page.responses if r.url.endswith(f"/api/tracks/{track_id}/audio")]
    assert any(r.status == 206 and "range" in r.request.headers for r in audio), [(r.status, r.request.headers) for r in audio]
    shot(page, "playing")

    # The server serves the part asked for: what a seek past the browser's buffer fetches.
    part = page.evaluate(f"""async () => {{ const r = await fetch('/api/tracks/{track_id}/audio', {{headers: {{Range: 'bytes=100-199'}}}});
        return [r.status, r.headers.get('content-range'), (await r.arrayBuffer()).byteLength]; }}""")
    assert part[0] == 206 and part[1].startswith("bytes 100-199/") and part[2] == 100


# ---------------------------------------------------------------------------------------------
# More like this, radio, journey
# ---------------------------------------------------------------------------------------------


def test_more_like_this_and_explain(page):
    first = rows(page, "#search-results").first
    query_id = int(first.get_attribute("data-id"))
    first.locator('[data-action="similar"]').click()
    page.wait_for_selector("#similar-list li.track")
    neighbours = ids(page, "#similar-list")
    assert neighbours and query_id not in neighbours
    assert "Sounds like" in page.locator("#similar-query").inner_text()
    scores = [float(s) for s in page.locator("#similar-list .score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)

    rows(page, "#similar-list").first.locator('[data-action="explain"]').click()
    pairs = page.locator("#similar-list .explain-pair")
    pairs.first.wait_for()
    assert pairs.count() >= 1
    text = pairs.first.inner_text()
    assert len(re.findall(r"\d+:\d\d–\d+:\d\d", text)) == 2, text  # a time range in each track
    assert re.search(r"[01]\.\d\d", text)  # the similarity
    shot(page, "similar-explain")

    # A time range plays that track from there.
    pairs.first.locator("button.time").first.click()
    page.wait_for_function(f"document.querySelector('#audio').src.endsWith('/api/tracks/{query_id}/audio')")


def test_radio_builder(page):
    search = ids(page, "#search-results")
    liked, disliked = search[0], search[-1]
    page.click("#tab-radio")
    page.click("#radio-go")  # nothing liked yet: a message, not an error
    assert "Like at least one track" in page.locator("#toast").inner_text()
    page.click("#tab-search")
    rows(page, "#search-results").nth(0).locator('[data-action="like"]').click()
    rows(page, "#search-results").nth(11).locator('[data-action="dislike"]').click()
    page.click("#tab-radio")
    assert page.locator("#radio-likes .chip").count() == 1 and page.locator("#radio-dislikes .chip").count() == 1
    page.fill("#radio-n", "6")
    page.click("#radio-go")
    page.wait_for_selector("#radio-list li.track")
    radio = ids(page, "#radio-list")
    assert 1 <= len(radio) <= 6 and disliked not in radio
    assert page.locator("#radio-m3u8").get_attribute("href") == f"/api/playlist.m3u8?ids={','.join(map(str, radio))}"
    shot(page, "radio")
    # Likes survive a reload.
    page.reload()
    page.wait_for_selector("#radio-likes .chip", state="attached")
    assert int(page.locator("#radio-likes .chip").get_attribute("data-id")) == liked


def test_journey_builder(page):
    search = ids(page, "#search-results")
    a, b = search[0], search[-1]
    rows(page, "#search-results").first.locator('[data-action="set-a"]').click()
    rows(page, "#search-results").last.locator('[data-action="set-b"]').click()
    page.click("#tab-journey")
    assert page.locator("#path-a").get_attribute("data-id") == str(a)
    page.fill("#path-n", "5")
    page.click("#path-go")
    page.wait_for_selector("#journey-list li.track")
    journey = ids(page, "#journey-list")
    assert journey[0] == a and journey[-1] == b and len(journey) <= 5 and len(set(journey)) == len(journey)
    summary = page.locator("#path-summary").inner_text()
    assert re.search(r"largest step \d\.\d{3}", summary) and re.search(r"straight A→B \d\.\d{3}", summary), summary
    shot(page, "journey")


# ---------------------------------------------------------------------------------------------
# The map
# ---------------------------------------------------------------------------------------------


def dot_position(page, track_id: int) -> tuple[float, float]:
    """Where a track's dot is on the screen."""
    p = page.evaluate(f"songspace.map.screenOf({track_id})")
    box = page.locator("#map-canvas").bounding_box()
    return box["x"] + p["x"], box["y"] + p["y"]


def test_map_draws_its_dots_and_a_click_plays(page):
    canvas = page.locator("#map-canvas")
    assert canvas.get_attribute("data-points") == "12" and canvas.get_attribute("data-drawn") == "12"
    coloured = page.evaluate("""([r, g, b]) => { const c = document.querySelector('#map-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - r) + Math.abs(d[i+1] - g) + Math.abs(d[i+2] - b) > 60) n++;
        return n; }""", list(BACKGROUND))
    assert coloured > 12 * 10, coloured  # twelve dots of several pixels each
    assert page.locator("#map-legend li").count() >= 4  # 4 albums in the demo library
    # Colour by the tags the shipped model's head predicted at indexing (issue 21): the legend
    # names genres and moods of its vocabulary, and every dot has one.
    from songspace.models.tags_head import load_head

    head = load_head()
    for group in ("genre", "mood"):
        page.select_option("#map-color", f"predicted:auto-{group}")
        legend = page.locator("#map-legend li").all_inner_texts()
        names = {head.names[i] for i in head.group(group)}
        entries = [text.rsplit(maxsplit=1) for text in legend]  # "name", "tracks"
        assert legend and all(name in names for name, _ in entries), (group, legend)
        assert sum(int(n) for _, n in entries) == 12, legend
    page.select_option("#map-color", "genre")
    shot(page, "map")

    _, target = playable_row(page)
    x, y = dot_position(page, target)
    page.mouse.move(x, y)
    tip = page.locator("#map-tooltip")
    tip.wait_for(state="visible")
    assert page.evaluate(f"songspace.state.tracks.get({target}).title") in tip.inner_text()
    page.mouse.click(x, y)
    wait_playing(page, target)
    page.wait_for_selector("#similar-list li.track")  # and its neighbours are listed
    assert target not in ids(page, "#similar-list")
    shot(page, "map-click")


def test_box_select_makes_a_playlist_and_m3u8_downloads(page):
    box = page.locator("#map-canvas").bounding_box()
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=4)
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_selector("#selection-list li.track")
    selected = ids(page, "#selection-list")
    assert sorted(selected) == sorted(ids(page, "#search-results"))
    shot(page, "box-select")

    with page.expect_download() as download:
        page.click("#selection-m3u8")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("#EXTM3U") and text.count("#EXTINF:") == 12
    assert [int(i) for i in re.findall(r"/api/tracks/(\d+)/audio", text)] == selected

    # A smaller box in "Box select" mode (no shift) picks only what is inside it.
    page.click("#map-select-mode")
    x, y = dot_position(page, selected[0])
    page.mouse.move(x - 3, y - 3)
    page.mouse.down()
    page.mouse.move(x + 3, y + 3, steps=3)
    page.mouse.up()
    page.wait_for_function("document.querySelectorAll('#selection-list li.track').length < 12")
    assert selected[0] in ids(page, "#selection-list")


# ---------------------------------------------------------------------------------------------
# Library status and an index run
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def growing_server(_indexed_demo, demo_music, tmp_path):
    """A server of its own over the demo library plus a folder of two new files, not yet indexed."""
    from songspace.catalog import Catalog

    root = Path(shutil.copytree(_indexed_demo, tmp_path / "library"))
    extra = tmp_path / "new-music"
    extra.mkdir()
    for n, src in enumerate(sorted(demo_music.rglob("*.ogg"))[:2]):
        shutil.copy(src, extra / f"new-{n}.ogg")
    catalog = Catalog(root / "catalog.sqlite")
    catalog.add_folders([str(extra)])
    catalog.close()
    with serving(root, index_workers=0) as url:
        yield url


def test_index_run_from_the_page(browser, growing_server):
    context = browser.new_context(viewport={"width": 1400, "height": 860})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(growing_server + "/")
    page.wait_for_function("document.querySelector('#map-canvas').dataset.points == 12")
    assert "12 tracks" in page.locator("#status").inner_text()
    page.evaluate("""window.__notes = []; new MutationObserver(() => __notes.push([
        document.querySelector('#index-note').textContent, document.querySelector('#index-box').hidden,
        document.querySelector('#index-start').disabled])).observe(document.querySelector('#index-box'), {subtree: true, childList: true, characterData: true, attributes: true});""")
    page.click("#index-start")
    page.wait_for_function("document.querySelector('#index-note').textContent.startsWith('Done')", timeout=60_000)
    notes = page.evaluate("__notes")
    running = [text for text, hidden, disabled in notes if not hidden and disabled and not text.startswith("Done")]
    assert running, notes  # the bar showed the run while it went, the button disabled meanwhile
    assert "2 added" in page.locator("#index-note").inner_text()
    assert page.locator("#index-start").is_enabled()
    # The finished run refreshes what the page shows: status, search results, the map.
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('14 tracks')")
    page.wait_for_function("document.querySelectorAll('#search-results li.track').length === 14")
    page.wait_for_function("document.querySelector('#map-canvas').dataset.points == 14")
    assert page.locator("#index-note").inner_text().startswith("Done: 2 added")  # the outcome stays in view
    shot(page, "index")
    # One run at a time: a second start while one runs is refused (409) with a message.
    status = page.evaluate("""async () => { const a = fetch('/api/index', {method: 'POST'});
        const b = fetch('/api/index', {method: 'POST'}); return [(await a).status, (await b).status]; }""")
    assert sorted(status) in ([202, 409], [202, 202])  # the first may finish before the second arrives
    page.wait_for_function("async () => !(await (await fetch('/api/index')).json()).running")
    context.close()


def test_map_stays_smooth_with_10000_dots(page):
    """10,000 dots (synthetic, drawn by the page's own code): a full redraw, the dots layer
    included, stays well within a frame budget, and hover hit-tests cost microseconds."""
    timings = page.evaluate("""() => {
        let seed = 1; const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
        const points = [];
        for (let i = 0; i < 10000; i++) {
            const c = i % 40, cx = 0.1 + 0.8 * ((c * 7919) % 40) / 40, cy = 0.1 + 0.8 * ((c * 104729) % 37) / 37;
            points.push({id: 100000 + i, x: cx + (rnd() - 0.5) * 0.08, y: cy + (rnd() - 0.5) * 0.08,
                         artist: `artist ${c}`, album: `album ${i % 300}`, genre: `genre ${c % 9}`, title: `t${i}`, predicted: {}});
        }
        songspace.map.setData({points, method: "umap", predicted_names: []});
        songspace.map.renderNow();
        let t = performance.now();
        for (let i = 0; i < 10; i++) songspace.map.renderNow();
        const redraw = (performance.now() - t) / 10;
        const c = document.querySelector('#map-canvas'); const w = c.clientWidth, h = c.clientHeight;
        t = performance.now(); let found = 0;
        for (let i = 0; i < 2000; i++) if (songspace.map.hit(rnd() * w, rnd() * h) >= 0) found++;
        const hover = (performance.now() - t) / 2000;
        return {redraw, hover, found, points: +c.dataset.points, drawn: +c.dataset.drawn, layer: +c.dataset.layerMs};
    }""")
    print(f"\n10,000 dots: full redraw {timings['redraw']:.1f} ms (dots layer {timings['layer']:.1f}), hover hit-test {timings['hover'] * 1000:.1f} µs")
    assert timings["points"] == 10000 and timings["drawn"] == 10000
    assert timings["found"] > 0
    assert timings["redraw"] < 100, timings  # a busy 2-core machine; ~10 ms when it is idle
    assert timings["hover"] < 0.5, timings
    shot(page, "map-10000")

    # Box-select them all: a playlist too long for one URL is written by the page itself.
    box = page.locator("#map-canvas").bounding_box()
    page.click("#map-select-mode")
    page.mouse.move(box["x"] + 1, box["y"] + 1)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 1, box["y"] + box["height"] - 1, steps=3)
    page.mouse.up()
    page.wait_for_selector("#selection-list li.track")
    assert page.locator("#selection-info").inner_text().startswith("10000 tracks")
    # The list is virtualised: all 10,000 are in it, only those in view are drawn.
    assert page.evaluate("songspace.state.lists.selection.length") == 10000
    assert 0 < page.locator("#selection-list li.track").count() < 100
    assert page.locator("#selection-m3u8").get_attribute("href").startswith("blob:")
    with page.expect_download() as download:
        page.click("#selection-m3u8")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("#EXTM3U\n") and text.count("#EXTINF:") == 10000 and "/api/tracks/100000/audio" in text
