"""songspace command line: index a music folder, then ask for tracks that sound alike.

`app` (base.py) is the typer app; each module below registers one group of commands on it when
imported. A new command is a new module here, imported below. Commands only parse, call the
library and the recommenders, and print: the JSON they print comes from `songspace.shapes`, the
same as the HTTP API's. Heavy imports (torch, sklearn, pyarrow, ray) happen inside commands.
"""

from __future__ import annotations

from . import indexing, queries, organise, models, export, server, tags  # noqa: F401  (registers the commands)
from .base import app, main

__all__ = ["app", "main"]
