"""Small helpers several test files share (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
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


@contextmanager
def serving(root: Path, port: int | None = None, **app_options):
    """A real songspace server (uvicorn, in a thread) over the library in `root`; yields its base
    URL, http://127.0.0.1:PORT. `app_options` go to `create_app` (e.g. index_workers=0)."""
    import uvicorn

    from songspace.server.app import create_app

    port = port or free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(root, **app_options), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=15)
