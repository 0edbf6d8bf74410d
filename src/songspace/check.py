"""Checking a library and repairing what can be repaired from what it holds.

Three things are read back: the catalog (SQLite's integrity check), the vector index (rebuilt
from the catalog when it does not match it) and the segment sidecar (damaged records dropped,
so their tracks are analysed again by the next index run; the file compacted). A damaged
catalog stops the check: everything else is rebuilt from it, so nothing else can be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckReport:
    catalog: str  # the catalog's file
    damage: list[str] = field(default_factory=list)  # what SQLite found wrong; then nothing else was checked
    ok: int = 0  # tracks analysed
    failed: int = 0  # tracks that could not be analysed
    index_sound: bool = True  # False: the vector index did not match the catalog and was rebuilt
    index_note: str = ""
    segments_checked: int = 0  # tracks whose segment records were read back
    segment_problems: list[str] = field(default_factory=list)  # damaged records (dropped)
    bytes_before: int = 0  # the sidecar's size before and after compaction
    bytes_after: int = 0
    dropped: list[int] = field(default_factory=list)  # tracks whose segments were dropped: to analyse again

    @property
    def catalog_damaged(self) -> bool:
        return bool(self.damage)


def check_library(library) -> CheckReport:
    """Check (and where it can, repair) `library`, an open `Library`."""
    catalog = library.catalog
    report = CheckReport(catalog=str(catalog.path), damage=catalog.integrity())
    if report.damage:
        return report
    counts = catalog.counts()
    report.ok, report.failed = counts["ok"], counts["failed"]
    report.index_sound, report.index_note = library.searcher().check_index()
    report.segments_checked, report.segment_problems = catalog.check_segments()
    report.bytes_before, report.bytes_after, report.dropped = catalog.compact_segments(force=bool(report.segment_problems))
    return report
