"""How long work tells its caller where it is: `report(phase, done, total, note)`.

A face turns these calls into progress bars (the CLI) or a state others can poll (the server's
index job); `done` and `total` are in the phase's own units (files, bytes, a fraction).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class Phase(StrEnum):
    """The phases long work reports; a member equals its text ("analyse" == Phase.ANALYSE)."""

    SCAN = "scan"  # the folders walked: done == total == audio files found
    FIT_CORPUS = "fit-corpus"  # reading music for a fit (files)
    FIT = "fit"  # training (a fraction of the time budget)
    FIT_CHECK = "fit-check"  # reading the held-out tracks that check a fit (files)
    ANALYSE = "analyse"  # hashing, decoding and embedding the planned files (bytes)
    EMBED = "embed"  # embedding files into a dataset, without a catalog (files)
    BASELINES = "baselines"  # the hand-crafted baseline vectors beside a model's (files)
    # The server's index job, before and after a run
    STARTING = "starting"
    DONE = "done"
    FAILED = "failed"


# report(phase, done, total, note)
Report = Callable[[str, float, float, str], None]


def silent(phase: str, done: float, total: float, note: str) -> None:
    """A report that goes nowhere: the default when the caller asks for none."""
