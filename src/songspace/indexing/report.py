"""What an index run and a fit did: `IndexReport` and `FitResult`, as the CLI and the server read them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..fit_check import FitCheck


@dataclass
class FitResult(os.PathLike):
    """What `Library.fit` did: `model` is the model the library now embeds with (the fitted one,
    or the starting one kept because the check found the fit no better); as os.PathLike it is
    that path. `changed`: the library's model changed, so its tracks want re-embedding (by the
    next `index`: `fit` leaves that to its caller)."""

    model: Path
    fitted: Path  # the fitted model's file, kept in models/ either way (`use` can still take it)
    used: bool  # the fitted model replaced the starting one
    check: "FitCheck"
    steps: int
    changed: bool = False

    def __fspath__(self) -> str:
        return str(self.model)

    def __str__(self) -> str:
        return str(self.model)


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    retagged: int = 0  # of the unchanged: tracks whose tags were read again, their audio not analysed
    timbre_added: int = 0  # of the unchanged: tracks embedded before the timbre companion, given their Gaussian
    audio_seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)
    # (path, reason) of audio recorded as silent or too short: not failures, not searchable either
    set_aside: list[tuple[str, str]] = field(default_factory=list)
    kept_empty: list[tuple[str, int]] = field(default_factory=list)  # (folder, tracks kept): see `index`
    # (folder, reason, tracks kept) of folders that could not be read: their tracks stay
    unreadable: list[tuple[str, str, int]] = field(default_factory=list)
    fit: FitResult | None = None
    interrupted: bool = False
    tags_note: str | None = None  # what the tags head did after the run (autotags.refresh), one line
    timbre_note: str | None = None  # what the timbre companion's refresh did (proximity.refresh), one line

    @property
    def fitted_model(self) -> str | None:
        """With fit=True: the model embedded with (fitted, or kept)."""
        return None if self.fit is None else str(self.fit.model)
