"""The typer app every command module registers on, the global --library option, and the two
things every command shares: opening the library, and turning expected failures into one red
line with an exit code, never a traceback.

Exit codes (README lists them): 0 all good; 1 some files could not be analysed (index); 2 bad
usage or input, a query that names no track, a damaged catalog; 3 the library is read-only (a
command that writes to it); 4 the disk is full (nothing stored before is lost); 130 interrupted;
143 stopped by SIGTERM."""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..catalog.store import write_failure
from ..errors import DiskFull, ReadOnlyLibrary, SongspaceError
from ..library import LIBRARY_ENV, Library, default_library_dir

app = typer.Typer(
    help="Music similarity from the sound itself. Index a folder, then ask for tracks that sound alike.\n\n"
    "  songspace index ~/Music\n\n  songspace similar 'artist - title'\n\n"
    "  songspace radio 12 40 -n 30 --m3u8 radio.m3u8\n\n  songspace path 12 40\n\n"
    "  songspace serve   (the web page: http://127.0.0.1:8765/)\n\n  songspace status",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
console = Console(stderr=True)  # messages, progress, errors
out = Console()  # the answer: a table, or JSON
state: dict = {}  # what the global options chose: {"library": Path | None}

# Parameters that the modules below the CLI name in their errors (SongspaceError.param), and the
# option a user of the CLI gives them with.
FLAGS = {"device": "--device", "music_dir": "--mpd-music-dir", "genre": "--genre", "mood": "--mood",
         "to_playlist": "--to-playlist NAME"}
EXIT_READ_ONLY = 3
EXIT_DISK_FULL = 4


@app.callback()
def main(
    library: Annotated[Optional[str], typer.Option(
        "--library", "-L", envvar=LIBRARY_ENV,
        help=f"Library directory (catalog, vector index, fitted models). Default: {default_library_dir()}")] = None,
):
    # A str, not a Path: Path("") is the current folder, and an empty --library (an unset
    # variable in a script) must not turn whatever folder we are in into a library.
    if library is not None and not library.strip():
        raise typer.BadParameter("give a folder, not an empty string", param_hint="--library")
    state["library"] = Path(library) if library is not None else None


def error_text(e: SongspaceError) -> str:
    """The error's message; where it names a parameter, also the option that gives it here."""
    flag = FLAGS.get(getattr(e, "param", None) or "")
    return f"{e} ({flag})" if flag else str(e)


@contextmanager
def clear_errors():
    """Expected failures (bad query, missing folder, undecodable file, bad parameter) become one
    red line and exit code 2, not a traceback; a read-only library 3, a full disk 4, whether
    SQLite or a file write (the vector index, the segment sidecar, a model) met it."""
    try:
        yield
    except SongspaceError as e:
        console.print(f"[red]error:[/] {escape(error_text(e))}")
        raise typer.Exit(EXIT_READ_ONLY if isinstance(e, ReadOnlyLibrary) else EXIT_DISK_FULL
                         if isinstance(e, DiskFull) else 2)
    except OSError as e:
        where = e.filename or (state.get("library") or default_library_dir()) / "catalog.sqlite"
        why = write_failure(e, where)
        if why is None:
            raise
        console.print(f"[red]error:[/] {escape(str(why))}")
        raise typer.Exit(EXIT_READ_ONLY if isinstance(why, ReadOnlyLibrary) else EXIT_DISK_FULL)
    except sqlite3.DatabaseError as e:
        if isinstance(e, sqlite3.OperationalError):  # locked, no permission: not damage
            raise
        # A writer checks the whole catalog when it opens it; a read-only query does not (it
        # would cost seconds at a million tracks), so damage shows where it is read.
        catalog = Path(state.get("library") or default_library_dir()).expanduser() / "catalog.sqlite"
        console.print(f"[red]error:[/] {escape(str(catalog))}: not a songspace catalog or damaged ({escape(str(e))}); "
                      f"move it aside and index the music again to rebuild it, or restore it from a backup")
        raise typer.Exit(2)


def open_library(readonly: bool = False) -> Library:
    """The library --library names; `readonly` for commands that only ask (nothing is created,
    migrated or written in the catalog)."""
    with clear_errors():  # a catalog that is not a database: one line naming the file, exit 2
        return Library.open(state.get("library"), readonly=readonly)


def indexed() -> bool:
    """Whether the library --library names has a catalog yet."""
    root = state.get("library") or default_library_dir()
    return (Path(root).expanduser() / "catalog.sqlite").is_file()


def print_json(answer) -> None:
    """An answer from `shapes` as indented JSON on stdout."""
    out.print_json(json.dumps(answer))
