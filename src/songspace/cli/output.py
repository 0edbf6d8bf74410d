"""How commands show what they did: lists of tracks (a table, --json, or --m3u8 FILE), progress
bars, and times as players show them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..progress import Phase
from .base import console, out, print_json

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (one object per track).")]
M3u8Option = Annotated[Optional[Path], typer.Option("--m3u8", help="Also write the list as an M3U8 playlist to this file.")]
AbsoluteOption = Annotated[bool, typer.Option("--absolute", help="Absolute paths in the M3U8 (default: relative to the playlist file).")]
PlainJsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def show_tracks(title: str, rows: list[dict], as_json: bool, m3u8: Path | None, absolute: bool,
                tracks: list | None = None, columns: tuple[str, ...] = ("score",)) -> None:
    """Print `rows` (from shapes.track_row) as a table or JSON; write `tracks` as M3U8."""
    from ..playlists import write_m3u8

    if m3u8 is not None:
        write_m3u8(tracks, m3u8, absolute=absolute)
        console.print(f"wrote {m3u8} ({len(tracks)} tracks)")
    if as_json:
        print_json(rows)
        return
    table = Table(title=title)
    for col in ("#", *columns, "id", "track", "path"):
        table.add_column(col, overflow="fold")
    for i, row in enumerate(rows, 1):
        cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        name = f"{row['artist'] or '?'} - {row['title']}" if row["artist"] or row["title"] else Path(row["path"]).name
        table.add_row(str(i), *cells, str(row["id"]), name, row["path"])
    out.print(table)


def clock(seconds: float) -> str:
    """Seconds as m:ss (or h:mm:ss), as players show a position."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def span_text(span: tuple[float, float]) -> str:
    return f"{clock(span[0])}–{clock(span[1])}"


class ProgressReport:
    """Turns Library's report(phase, done, total, note) calls into rich progress bars with ETA;
    when stderr is not a terminal (a log file), into a plain line every 30 seconds instead."""

    LABELS = {Phase.FIT_CORPUS: "Reading music for training", Phase.FIT: "Training", Phase.ANALYSE: "Analysing",
              Phase.BASELINES: "Baselines", Phase.EMBED: "Embedding"}

    def __init__(self, progress: Progress):
        self.progress, self.tasks = progress, {}
        self.last_line = 0.0

    def __call__(self, phase: str, done: float, total: float, note: str) -> None:
        if phase not in self.LABELS:
            return
        if not console.is_terminal and time.monotonic() - self.last_line > 30:
            self.last_line = time.monotonic()
            console.print(f"{time.strftime('%H:%M:%S')} {self.LABELS[phase]}: {100 * done / max(total, 1e-9):.0f}% {note}")
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(self.LABELS[phase], total=total, note="")
        self.progress.update(self.tasks[phase], completed=done, total=total, note=note)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[note]}", style="dim"),
        console=console, transient=False,
    )
