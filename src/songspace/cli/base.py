"""The typer app every command module registers on, the global --library option, and the two
things every command shares: opening the library, and turning expected failures into one red
line with an exit code (2), never a traceback."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import SongspaceError
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
FLAGS = {"device": "--device", "music_dir": "--mpd-music-dir", "genre": "--genre", "mood": "--mood"}


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
    red line and exit code 2, not a traceback."""
    try:
        yield
    except SongspaceError as e:
        console.print(f"[red]error:[/] {escape(error_text(e))}")
        raise typer.Exit(2)


def open_library() -> Library:
    with clear_errors():  # a catalog that is not a database: one line naming the file, exit 2
        return Library.open(state.get("library"))


def print_json(answer) -> None:
    """An answer from `shapes` as indented JSON on stdout."""
    out.print_json(json.dumps(answer))
