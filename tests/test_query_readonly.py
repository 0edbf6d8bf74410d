"""Query commands open the library read-only: they create, migrate and write nothing in it."""

from __future__ import annotations

import json

import pytest

from songspace import Library
from songspace.errors import ReadOnlyLibrary

QUERIES = [("similar", "1", "--json"), ("radio", "1", "-n", "3", "--json"),
           ("path", "1", "2", "--json"), ("duplicates", "--json"), ("explain", "1", "2", "--json")]


@pytest.mark.parametrize("args", QUERIES, ids=[a[0] for a in QUERIES])
def test_a_query_on_a_missing_library_creates_nothing(library_dir, songspace, args):
    result = songspace(*args)
    assert result.exit_code == 2 and "no catalog here (nothing indexed yet)" in result.stderr
    assert not library_dir.exists()


def test_status_reads_an_indexed_library_and_shows_a_new_one_empty(indexed_library, tmp_path, songspace):
    assert json.loads(songspace("status", "--json", check=True).stdout)["searchable"] == 12
    result = songspace("--library", str(tmp_path / "new"), "status", "--json", check=True)
    assert json.loads(result.stdout)["tracks"] == 0  # as before: a library not indexed yet is empty


def test_a_read_only_library_refuses_writes(indexed_library):
    with Library.open(indexed_library, readonly=True) as lib:
        assert lib.status()["searchable"] == 12
        with pytest.raises(ReadOnlyLibrary, match="read-only"):
            lib.catalog.set_meta("model", "mfcc")
