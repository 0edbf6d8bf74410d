"""A→B journeys: the rules they never break, their small steps, and their command.

The library is a catalog filled directly with synthetic vectors (no audio): a well-populated
patch of the sphere, where small steps exist, and sparse layouts, where they do not.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from songspace.catalog import Catalog
from songspace.errors import InputError, QueryError
from songspace.query import Searcher
from songspace.recommend.path import journey
from helpers import unit

DIM = 16


def fill(library_dir: Path, vectors) -> Path:
    """A library whose track i+1 has vectors[i]."""
    cat = Catalog(Path(library_dir) / "catalog.sqlite")
    for i, v in enumerate(vectors):
        cat.put_ok(f"/music/patch/{i:03d}.flac", size=1, mtime=0.0, content_hash=str(i), duration=180.0,
                   tags={"artist": f"artist {i % 7}", "title": f"track {i}"}, model_id="synthetic",
                   vector=np.asarray(v, dtype=np.float32))
    cat.close()
    return Path(library_dir) / "catalog.sqlite"


def patch(n=300, seed=0):
    """n unit vectors spread evenly at random over a patch of a 2-sphere inside DIM dimensions,
    and the ids of its two far ends (A leftmost, B rightmost)."""
    rng = np.random.default_rng(seed)
    uv = rng.uniform(-1, 1, (n, 2))
    basis = np.linalg.qr(rng.standard_normal((DIM, 3)))[0].T
    vectors = unit(np.column_stack([np.ones(n), uv]) @ basis)
    return vectors, int(np.argmin(uv[:, 0])) + 1, int(np.argmax(uv[:, 0])) + 1


@pytest.fixture
def space(library_dir):
    vectors, a, b = patch()
    searcher = Searcher(fill(library_dir, vectors))
    yield searcher, vectors, a, b
    searcher.close()


def cosine_distance(vectors, i, j):
    return 1.0 - float(vectors[i - 1] @ vectors[j - 1])


def check_rules(trip, vectors, a, b, n):
    ids = [s.track.id for s in trip.steps]
    assert ids[0] == a and ids[-1] == b and 2 <= len(ids) <= n
    assert len(set(ids)) == len(ids)
    to_b = [cosine_distance(vectors, i, b) for i in ids]
    assert all(later < earlier for earlier, later in zip(to_b, to_b[1:]))
    np.testing.assert_allclose([s.to_b for s in trip.steps], to_b, atol=1e-5)
    steps = [0.0] + [cosine_distance(vectors, i, j) for i, j in zip(ids, ids[1:])]
    np.testing.assert_allclose([s.step for s in trip.steps], steps, atol=1e-5)
    assert trip.largest_step == pytest.approx(max(steps), abs=1e-5)
    assert trip.direct == pytest.approx(cosine_distance(vectors, a, b), abs=1e-5)


# ---------------------------------------------------------------------------------------------
# The rules, and small steps


@pytest.mark.parametrize("n", [2, 5, 12, 30])
def test_a_journey_keeps_the_rules(space, n):
    searcher, vectors, a, b = space
    trip = journey(searcher, a, b, n=n)
    check_rules(trip, vectors, a, b, n)
    assert len(trip.steps) == n  # a well-populated space has tracks for every step asked


def test_steps_are_small_in_a_well_populated_space(space):
    searcher, vectors, a, b = space
    trip = journey(searcher, a, b, n=12)
    assert trip.largest_step < trip.direct / 4
    # More tracks never make the largest step larger (here the gap next to A bounds both).
    assert journey(searcher, a, b, n=30).largest_step <= trip.largest_step
    assert journey(searcher, a, b, n=3).largest_step > trip.largest_step


def nearest_to_the_line(vectors, a, b, n):
    """The simple alternative: the track nearest each of n points along A→B, kept only when it
    is closer to B than the last one kept. Returns its largest step."""
    va, vb = vectors[a - 1], vectors[b - 1]
    to_b = 1 - vectors @ vb
    path = [a - 1]
    for t in np.linspace(0, 1, n)[1:-1]:
        point = unit((1 - t) * va + t * vb)
        for row in np.argsort(-(vectors @ point)):
            if to_b[row] < to_b[path[-1]]:
                break
        if row not in path and to_b[row] > 0:
            path.append(int(row))
    path.append(b - 1)
    return max(1 - vectors[i] @ vectors[j] for i, j in zip(path, path[1:]))


def test_beats_picking_the_track_nearest_each_point_of_the_line(library_dir):
    # Measured over 5 random patches: the bottleneck path's largest step is 0.42-0.72 times the
    # nearest-to-the-line one's.
    for seed in range(3):
        vectors, a, b = patch(seed=seed)
        root = library_dir / str(seed)
        searcher = Searcher(fill(root, vectors))
        trip = journey(searcher, a, b, n=12)
        check_rules(trip, vectors, a, b, 12)
        assert trip.largest_step < nearest_to_the_line(vectors, a, b, 12)
        searcher.close()


def test_shorter_when_nothing_lies_between(library_dir, songspace):
    # A and B, two tracks between them, and the rest on the far side of A from B.
    rng = np.random.default_rng(3)
    e = np.linalg.qr(rng.standard_normal((DIM, 3)))[0].T
    angle = np.array([0.0, 0.3, 0.6, 1.0] + list(np.linspace(-1.5, -0.2, 20)))  # A at 0, B at 1
    vectors = unit(np.cos(angle)[:, None] * e[0] + np.sin(angle)[:, None] * e[1])
    searcher = Searcher(fill(library_dir, vectors))
    trip = journey(searcher, 1, 4, n=10)
    check_rules(trip, vectors, 1, 4, 10)
    assert [s.track.id for s in trip.steps] == [1, 2, 3, 4]
    searcher.close()
    result = songspace("path", "1", "4", "-n", "10", "--json", check=True)
    assert len(json.loads(result.stdout)) == 4 and "only 4 tracks" in result.stderr


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_is_refused(space):
    searcher, _, a, b = space
    with pytest.raises(InputError, match="two different tracks"):
        journey(searcher, a, a)
    with pytest.raises(InputError, match="at least 2 tracks"):
        journey(searcher, a, b, n=1)
    with pytest.raises(InputError, match="more than the 300 searchable tracks"):
        journey(searcher, a, b, n=301)
    with pytest.raises(QueryError, match="no track with id 9999"):
        journey(searcher, a, 9999)


@pytest.fixture
def cli_space(library_dir):
    vectors, a, b = patch()
    fill(library_dir, vectors)
    cat = Catalog(library_dir / "catalog.sqlite")
    cat.put_failed("/music/broken.mp3", "not a recognised audio format")  # track 301
    cat.close()
    return vectors, a, b


@pytest.mark.parametrize("args, message", [
    (["A", "9999"], "no track with id 9999"),
    (["A", "301"], "track 301 (/music/broken.mp3) has no embedding: not a recognised audio format"),
    (["A", "A"], "a journey needs two different tracks"),
    (["A", "B", "-n", "1"], "at least 2 tracks (A and B), not n=1"),
    (["A", "B", "-n", "400"], "n=400 is more than the 300 searchable tracks"),
])
def test_cli_refuses_bad_input(cli_space, songspace, args, message):
    _, a, b = cli_space
    result = songspace("path", *[{"A": a, "B": b}.get(x, x) for x in args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())


def test_cli_refuses_an_empty_library(library_dir, songspace):
    Catalog(library_dir / "catalog.sqlite").close()
    result = songspace("path", "1", "2")
    assert result.exit_code == 2 and "no searchable tracks" in result.stderr


# ---------------------------------------------------------------------------------------------
# The command


def test_cli_table_json_and_m3u8(cli_space, songspace, tmp_path):
    vectors, a, b = cli_space
    result = songspace("path", a, b, "-n", "8", check=True)
    direct = cosine_distance(vectors, a, b)
    assert f"straight A→B {direct:.3f}" in result.stderr and "largest step" in result.stdout

    rows = json.loads(songspace("path", a, b, "-n", "8", "--json", check=True).stdout)
    assert len(rows) == 8 and rows[0]["id"] == a and rows[-1]["id"] == b
    assert rows[0]["step"] == 0 and all(r["step"] > 0 for r in rows[1:])
    assert [r["to_b"] for r in rows] == sorted((r["to_b"] for r in rows), reverse=True)
    assert f"largest step {max(r['step'] for r in rows):.3f}" in result.stderr

    playlist = tmp_path / "trip.m3u8"
    songspace("path", a, b, "-n", "8", "--m3u8", playlist, check=True)
    lines = playlist.read_text().splitlines()
    assert lines[0] == "#EXTM3U" and len(lines) == 1 + 2 * 8
    assert lines[2] == os.path.relpath(f"/music/patch/{a - 1:03d}.flac", tmp_path)  # relative by default


def test_on_indexed_audio(indexed_library, songspace):
    # The demo library: 4 synthesized styles x 3 tracks.
    rows = json.loads(songspace("path", "bass_drone 0", "bright_arpeggio 0", "-n", "6", "--json", check=True).stdout)
    assert rows[0]["title"] == "bass_drone 0" and rows[-1]["title"] == "bright_arpeggio 0"
    assert 2 <= len(rows) <= 6 and len({r["id"] for r in rows}) == len(rows)
    assert all(later["to_b"] < earlier["to_b"] for earlier, later in zip(rows, rows[1:]))
