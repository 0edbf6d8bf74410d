"""What became of a file: the statuses the catalog records for a track, and the outcomes of
analysing one file (those, and a few that are never recorded).

String enums: a member equals its text ("ok" == TrackStatus.OK), which is what SQLite stores,
JSON carries and older code compares with.
"""

from __future__ import annotations

from enum import StrEnum


class TrackStatus(StrEnum):
    """A track's status in the catalog."""

    OK = "ok"  # embedded: searchable
    FAILED = "failed"  # the file is to blame (`error` says why); retried once it changes
    SILENT = "silent"  # decoded, but no sound to compare: no vector
    TOO_SHORT = "too_short"  # decoded, but under a second: no vector


# Decoded audio that is no music to compare: recorded with its reason, kept out of search.
SET_ASIDE = frozenset({TrackStatus.SILENT, TrackStatus.TOO_SHORT})


class Outcome(StrEnum):
    """What analysing one file gave (analysis.Analysis.status): a track status to record, or one
    of the outcomes that are never recorded as such."""

    OK = "ok"
    FAILED = "failed"
    SILENT = "silent"
    TOO_SHORT = "too_short"
    UNCHANGED = "unchanged"  # the same content as the embedding already stored
    RETAGGED = "retagged"  # the same audio as the embedding stored, only its tags read (again)
    SKIPPED = "skipped"  # this run could not get at it (not the file's fault): tried again next run
    DECODED = "decoded"  # decoded only, for a GPU in the indexing process to embed (gpu.py)
