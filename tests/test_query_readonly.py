"""Query commands open the library read-only: they create, migrate and write nothing in it."""

from __future__ import annotations

import sqlite3

import pytest

from songspace import Library

QUERIES = [("status", "--json"), ("similar", "1", "--json"), ("radio", "1", "-n", "3", "--json"),
           ("path", "1", "2", "--json"), ("duplicates", "--json"), ("explain", "1", "2", "--json")]


@pytest.mark.parametrize("args", QUERIES, ids=[a[0] for a in QUERIES])
def test_a_query_on_a_missing_library_creates_nothing(library_dir, songspace, args):
    result = songspace(*args)
    assert result.exit_code == 2 and "no catalog here (nothing indexed yet)" in result.stderr
    assert not library_dir.exists()


def test_a_read_only_library_refuses_writes(indexed_library):
    with Library.open(indexed_library, readonly=True) as lib:
        assert lib.status()["searchable"] == 12
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            lib.catalog.set_meta("model", "mfcc")
