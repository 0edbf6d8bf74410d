"""The page on a phone (390×844) and a desktop (1440×900), in Debian's Chromium through
Playwright (the system binary; a browser is never downloaded): every control in view, on top
and big enough to tap; the one-click radio and its top-up; the player from the keyboard;
axe-core (shipped inside axe-playwright-python, nothing fetched) on every view; and the page
over libraries of 0, 1 and 2 tracks, a file removed, a server restarted.

Screenshots go to test-screenshots/ at the repository root (git-ignored); the tests print it.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers import free_port, serving
from test_page import CHROMIUM, SCREENSHOTS, browser, server, sync_api  # noqa: F401 (fixtures)

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
VIEWS = ["search", "similar", "radio", "journey", "selection", "map"]

# Every visible control: its box inside the viewport (scrolled into view first when it sits in
# a scrolling list or panel), on top at its centre, and on a phone at least 40 px square (a control inside
# a <label> is tapped through its label). Returns the problems, as text.
CHECK_CONTROLS = """(phone) => {
  const problems = [];
  const W = innerWidth, H = innerHeight;
  if (document.documentElement.scrollWidth > W) problems.push(`page is ${document.documentElement.scrollWidth} px wide in a ${W} px window`);
  const controls = [...document.querySelectorAll('button, a[href], input, select, audio, [role=tab], [tabindex="0"]')]
    .filter((e) => e.checkVisibility());
  for (const c of controls) {
    const scroller = c.closest('ol.tracks, ul.chips, .legend, .panel');
    if (scroller) c.scrollIntoView({block: 'nearest'});
    const target = c.closest('label') || c;
    const r = target.getBoundingClientRect();
    const name = `${c.tagName.toLowerCase()}#${c.id || ''}[${(c.getAttribute('aria-label') || c.textContent || c.value || '').trim().slice(0, 40)}]`;
    if (r.left < -0.5 || r.top < -0.5 || r.right > W + 0.5 || r.bottom > H + 0.5)
      problems.push(`${name} outside the viewport: ${JSON.stringify([r.left, r.top, r.right, r.bottom].map(Math.round))}`);
    const cr = c.getBoundingClientRect();
    const hit = document.elementFromPoint(cr.left + cr.width / 2, cr.top + cr.height / 2);
    if (!hit || !(hit === c || c.contains(hit) || target.contains(hit)))
      problems.push(`${name} covered by ${hit ? hit.tagName + '#' + hit.id + '.' + hit.className : 'nothing'}`);
    if (phone && (r.width < 40 || r.height < 40)) problems.push(`${name} is ${Math.round(r.width)}×${Math.round(r.height)} px`);
  }
  return {problems, checked: controls.length};
}"""


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def open_page(browser, url: str, size: str):
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True,
                                  has_touch=size == "phone", is_mobile=size == "phone")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.errors = []
    page.server_errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("response", lambda r: r.status >= 500 and page.server_errors.append(f"{r.status} {r.url}"))
    page.goto(url + "/")
    page.wait_for_function("document.querySelector('#status').textContent.includes('track')")
    return context, page


def loaded(browser, server, size):
    """A page of this size over the indexed demo library, loaded (list and map); checked for
    JavaScript errors and 5xx answers at the end."""
    context, page = open_page(browser, server, size)
    page.wait_for_selector("#search-results li.track")
    page.wait_for_function("document.querySelector('#map-canvas').dataset.points > 0")
    page.size = size
    yield page
    assert not page.errors, f"JavaScript errors on the page: {page.errors}"
    assert not page.server_errors, page.server_errors
    context.close()


@pytest.fixture(params=list(SIZES))
def sized(request, browser, server):
    """The page at each size (phone, desktop)."""
    yield from loaded(browser, server, request.param)


@pytest.fixture
def desktop(browser, server):
    """The page at the desktop size, for what does not depend on the layout."""
    yield from loaded(browser, server, "desktop")


def tap(page, selector: str) -> None:
    page.locator(selector).first.click()


def ids(page, list_selector: str) -> list[int]:
    return [int(i) for i in page.locator(f"{list_selector} li.track").evaluate_all("els => els.map(e => e.dataset.id)")]


def playable(page) -> list[int]:
    """Ids of the demo tracks in formats any Chromium plays."""
    items = page.evaluate("songspace.state.lists.search.map(t => [t.id, t.path])")
    return [i for i, path in items if path.rsplit(".", 1)[-1] in ("ogg", "flac", "wav", "mp3")]


def wait_playing(page, track_id: int) -> None:
    page.wait_for_function(f"""() => {{ const a = document.querySelector('#audio');
        return a.src.endsWith('/api/tracks/{track_id}/audio') && !a.paused && a.readyState >= 2; }}""")


def show_view(page, view: str) -> None:
    """Bring a view on screen with something in it."""
    first = playable(page)[0]
    row = f'#search-results li.track[data-id="{first}"]'
    if view == "search":
        tap(page, "#tab-search")
    elif view == "similar":
        tap(page, "#tab-search")
        tap(page, f'{row} [data-action="similar"]')
        page.wait_for_selector("#similar-list li.track")
        tap(page, '#similar-list li.track [data-action="explain"]')
        page.wait_for_selector("#similar-list .explain-pair")
    elif view == "radio":
        tap(page, "#tab-search")
        tap(page, f'{row} [data-action="radio"]')
        page.wait_for_selector("#radio-list li.track")
    elif view == "journey":
        tap(page, "#tab-search")
        tap(page, '#search-results li.track >> nth=0 >> [data-action="set-a"]')
        tap(page, '#search-results li.track >> nth=-1 >> [data-action="set-b"]')
        tap(page, "#tab-journey")
        tap(page, "#path-go")
        page.wait_for_selector("#journey-list li.track")
    elif view == "selection":
        page.evaluate("songspace.map.setSelectMode(false)")
        # a box drawn on the map (the map is on screen at both sizes once its tab is shown)
        if page.size == "phone":
            tap(page, "#tab-map")
        box = page.locator("#map-canvas").bounding_box()
        tap(page, "#map-select-mode")
        page.mouse.move(box["x"] + 2, box["y"] + 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=4)
        page.mouse.up()
        page.wait_for_selector("#selection-list li.track")
        page.evaluate("songspace.map.setSelectMode(false)")  # (on a phone the selection list is now shown, the map hidden)
    elif view == "map":
        if page.size == "phone":
            tap(page, "#tab-map")
        page.select_option("#map-color", "genre")


# ---------------------------------------------------------------------------------------------
# Phones and desktops
# ---------------------------------------------------------------------------------------------


def test_every_view_fits_and_every_control_is_reachable(sized):
    page = sized
    first = playable(page)[0]
    page.locator(f'#search-results li.track[data-id="{first}"] [data-action="play"]').click()
    wait_playing(page, first)
    title = page.evaluate(f"(() => {{ const t = songspace.state.tracks.get({first}); return t.artist ? `${{t.artist}} – ${{t.title}}` : t.title; }})()")
    saved = []
    for view in VIEWS:
        show_view(page, view)
        # A message is up while we look: it must push the page, never cover a control.
        page.evaluate("songspace.toast('A long message that must not cover any control of the page, however narrow the window is', 'info')")
        found = page.evaluate(CHECK_CONTROLS, page.size == "phone")
        assert found["checked"] >= 8, found
        assert not found["problems"], f"{page.size}, {view} view:\n" + "\n".join(found["problems"])
        # What plays is named in the player bar, in view.
        now = page.locator("#now-playing")
        assert now.inner_text() == title
        box = now.bounding_box()
        width, height = SIZES[page.size]
        assert box["width"] > 60 and 0 <= box["y"] and box["y"] + box["height"] <= height, box
        if page.size == "phone":  # the lists or the map, one at a time
            assert page.locator("#mapbox").is_visible() == (view == "map")
        saved.append(shot(page, f"{page.size}-{view}"))
    print(f"\nscreenshots in {SCREENSHOTS}: {', '.join(p.name for p in saved)}")


# ---------------------------------------------------------------------------------------------
# One click to a radio
# ---------------------------------------------------------------------------------------------


def test_one_click_radio_from_a_list_the_similar_list_the_map_and_the_player_bar(desktop):
    page = desktop
    searchable = page.evaluate("songspace.state.searchable")
    first = playable(page)[0]

    def radio_from(track_id: int) -> list[int]:
        page.wait_for_function(f"songspace.state.lists.radio.length > 0 && songspace.state.lists.radio[0].id === {track_id}")
        wait_playing(page, track_id)
        radio = ids(page, "#radio-list")
        assert radio[0] == track_id and len(radio) == len(set(radio)) and 2 <= len(radio) <= searchable, radio
        assert page.locator("#tab-radio").get_attribute("aria-selected") == "true"
        assert "Radio from" in page.locator("#radio-info").inner_text()
        return radio

    # From a row of the search list.
    page.locator(f'#search-results li.track[data-id="{first}"] [data-action="radio"]').click()
    radio_from(first)
    # From the similar list.
    page.click("#tab-search")
    page.locator(f'#search-results li.track[data-id="{first}"] [data-action="similar"]').click()
    page.wait_for_selector("#similar-list li.track")
    neighbour = next(i for i in ids(page, "#similar-list") if i in playable(page))
    page.locator(f'#similar-list li.track[data-id="{neighbour}"] [data-action="radio"]').click()
    radio_from(neighbour)
    # From the map: a dot clicked plays and lists its neighbours; the card above them has ∿.
    other = [i for i in playable(page) if i not in (first, neighbour)][0]
    p = page.evaluate(f"songspace.map.screenOf({other})")
    box = page.locator("#map-canvas").bounding_box()
    page.mouse.click(box["x"] + p["x"], box["y"] + p["y"])
    wait_playing(page, other)
    page.click("#similar-query [data-action=radio-query]")
    radio_from(other)
    # From the player bar, while the track plays on (not restarted).
    page.click("#tab-search")
    page.locator(f'#search-results li.track[data-id="{first}"] [data-action="play"]').click()
    wait_playing(page, first)
    page.evaluate("window.__starts = 0; document.querySelector('#audio').addEventListener('emptied', () => __starts++)")
    page.click("#now-radio")
    radio_from(first)
    assert page.evaluate("__starts") == 0
    shot(page, "radio-one-click")


def test_radio_tops_itself_up_and_never_repeats(desktop):
    """A short radio (4 tracks) from the Radio tab: once it plays, it asks for more from the same
    seeds as the queue runs low, adds only tracks not played or queued, and says when nothing
    close is left."""
    page = desktop
    searchable = page.evaluate("songspace.state.searchable")
    liked = playable(page)[0]
    page.locator(f'#search-results li.track[data-id="{liked}"] [data-action="like"]').click()
    page.click("#tab-radio")
    page.fill("#radio-n", "4")
    page.click("#radio-go")
    page.wait_for_selector("#radio-list li.track")
    first = ids(page, "#radio-list")
    assert 1 <= len(first) <= 4 and liked not in first
    page.locator("#radio-list li.track").first.locator('[data-action="play"]').click()
    page.wait_for_function(f"songspace.state.lists.radio.length > {len(first)}")  # topped up
    grown = ids(page, "#radio-list")
    assert grown[: len(first)] == first and len(grown) == len(set(grown)) and liked not in grown
    # Play on to the end (n, the keyboard's "next"): the radio grows until nothing close is left.
    page.locator("body").focus()
    for _ in range(searchable + 2):
        page.keyboard.press("n")
        page.wait_for_function("() => !songspace.state.radio.busy")
    final = ids(page, "#radio-list")
    assert len(final) == len(set(final)) and liked not in final and len(final) <= searchable - 1
    page.wait_for_function("document.querySelector('#radio-info').textContent.includes('ends here')")
    assert page.evaluate("songspace.state.playing") == final[-1]


# ---------------------------------------------------------------------------------------------
# The keyboard
# ---------------------------------------------------------------------------------------------


def test_the_player_works_from_the_keyboard(desktop):
    page = desktop
    tracks = ids(page, "#search-results")
    first = playable(page)[0]
    at = tracks.index(first)
    page.locator(f'#search-results li.track[data-id="{first}"] .title').click()
    wait_playing(page, first)
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press(" ")
    page.wait_for_function("document.querySelector('#audio').paused")
    page.keyboard.press(" ")
    page.wait_for_function("!document.querySelector('#audio').paused")
    before = page.evaluate("document.querySelector('#audio').currentTime")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"document.querySelector('#audio').currentTime >= {before} + 4.5")
    after = page.evaluate("document.querySelector('#audio').currentTime")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"document.querySelector('#audio').currentTime <= {after} - 4")
    volume = page.evaluate("document.querySelector('#audio').volume")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.querySelector('#audio').volume") < volume
    page.keyboard.press("n")
    assert page.evaluate("songspace.state.playing") == tracks[at + 1]
    page.keyboard.press("p")
    assert page.evaluate("songspace.state.playing") == first
    # Space on a focused button presses the button; it does not pause the player.
    page.focus("#tab-radio")
    page.keyboard.press(" ")
    assert page.locator("#tab-radio").get_attribute("aria-selected") == "true"
    assert not page.evaluate("document.querySelector('#audio').paused")
    # Typing in the search field is typing, not commands.
    page.click("#tab-search")
    page.focus("#search")
    page.keyboard.type("n p")
    assert page.input_value("#search") == "n p" and page.evaluate("songspace.state.playing") == first


# ---------------------------------------------------------------------------------------------
# Accessibility: axe-core on every view, at both sizes
# ---------------------------------------------------------------------------------------------


def test_axe_finds_nothing_serious_on_any_view(sized):
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright", reason="pip install axe-playwright-python")
    axe = axe_module.Axe()
    page = sized
    first = playable(page)[0]
    page.locator(f'#search-results li.track[data-id="{first}"] [data-action="play"]').click()
    summary = []
    for view in VIEWS:
        show_view(page, view)
        page.evaluate("songspace.toast('A message, as the page shows them', 'info')")
        result = axe.run(page)
        violations = result.response["violations"]
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        summary.append(f"{view}: {len(result.response['passes'])} rules pass, "
                       f"{len(violations)} violations ({', '.join(sorted(v['id'] + ':' + v['impact'] for v in violations)) or 'none'})")
        assert not bad, f"{page.size}, {view}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}" for v in bad)
        # Every button has a name that says what it does (not only its symbol's).
        unnamed = page.evaluate("""() => [...document.querySelectorAll('button')].filter((b) => b.checkVisibility())
            .filter((b) => { const n = (b.getAttribute('aria-label') || b.textContent || '').trim();
                             return !/[a-z]{2}/i.test(n); }).map((b) => b.outerHTML.slice(0, 120))""")
        assert not unnamed, unnamed
    print(f"\naxe-core at {page.size} size:\n  " + "\n  ".join(summary))


# ---------------------------------------------------------------------------------------------
# Honest progress, journey lengths, the legend
# ---------------------------------------------------------------------------------------------


def test_progress_lines_say_what_is_happening(desktop):
    page = desktop
    text = lambda p: page.evaluate("(p) => songspace.progressText(p)", p)  # noqa: E731
    assert "starting the workers" in text({"running": True, "phase": "analyse", "done": 0, "total": 1000, "note": ""})
    assert "0%" not in text({"running": True, "phase": "analyse", "done": 0, "total": 1000, "note": ""})
    assert text({"running": True, "phase": "analyse", "done": 500, "total": 1000, "files": 1, "note": "a.ogg"}) == "analyse 50% · 1 file done · a.ogg"
    assert text({"running": True, "phase": "analyse", "done": 750, "total": 1000, "files": 3, "note": "b.ogg"}) == "analyse 75% · 3 files done · b.ogg"
    # And the bar: no value (under way) before a first file, the bytes done after.
    page.evaluate("songspace.showIndex({running: true, phase: 'analyse', done: 0, total: 1000, files: 0, note: '', started: 1})")
    assert page.evaluate("document.querySelector('#index-progress').hasAttribute('value')") is False
    page.evaluate("songspace.showIndex({running: true, phase: 'analyse', done: 400, total: 1000, files: 2, note: 'c.ogg', started: 1})")
    assert page.evaluate("document.querySelector('#index-progress').position") == pytest.approx(0.4)
    page.evaluate("songspace.showIndex({running: false, phase: 'done', done: 1000, total: 1000, started: 1, report: null})")


def test_a_short_journey_says_why(desktop):
    page = desktop
    show_view(page, "journey")
    got = len(ids(page, "#journey-list"))
    why = page.locator("[data-testid=journey-why]").inner_text()
    if got < 12:
        assert f"only {got} of the 12 asked for" in why and "closer to B" in why, why
    else:
        assert why == "as many as asked for"


def test_the_legend_says_when_it_scrolls(sized):
    page = sized
    if page.size == "phone":
        tap(page, "#tab-map")
    page.select_option("#map-color", "album")
    assert page.locator("#legend-cue").is_hidden()  # 4 albums: all in view
    legend = page.evaluate("""() => { const points = [];
        for (let i = 0; i < 60; i++) points.push({id: 500000 + i, x: (i % 8) / 8, y: Math.floor(i / 8) / 8,
            album: `a rather long album title, number ${i % 17}`, title: `t${i}`, predicted: {}});
        songspace.map.setData({points, method: "umap", predicted_names: []});
        return [...document.querySelectorAll('#map-legend li')].map((li) => li.textContent); }""")
    assert any(t.startswith("1 other ") for t in legend), legend  # 17 albums, 16 colours: "1 other", not "1 others"
    assert page.locator("#map-legend").evaluate("ul => ul.scrollHeight > ul.clientHeight")  # 17 long entries
    cue = page.locator("#legend-cue")
    cue.wait_for(state="visible")
    assert "scroll the legend" in cue.inner_text()
    shot(page, f"{page.size}-legend")
    page.locator("#map-legend").evaluate("ul => ul.scrollTop = ul.scrollHeight")
    cue.wait_for(state="hidden")  # the end is in view


# ---------------------------------------------------------------------------------------------
# Bad input: tiny libraries, a file gone, the server restarted
# ---------------------------------------------------------------------------------------------


def build_library(base: Path, sources: list[Path]) -> Path:
    """A library at base/library over copies of `sources` in base/music, indexed."""
    from songspace import Library

    music = base / "music"
    music.mkdir()
    for i, src in enumerate(sources):
        shutil.copy(src, music / f"{i}-{src.name}")
    with Library.open(base / "library") as lib:
        lib.index([music], workers=0)
    return base / "library"


@pytest.fixture(scope="module")
def tiny_libraries(demo_music, tmp_path_factory):
    """Libraries of 0, 1 and 2 indexed tracks (ogg files from the demo music). Read-only."""
    sources = sorted(demo_music.rglob("*.ogg"))[:2]
    return {n: build_library(tmp_path_factory.mktemp(f"tiny{n}"), sources[:n]) for n in (0, 1, 2)}


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_libraries(browser, tiny_libraries, n):
    with serving(tiny_libraries[n], index_workers=0) as url:
        context, page = open_page(browser, url, "desktop")
        page.wait_for_function("document.querySelector('#search-info').textContent !== ''")
        page.wait_for_function("!document.querySelector('#map-info').textContent.startsWith('Drawing')")
        assert page.locator("#status").inner_text().startswith(f"{n} track")
        if n == 0:
            assert "library is empty" in page.locator("#search-info").inner_text()
            assert "Nothing on the map" in page.locator("#map-info").inner_text() or "No map" in page.locator("#map-info").inner_text()
        else:
            assert len(ids(page, "#search-results")) == n
            only = ids(page, "#search-results")[0]
            page.locator(f'#search-results li.track[data-id="{only}"] [data-action="radio"]').click()
            page.wait_for_function("document.querySelector('#radio-info').textContent.length > 0 && !document.querySelector('#radio-info').textContent.startsWith('Tuning')")
            info = page.locator("#radio-info").inner_text()
            if n == 1:
                assert "no other track" in info, info
            else:
                assert ids(page, "#radio-list") == [only, ids(page, "#search-results")[1]], info
            page.click("#tab-search")
            page.locator(f'#search-results li.track[data-id="{only}"] [data-action="similar"]').click()
            page.wait_for_function("!document.querySelector('#similar-info').textContent.startsWith('Listening')")
            similar = ids(page, "#similar-list")
            assert len(similar) == n - 1
            if n == 1:
                assert "no other track" in page.locator("#similar-info").inner_text()
            if n == 2:
                a, b = ids(page, "#search-results")
                page.click("#tab-search")
                page.locator(f'#search-results li.track[data-id="{a}"] [data-action="set-a"]').click()
                page.locator(f'#search-results li.track[data-id="{b}"] [data-action="set-b"]').click()
                page.click("#tab-journey")
                page.click("#path-go")
                page.wait_for_selector("#journey-list li.track")
                assert ids(page, "#journey-list") == [a, b]
                assert "the library holds 2 searchable tracks" in page.locator("[data-testid=journey-why]").inner_text()
        shot(page, f"library-of-{n}")
        assert not page.errors, page.errors
        assert not page.server_errors, page.server_errors
        context.close()


def test_a_removed_file_and_a_restarted_server(browser, demo_music, tmp_path):
    """The file of a track is deleted under the page: playing it says so and goes on. The server
    stops: the page says it does not answer; started again (same port), the page carries on."""
    root = build_library(tmp_path, sorted(demo_music.rglob("*.ogg"))[:2])
    port = free_port()

    with ExitStack() as running:  # closed and entered again: the server stops under the page, then comes back
        running.enter_context(serving(root, port, index_workers=0))
        context, page = open_page(browser, f"http://127.0.0.1:{port}", "desktop")
        page.wait_for_selector("#search-results li.track")
        tracks = page.evaluate("songspace.state.lists.search.map(t => [t.id, t.path])")
        gone_id, gone_path = tracks[0]
        Path(gone_path).unlink()
        page.locator(f'#search-results li.track[data-id="{gone_id}"] [data-action="play"]').click()
        page.wait_for_function("document.querySelector('#toast').textContent.includes('Cannot play')")
        assert "missing" in page.locator("#toast").inner_text()
        page.wait_for_function(f"songspace.state.playing === {tracks[1][0]}")  # and on to the next

        running.close()
        page.fill("#search", "x")
        page.wait_for_function("document.querySelector('#toast').textContent.includes('does not answer')")
        running.enter_context(serving(root, port, index_workers=0))
        page.fill("#search", "")
        page.wait_for_function("document.querySelector('#toast').textContent.includes('server is back')")
        page.wait_for_function("document.querySelectorAll('#search-results li.track').length === 2")
        assert not page.errors, page.errors
        context.close()
