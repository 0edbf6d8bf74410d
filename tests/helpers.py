"""Small helpers several test files share (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import numpy as np


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unit(x):
    """Rows scaled to unit length."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def ok_rows(db_path) -> int:
    """Tracks stored as 'ok' so far, read while a writer may be running: 0 when the catalog is not
    created yet or the writer holds it this instant (a short timeout: a poll must never wait on
    the writer while the run goes on without it)."""
    try:
        with sqlite3.connect(db_path, timeout=0.1) as db:
            return db.execute("SELECT COUNT(*) FROM tracks WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def style_of(path: str) -> str:
    """The style of a synthesized demo track: the folder `make_demo_library` put it in."""
    return Path(path).parent.name
