"""The full-disk half of the fault-injection suite (fault_scenarios.py has the kills): a small
tmpfs holds the library, filled to evenly spaced amounts of free space, from none to the most a
clean run held at once beyond the library it started from (watched as it ran, its write-ahead
log included). Each command must finish or stop with the disk-full line (exit 4, no traceback)
keeping all it stored; a server must answer its writes with the disk-full error (never a 5xx)
and apply none of them; then, with space again, `check` passes and the work finished leaves
what a clean run leaves."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import fault_kit as kit
from fault_kit import Outcome, Verdict
from fault_scenarios import INDEX, Scenario, World, listening, serve_once


def disk_scenarios(world: World) -> list[Scenario]:
    """The commands that write the most, and the smallest write, on a full disk."""
    m = world.music
    return [
        Scenario("index (changes)", world.before, [["index", m, *INDEX]]),
        Scenario("use + index", world.after, [["use", "mfcc"], ["index", m, *INDEX]]),
        Scenario("user add", world.after, [["user", "add", "bob", "--password", "pw2"]]),
    ]


class Tmpfs:
    """A small tmpfs for the libraries (mount needs root or CAP_SYS_ADMIN: `mountable` says why
    not). `fill(leave)` takes all but `leave` bytes of it."""

    def __init__(self, folder: Path, size: str = "48m"):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=False,
                              capture_output=True, text=True)
        self.why_not = "" if done.returncode == 0 else f"cannot mount a tmpfs ({done.stderr.strip() or done.returncode})"

    def free(self) -> int:
        st = os.statvfs(self.folder)
        return st.f_bavail * st.f_frsize

    def used(self) -> int:
        st = os.statvfs(self.folder)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def fill(self, leave: int) -> Path:
        filler = self.folder / "filler"
        size = self.free() - leave
        if size > 0:
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
            try:
                os.posix_fallocate(fd, 0, size)
            finally:
                os.close(fd)
        return filler

    def clear(self) -> None:
        for entry in self.folder.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    def close(self) -> None:
        if not self.why_not:
            subprocess.run(["umount", "-l", str(self.folder)], check=False, capture_output=True)


def peak_during(disk: Tmpfs, run: Callable[[], object]) -> int:
    """The most `run` held on `disk` at once beyond what was there (at least a page)."""
    before, peak, stop = disk.used(), [0], threading.Event()

    def watch() -> None:  # a write-ahead log is gone once the run ends: watch as it runs
        while not stop.is_set():
            peak[0] = max(peak[0], disk.used())
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run()
    finally:
        stop.set()
        watcher.join()
    return max(peak[0] - before, 4096)


def reading_while_full(library: Path) -> list[str]:
    """`status` on the disk as the fault left it: reading needs no space (what went wrong, if)."""
    done = kit.songspace(library, "status", "--json")
    said = done.stdout + done.stderr
    if done.returncode != 0 or "Traceback" in said:
        return [f"`status` on the full disk: exit {done.returncode}: {said.strip()[-300:]}"]
    return []


def run_disk_full(s: Scenario, disk: Tmpfs, work: Path, points: int) -> list[Outcome]:
    """`s` on a disk with evenly spaced amounts of free space, from none to the most a clean run
    held at once beyond the library it started from (watched as it ran): each command either finishes or stops with the disk-full line (exit 4, no
    traceback) keeping all it stored; then, with space again, `check` passes and the commands
    run again leave what a clean run leaves."""
    work.mkdir(parents=True, exist_ok=True)
    disk.clear()
    library = kit.copy_library(s.base, disk.folder / "library")
    def clean_commands() -> None:
        for args in s.commands:
            done = kit.songspace(library, *args)
            assert done.returncode == 0, done.stderr

    written = peak_during(disk, clean_commands)
    clean = kit.held(library)
    outcomes = []
    for n in range(points):
        leave = round(n * written / max(points - 1, 1)) if points > 1 else 0
        disk.clear()
        library = kit.copy_library(s.base, disk.folder / "library")
        kept = kit.held(library, segments=False)
        filler = disk.fill(leave)
        v, stopped = Verdict(), False
        for args in s.commands:
            done = kit.songspace(library, *args)
            said = done.stdout + done.stderr
            if "Traceback" in said or done.returncode not in (0, 4):
                v.other.append(f"`{args[0]}` on a full disk: exit {done.returncode}: {said.strip()[-300:]}")
            if done.returncode == 4:
                stopped = True
                if "disk full" not in said:
                    v.other.append(f"`{args[0]}` exit 4 without saying the disk is full: {said.strip()[-200:]}")
                break
        v.other += reading_while_full(library)
        filler.unlink(missing_ok=True)  # this test's own reads need the room a -shm takes
        now = kit.held(library, segments=False)
        if now.integrity != "ok":
            v.corrupt = now.integrity
        else:  # nothing stored before is lost, full disk or not
            v.lost += [p for p, row in kept.tracks.items() if row[0] == "ok" and now.tracks.get(p, ("gone",))[0] != "ok"
                       and p in clean.tracks]
            if not set(kept.users) <= set(now.users) or len(now.playlists) < len(kept.playlists):
                v.other.append(f"users or playlists lost on a full disk: {listening(now)!r:.300}")
        if not v.corrupt:
            v.corrupt = kit.check_after(library)
        if not v.corrupt:
            for args in s.commands:
                done = kit.songspace(library, *args)
                if done.returncode != 0:
                    v.other.append(f"`{args[0]}` with space again: exit {done.returncode}: {done.stderr[-300:]}")
            cmp = kit.compare(kit.held(library), clean)
            v.lost += cmp.lost
            v.different, v.corrupt, v.other = cmp.different, cmp.corrupt, v.other + cmp.other
        outcomes.append(Outcome(s.name + " (disk full)", leave, "stopped" if stopped else "finished", stopped, v))
    return outcomes


def run_serve_disk_full(world: World, disk: Tmpfs, work: Path, points: int) -> list[Outcome]:
    """`serve` under load on a disk with evenly spaced amounts of free space: its index run and
    its playlist, star and play writes either succeed or are refused with the disk-full error
    (never a 5xx, never applied in part); then, with space again, `check` passes and an `index`
    leaves what a clean one does."""
    from helpers import free_port

    work.mkdir(parents=True, exist_ok=True)
    disk.clear()
    library = kit.copy_library(world.before, disk.folder / "library")
    clean = []
    written = peak_during(disk, lambda: clean.append(serve_once(library, world, free_port(), record=True,
                                                                out_dir=work)))
    states = clean[0].states
    expected = kit.held(world.after)
    outcomes = []
    for n in range(points):
        leave = round(n * written / max(points - 1, 1)) if points > 1 else 0
        disk.clear()
        library = kit.copy_library(world.before, disk.folder / "library")
        filler = disk.fill(leave)
        got = serve_once(library, world, free_port(), out_dir=work)
        v = Verdict(other=list(got.server_errors))
        if "Traceback" in got.log:
            v.other.append("a traceback in the server's log: " + got.log[got.log.index("Traceback"):][:500])
        v.other += reading_while_full(library)
        filler.unlink(missing_ok=True)
        now = kit.held(library, segments=False)
        if now.integrity != "ok":
            v.corrupt = now.integrity
        elif listening(now) != states[got.acked]:  # the answered writes, and nothing of a refused one
            v.other.append(f"after {got.acked} answered writes the catalog holds {listening(now)!r:.300}")
        if not v.corrupt:
            v.corrupt = kit.check_after(library)
        if not v.corrupt:
            done = kit.songspace(library, "index", world.music, *INDEX)
            if done.returncode != 0:
                v.other.append(f"index with space again: exit {done.returncode}: {done.stderr[-300:]}")
            cmp = kit.compare(kit.held(library), expected, listening=False)
            v.lost, v.different, v.corrupt, v.other = cmp.lost, cmp.different, cmp.corrupt, v.other + cmp.other
        refused = bool(got.refused) or got.acked < len(states) - 1
        outcomes.append(Outcome("serve under load (disk full)", leave, f"refused {got.refused}", refused, v))
    return outcomes
