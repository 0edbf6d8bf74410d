"""Browsing like a player: the albums, artists and track list of the page, through the real API
(a real uvicorn server) and in Debian's Chromium at 390×844 and 1440×900 (Playwright; the
system binary, nothing downloaded): albums grouped as the Subsonic view groups them, covers
from the files, tracks in disc and track order, one click from an album to play it; search
over every word; the track list virtualised (only the rows in view are in the page); and the
page over libraries of 0, 1 and 2 tracks, a track removed while it plays, a server restarted.

The library: tests/tagged_library.py's (an album over two discs with an embedded picture and a
cover.jpg, a compilation, an untagged file) plus one track tagged with accents.
Screenshots go to test-screenshots/ (git-ignored).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers import free_port, serving
from tagged_library import GREAT, png_bytes, write_tags

from songspace import Library

CHROMIUM = Path("/usr/bin/chromium")
SIZES = {"phone": (390, 844), "desktop": (1440, 900)}  # as test_page_screens.py
GREAT_ORDER = ["Opening", "Second", "Third", "Disc Two Opens", "Closing"]  # disc 1 then 2, not the file names' order
ACCENTED = {"title": "Géosphère", "artist": "Hoffmann Ensemble", "album": "Café Sessions", "genre": ["Électronique"],
            "tracknumber": "1"}


def get(url: str):
    """(status, JSON or bytes, content type) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body, kind, status = r.read(), r.headers.get("Content-Type", ""), r.status
    except urllib.error.HTTPError as e:
        body, kind, status = e.read(), e.headers.get("Content-Type", ""), e.code
    return status, (json.loads(body) if kind.startswith("application/json") else body), kind


@pytest.fixture(scope="module")
def music(tagged_music, tmp_path_factory) -> Path:
    """The tagged library, plus "Loose/cafe.mp3" tagged with accents (a copy of the untagged file)."""
    folder = Path(shutil.copytree(tagged_music, tmp_path_factory.mktemp("browse") / "music"))
    shutil.copy(folder / "Loose" / "untagged.mp3", folder / "Loose" / "cafe.mp3")
    write_tags(folder / "Loose" / "cafe.mp3", ACCENTED)
    return folder


@pytest.fixture(scope="module")
def library(music) -> Path:
    root = music.parent / "library"
    with Library.open(root) as lib:
        lib.index([music], workers=0)
    return root


@pytest.fixture(scope="module")
def server(library):
    with serving(library, index_workers=0) as url:
        yield url


# ---------------------------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------------------------


def albums_by_name(server) -> dict:
    status, found, _ = get(f"{server}/api/albums?limit=500")
    assert status == 200
    assert found["total"] == len(found["items"])
    return {a["name"]: a for a in found["items"]}


def test_albums_are_grouped_as_a_player_groups_them(server):
    found = albums_by_name(server)
    assert sorted(found) == ["Café Sessions", "Great Album", "Loose", "Summer Hits"]
    great, hits = found["Great Album"], found["Summer Hits"]
    assert (great["artist"], great["song_count"], great["year"], great["picture"]) == ("The Ensemble", 5, 2004, True)
    assert (hits["artist"], hits["compilation"], hits["song_count"], hits["picture"]) == ("Various Artists", True, 3, False)
    # Sorted by album artist, by their sort name when tagged ("Ensemble, The").
    status, page, _ = get(f"{server}/api/albums?limit=500")
    assert [a["artist"] for a in page["items"]] == ["The Ensemble", "Hoffmann Ensemble", "Unknown artist", "Various Artists"]
    # An album: its tracks in disc and track order, each with its disc and number.
    status, album, _ = get(f"{server}/api/albums/{great['id']}")
    assert status == 200
    assert [t["title"] for t in album["tracks"]] == GREAT_ORDER
    assert [(t["disc"], t["number"]) for t in album["tracks"]] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    # Paged: two at a time, the same albums in the same order.
    _, first, _ = get(f"{server}/api/albums?offset=0&limit=2")
    _, second, _ = get(f"{server}/api/albums?offset=2&limit=2")
    assert [a["id"] for a in first["items"] + second["items"]] == [a["id"] for a in page["items"]]


def test_covers_come_from_the_files_else_a_placeholder(server):
    found = albums_by_name(server)
    status, picture, kind = get(f"{server}{found['Great Album']['cover']}")
    assert status == 200 and kind == "image/png" and picture == png_bytes()  # the picture embedded in track 1
    status, drawn, kind = get(f"{server}{found['Summer Hits']['cover']}?size=32")
    assert status == 200 and kind == "image/png" and drawn.startswith(b"\x89PNG") and drawn != picture
    status, again, _ = get(f"{server}{found['Summer Hits']['cover']}?size=32")
    assert again == drawn  # the album keeps its colours


def test_artists_list_their_albums(server):
    status, found, _ = get(f"{server}/api/artists?limit=500")
    assert status == 200
    names = [a["name"] for a in found["items"]]
    assert names.index("The Ensemble") < names.index("Hoffmann Ensemble")  # "Ensemble, The"
    artists = {a["name"]: a for a in found["items"]}
    assert {"The Ensemble", "Various Artists", "Composer A", "Band One", "Hoffmann Ensemble"} <= set(artists)
    status, ensemble, _ = get(f"{server}/api/artists/{artists['The Ensemble']['id']}")
    assert [a["name"] for a in ensemble["albums"]] == ["Great Album"] and ensemble["albums"][0]["song_count"] == 5
    assert (ensemble["album_count"], ensemble["song_count"]) == (1, 5)  # no track credits them: their album's
    status, band, _ = get(f"{server}/api/artists/{artists['Band One']['id']}")  # a compilation's artist
    assert [a["name"] for a in band["albums"]] == ["Summer Hits"] and band["song_count"] == 1


def test_unknown_ids_and_bad_paging_are_4xx(server):
    for url in ("/api/albums/al-0000000000000000", "/api/albums/nonsense/cover", "/api/artists/ar-nope"):
        status, body, _ = get(server + url)
        assert status == 404, url
        assert "no album with id" in body["detail"] or "no artist with id" in body["detail"]
    assert get(server + "/api/albums/%2e%2e%2f%2e%2e%2fetc%2fpasswd/cover")[0] == 404  # an id, never a path
    for url in ("/api/albums?limit=0", "/api/albums?offset=-1", "/api/tracks?limit=501", "/api/artists?limit=x",
                "/api/albums/x/cover?size=5000"):
        status, body, _ = get(server + url)
        assert status == 422 and body["detail"], url
    # Odd searches are searches, never errors; an offset past the end is an empty page.
    for q in ("%25_*'\"", "x" * 5000, "%F0%9F%8E%B5", "   "):
        status, body, _ = get(f"{server}/api/tracks?q={q}")
        assert status == 200 and isinstance(body["items"], list), q
    status, body, _ = get(f"{server}/api/albums?offset=100000")
    assert status == 200 and body["items"] == [] and body["total"] == 4


def test_the_track_list_pages_and_searches_through_the_catalog(server, library):
    status, everything, _ = get(f"{server}/api/tracks?limit=500")
    assert status == 200
    with Library.open(library) as lib:
        ok = [t.id for t in lib.catalog.ok_tracks()]
        expected = [t.id for t in lib.catalog.search_text("hits") if t.status == "ok"]
    assert [t["id"] for t in everything["items"]] == ok and everything["total"] == len(ok)
    _, part, _ = get(f"{server}/api/tracks?offset=3&limit=4")
    assert [t["id"] for t in part["items"]] == ok[3:7] and part["total"] == len(ok)
    _, found, _ = get(f"{server}/api/tracks?q=hits")
    assert [t["id"] for t in found["items"]] == sorted(expected) and found["total"] == len(expected)


# ---------------------------------------------------------------------------------------------
# In Chromium, at both sizes
# ---------------------------------------------------------------------------------------------



# The browser tests share test_page_screens.py's checks; imported when a browser test runs, so that
# the API tests above run where Chromium is absent.


def screens():
    import test_page_screens

    return test_page_screens


def shot(page, name: str) -> Path:
    return screens().shot(page, name)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


def open_page(browser, url: str, size: str, before=lambda page: None):
    """test_page_screens.open_page, with `before(page)` called before the page loads."""
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, has_touch=size == "phone",
                                  is_mobile=size == "phone")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.errors, page.server_errors = [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("response", lambda r: r.status >= 500 and page.server_errors.append(f"{r.status} {r.url}"))
    before(page)
    page.goto(url + "/")
    page.wait_for_function("document.querySelector('#status').textContent.includes('track')")
    return context, page


def wait_playing(page, track_id: int) -> None:
    page.wait_for_function(f"""() => {{ const a = document.querySelector('#audio');
        return a.src.endsWith('/api/tracks/{track_id}/audio') && !a.paused && a.readyState >= 2; }}""")


def titles(page, selector: str) -> list[str]:
    return page.locator(f"{selector} li.track .title").all_inner_texts()


def controls_fit(page, where: str) -> None:
    found = page.evaluate(screens().CHECK_CONTROLS, page.size == "phone")
    assert found["checked"] >= 8, found
    assert not found["problems"], f"{page.size}, {where}:\n" + "\n".join(found["problems"])


def browse_page(browser, url: str, size: str):
    context, page = open_page(browser, url, size)
    page.size = size
    page.wait_for_selector("#search-results li.track")
    return context, page


@pytest.fixture(params=list(SIZES))
def sized(request, browser, server):
    context, page = browse_page(browser, server, request.param)
    yield page
    assert not page.errors, f"JavaScript errors on the page: {page.errors}"
    assert not page.server_errors, page.server_errors
    context.close()


@pytest.fixture
def desktop(browser, server):
    context, page = browse_page(browser, server, "desktop")
    yield page
    assert not page.errors, f"JavaScript errors on the page: {page.errors}"
    context.close()


def open_albums(page) -> None:
    page.click("#tab-albums")
    page.wait_for_function("document.querySelectorAll('#album-grid li.album-card').length === 4")


def card(page, name: str):
    return page.locator("#album-grid li.album-card", has=page.locator(".album-name", has_text=name))


def test_albums_and_artists_like_a_player(sized):
    page = sized
    open_albums(page)
    assert page.locator("#album-grid .album-name").all_inner_texts() == ["Great Album", "Café Sessions", "Loose", "Summer Hits"]
    # The cover a file has (an 8×8 picture embedded in track 1), else a placeholder drawn for the album.
    page.wait_for_function("[...document.querySelectorAll('#album-grid img.cover')].every((i) => i.complete && i.naturalWidth > 0)")
    sizes = page.locator("#album-grid img.cover").evaluate_all("imgs => imgs.map((i) => i.naturalWidth)")
    assert sizes == [8, 200, 200, 200], sizes
    controls_fit(page, "albums")
    saved = [shot(page, f"{page.size}-albums")]
    # An album: tracks over two discs in disc and track order; ▶ Play album plays track 1, n the next.
    card(page, "Great Album").locator(".album-open").click()
    page.wait_for_function("document.querySelectorAll('#album-list li.track').length === 5")
    assert titles(page, "#album-list") == GREAT_ORDER
    assert page.locator("#album-list .num").all_inner_texts() == ["1-1", "1-2", "1-3", "2-1", "2-2"]
    assert "5 tracks on 2 discs" in page.locator("#album-meta").inner_text()
    page.click("#album-play")
    ids = [int(i) for i in page.locator("#album-list li.track").evaluate_all("els => els.map((e) => e.dataset.id)")]
    wait_playing(page, ids[0])
    assert page.locator("#now-playing").inner_text() == "Composer A – Opening"
    controls_fit(page, "an album")
    saved.append(shot(page, f"{page.size}-album"))
    page.locator("body").focus()
    page.keyboard.press("n")
    assert page.evaluate("songspace.state.playing") == ids[1]
    # Its artist: their albums, as covers.
    page.click("#album-artist")
    page.wait_for_selector("#artist-albums li.album-card")
    assert page.locator("#artist-title").inner_text() == "The Ensemble"
    assert page.locator("#artist-albums .album-name").all_inner_texts() == ["Great Album"]
    controls_fit(page, "an artist")
    saved.append(shot(page, f"{page.size}-artist"))
    # The artists: everyone credited; a compilation's artist opens to the compilation.
    page.click("#artist-back")
    page.wait_for_selector("#artist-index li")
    names = page.locator("#artist-index .artist-name").all_inner_texts()
    assert {"The Ensemble", "Various Artists", "Band One", "Composer A", "Hoffmann Ensemble"} <= set(names)
    controls_fit(page, "artists")
    saved.append(shot(page, f"{page.size}-artists"))
    page.locator("#artist-index .artist-open", has_text="Band One").click()
    page.wait_for_function("document.querySelector('#artist-title').textContent === 'Band One'")
    assert page.locator("#artist-albums .album-name").all_inner_texts() == ["Summer Hits"]
    # ▶ on a cover plays the album at once (from the artist's page, here): track 1 of Summer Hits.
    page.locator("#artist-albums .album-play").click()
    page.wait_for_function("document.querySelectorAll('#album-list li.track').length === 3")
    assert titles(page, "#album-list")[0] == "Odd One"
    first = int(page.locator("#album-list li.track").first.get_attribute("data-id"))
    wait_playing(page, first)
    # One click from an album's track to its radio.
    page.locator("#album-list li.track").nth(1).locator('[data-action="radio"]').click()
    page.wait_for_function("songspace.state.lists.radio.length > 1")
    print(f"\nscreenshots in {saved[0].parent}: {', '.join(p.name for p in saved)}")


def test_axe_finds_nothing_serious_in_the_album_and_artist_views(sized):
    axe = pytest.importorskip("axe_playwright_python.sync_playwright", reason="pip install axe-playwright-python").Axe()
    page = sized
    summary = []

    def check(view: str) -> None:
        result = axe.run(page)
        violations = result.response["violations"]
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        summary.append(f"{view}: {len(result.response['passes'])} rules pass, {len(violations)} violations "
                       f"({', '.join(sorted(v['id'] + ':' + v['impact'] for v in violations)) or 'none'})")
        assert not bad, f"{page.size}, {view}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}" for v in bad)

    open_albums(page)
    check("albums")
    card(page, "Summer Hits").locator(".album-open").click()
    page.wait_for_selector("#album-list li.track")
    check("an album")
    page.click("#album-artist")
    page.wait_for_selector("#artist-albums li.album-card")
    check("an artist")
    page.click("#artist-back")
    page.wait_for_selector("#artist-index li")
    check("artists")
    print(f"\naxe-core at {page.size} size:\n  " + "\n  ".join(summary))


def test_search_finds_every_word_in_any_case_and_accent(desktop):
    """Needs Catalog.search_text's word search (title, artist, album, genre; accents and case
    ignored; a word's start is enough), which the page asks through /api/tracks?q=."""
    page = desktop

    def found(q: str) -> list[str]:
        page.fill("#search", q)
        page.wait_for_function(f"songspace.state.searchQuery === {json.dumps(q)}")
        return titles(page, "#search-results")

    assert found("hoffmann geosphere") == ["Géosphère"]  # two words, in two fields, without the accents
    assert found("GÉOSPH") == ["Géosphère"]  # the start of a word, in capitals
    assert found("cafe hoffmann") == ["Géosphère"]  # album and artist, in any order
    assert sorted(found("great composer")) == sorted(GREAT_ORDER)
    assert found("hoffmann sunny") == []
    assert "Nothing matches" in page.locator("#search-info").inner_text()


def test_search_finds_a_genre(desktop):
    """The issue's fields include the genre: "electronique" finds the track tagged "Électronique"."""
    page = desktop
    page.fill("#search", "electronique")
    page.wait_for_function("songspace.state.searchQuery === 'electronique'")
    assert titles(page, "#search-results") == ["Géosphère"]


# ---------------------------------------------------------------------------------------------
# A long list: only the rows in view are in the page
# ---------------------------------------------------------------------------------------------

LONG = 3000


@pytest.fixture(scope="module")
def long_library(library, music, tmp_path_factory) -> Path:
    """The tagged library plus LONG more tracks: each a hard link to one real file (so any of
    them plays), stored with that file's vector, a little moved, as the indexer stores tracks."""
    import numpy as np

    from songspace.tags import TAGS_VERSION

    base = tmp_path_factory.mktemp("long")
    root = Path(shutil.copytree(library, base / "library"))
    many = music / "Many"  # inside the indexed folder, so the server streams it
    many.mkdir(exist_ok=True)
    source = music / GREAT / "a-third.ogg"
    rng = np.random.default_rng(0)
    with Library.open(root) as lib:
        cat = lib.catalog
        model_id, vector = cat.vector(cat.by_path(str(source)).id)
        for i in range(LONG):
            path = many / f"{i:05d}.ogg"
            if not path.exists():
                path.hardlink_to(source)
            tags = {"title": f"Long {i:05d}", "artist": f"Artist {i % 40}", "album": f"Album {i % 200}",
                    "track": i % 15 + 1, "tags_version": TAGS_VERSION}
            cat.put_ok(str(path), size=path.stat().st_size, mtime=path.stat().st_mtime, content_hash=f"long-{i}",
                       duration=6.0, tags=tags, model_id=model_id, vector=vector + rng.normal(0, 0.01, vector.shape))
    return root


@pytest.mark.parametrize("size", list(SIZES))
def test_a_long_list_draws_only_what_is_in_view(browser, long_library, size):
    with serving(long_library, index_workers=0) as url:
        # The map of 3,000 new tracks is another test's business (bench/): not computed here.
        context, page = open_page(browser, url, size, before=lambda page: page.route(
            "**/api/map*", lambda route: route.fulfill(status=503, content_type="application/json",
                                                       body='{"detail": "not in this test"}')))
        page.size = size
        page.wait_for_selector("#search-results li.track")
        total = page.evaluate("songspace.state.lists.search.length")
        assert total > LONG
        drawn = page.locator("#search-results > li").count()
        assert 5 < drawn < 80, drawn  # the rows in view and a few around them, not 3,000
        assert page.evaluate("songspace.state.lists.search.filter(Boolean).length") < total  # not all loaded either
        assert page.locator("#search-info").inner_text().startswith("1–")
        controls_fit(page, "a long list")
        shot(page, f"{page.size}-long-list-top")
        # Scrolled to the end: the last rows are loaded and drawn, and the list still holds only a few.
        scroller = "#search-results" if size == "desktop" else "#panel-search"
        page.eval_on_selector(scroller, "el => el.scrollTop = el.scrollHeight")
        page.wait_for_function(f"() => {{ const rows = [...document.querySelectorAll('#search-results > li.track')];"
                               f" return rows.length && rows[rows.length - 1].dataset.index == {total - 1}"
                               f" && !rows.some((r) => r.classList.contains('placeholder')); }}")
        assert page.locator("#search-results > li").count() < 80
        last = page.evaluate(f"songspace.state.lists.search[{total - 1}]")
        assert page.locator("#search-results li.track").last.locator(".title").inner_text() == last["title"]
        assert page.locator("#search-info").inner_text().endswith(f"{total} of {total} tracks")
        controls_fit(page, "a long list, at its end")
        shot(page, f"{page.size}-long-list-end")
        # The keyboard: Home, End, ↑ and ↓ move between rows (drawn as they come into view).
        page.locator("#search-results li.track").last.locator('[data-action="like"]').focus()
        page.keyboard.press("Home")
        assert page.evaluate("document.activeElement.closest('li').dataset.index") == "0"
        assert page.evaluate("document.activeElement.dataset.action") == "like"
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.closest('li').dataset.index") == "2"
        page.keyboard.press("Enter")  # ♥ on row 2
        liked = page.evaluate("songspace.state.lists.search[2].id")
        assert page.evaluate("songspace.state.likes") == [liked]
        page.keyboard.press("End")
        page.wait_for_function(f"document.activeElement.closest('li') && document.activeElement.closest('li').dataset.index == {total - 1}")
        page.keyboard.press("ArrowUp")
        page.wait_for_function(f"document.activeElement.closest('li').dataset.index == {total - 2}")
        # Back at the top, row 2 is drawn again, still marked; the middle of the list loads as it shows.
        page.keyboard.press("Home")
        assert page.locator('#search-results li.track[data-index="2"] [data-action="like"]').get_attribute("aria-pressed") == "true"
        page.eval_on_selector(scroller, "el => el.scrollTop = el.scrollHeight / 2")
        page.wait_for_function("() => { const rows = [...document.querySelectorAll('#search-results > li.track')];"
                               " return rows.length && Number(rows[0].dataset.index) > 1000 && !rows.some((r) => r.classList.contains('placeholder')); }")
        # Play a row in the middle: n plays the next, loaded or not.
        row = page.locator("#search-results li.track").nth(10)
        at = int(row.get_attribute("data-index"))
        row.locator('[data-action="play"]').click()
        wait_playing(page, int(row.get_attribute("data-id")))
        page.locator("body").focus()
        page.keyboard.press("n")
        page.wait_for_function(f"songspace.state.playing === songspace.state.lists.search[{at + 1}].id")
        # 204 albums: the grid shows them 60 at a time, and says so.
        page.click("#tab-albums")
        page.wait_for_function("document.querySelectorAll('#album-grid li.album-card').length === 60")
        assert page.locator("#albums-info").inner_text() == "204 albums · 60 shown"
        page.click("#albums-more")
        page.wait_for_function("document.querySelectorAll('#album-grid li.album-card').length === 120")
        controls_fit(page, "a long album grid")
        assert not page.errors, page.errors
        assert not [e for e in page.server_errors if "/api/map" not in e], page.server_errors  # (the 503 answered above)
        context.close()


# ---------------------------------------------------------------------------------------------
# Bad input: libraries of 0, 1 and 2 tracks; a track removed while it plays; the server restarted
# ---------------------------------------------------------------------------------------------

SMALL = [f"{GREAT}/a-third.ogg", "Compilations/Summer Hits/03 - sunny.mp3"]  # Composer C (The Ensemble), Band One (a compilation)


def small_library(base: Path, music: Path, files: list[str]) -> Path:
    """A library over copies of these files of the tagged library (their folders kept), indexed."""
    for name in files:
        (base / "music" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(music / name, base / "music" / name)
    (base / "music").mkdir(exist_ok=True)
    with Library.open(base / "library") as lib:
        lib.index([base / "music"], workers=0)
    return base / "library"


@pytest.mark.parametrize("n", [0, 1, 2])
def test_albums_and_artists_of_tiny_libraries(browser, music, tmp_path, n):
    with serving(small_library(tmp_path, music, SMALL[:n]), index_workers=0) as url:
        context, page = open_page(browser, url, "phone")
        page.size = "phone"
        page.wait_for_function("document.querySelector('#search-info').textContent !== ''")
        page.click("#tab-albums")
        page.wait_for_function("document.querySelector('#albums-info').textContent !== ''")
        info = page.locator("#albums-info").inner_text()
        if n == 0:
            assert "No albums: the library is empty" in info
            assert "library is empty" in page.evaluate("document.querySelector('#search-info').textContent")
        else:
            assert info == f"{n} album{'s' if n > 1 else ''}"
            assert page.locator("#album-grid .album-name").all_inner_texts() == ["Great Album", "Summer Hits"][:n]
            page.locator("#album-grid .album-play").last.click()
            page.wait_for_selector("#album-list li.track")
            wait_playing(page, int(page.locator("#album-list li.track").first.get_attribute("data-id")))
            controls_fit(page, f"the album of a library of {n}")
        page.click("#tab-artists")
        page.wait_for_function("document.querySelector('#artists-info').textContent !== ''")
        artists = page.locator("#artist-index .artist-name").all_inner_texts()
        assert {0: [], 1: ["Composer C", "The Ensemble"], 2: ["Band One", "Composer C", "The Ensemble", "Various Artists"]}[n] \
            == sorted(artists)
        if n == 0:
            assert "No artists: the library is empty" in page.locator("#artists-info").inner_text()
        shot(page, f"phone-albums-library-of-{n}")
        assert not page.errors, page.errors
        assert not page.server_errors, page.server_errors
        context.close()


def test_a_track_removed_while_it_plays_and_a_server_restarted(browser, music, tmp_path):
    """An album plays; its first track's file is deleted and the library updated (the page's
    Update library): the page says the track left, shows the album without it, and "next" plays
    the track after it. The server stops under the open page: it says the server does not answer;
    started again on the same port, the page reads the library again and carries on."""
    root = small_library(tmp_path, music, [f"{GREAT}/01 Opening.flac", f"{GREAT}/b-second.mp3", f"{GREAT}/a-third.ogg"])
    port = free_port()

    with ExitStack() as running:  # closed and entered again: the server stops under the page, then comes back
        running.enter_context(serving(root, port, index_workers=0))
        context, page = open_page(browser, f"http://127.0.0.1:{port}", "desktop")
        page.click("#tab-albums")
        page.locator("#album-grid .album-play").first.click()
        page.wait_for_function("document.querySelectorAll('#album-list li.track').length === 3")
        ids = [int(i) for i in page.locator("#album-list li.track").evaluate_all("els => els.map((e) => e.dataset.id)")]
        wait_playing(page, ids[0])
        page.evaluate("document.querySelector('#audio').pause()")  # (a 6-second track: hold it while we look)
        (tmp_path / "music" / GREAT / "01 Opening.flac").unlink()
        page.click("#index-start")
        page.wait_for_function("document.querySelector('#now-sub').textContent === 'Removed from the library'")
        page.wait_for_function("document.querySelectorAll('#album-list li.track').length === 2")
        assert titles(page, "#album-list") == ["Second", "Third"]
        assert "1 removed" in page.locator("#index-note").inner_text()
        page.locator("body").focus()
        page.keyboard.press("n")
        wait_playing(page, ids[1])
        shot(page, "desktop-album-track-removed")

        running.close()
        page.click("#album-back")
        page.click("#tab-artists")  # (first seen now: read from the server)
        page.wait_for_function("document.querySelector('#toast').textContent.includes('does not answer')")
        running.enter_context(serving(root, port, index_workers=0))
        page.click("#tab-albums")
        page.click("#tab-artists")
        page.wait_for_function("document.querySelector('#toast').textContent.includes('server is back')")
        page.wait_for_function("document.querySelectorAll('#artist-index li').length === 3")  # Composer B, Composer C, The Ensemble
        page.click("#tab-albums")
        page.wait_for_function("document.querySelectorAll('#album-grid li.album-card').length === 1")
        assert not page.errors, page.errors
        context.close()
