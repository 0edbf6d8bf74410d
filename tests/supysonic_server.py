"""A real supysonic (PyPI's `supysonic`, another project's Subsonic server) on loopback, over a
folder of music: for companion-mode tests. It runs in its own process (its database is global
state, and its licence, AGPL, stays on its side of a process boundary): `python
supysonic_server.py STATE MUSIC PORT USER PASSWORD` makes its database in STATE, adds the user,
scans MUSIC and serves the Subsonic API with werkzeug until killed. `running_supysonic` is the
context manager tests use."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path


def serve(state: Path, music: Path, port: int, user: str, password: str) -> None:
    from supysonic.config import DefaultConfig
    from supysonic.db import close_connection, open_connection
    from supysonic.managers.folder import FolderManager
    from supysonic.managers.user import UserManager
    from supysonic.scanner import Scanner
    from supysonic.web import create_application
    from werkzeug.serving import make_server

    class Config(DefaultConfig):
        BASE = {"database_uri": f"sqlite:///{state / 'supysonic.db'}", "scanner_extensions": None,
                "follow_symlinks": False}
        WEBAPP = {**DefaultConfig.WEBAPP, "cache_dir": str(state / "cache"), "mount_webui": False,
                  "log_level": "WARNING"}
        DAEMON = {**DefaultConfig.DAEMON, "socket": str(state / "daemon.sock"), "run_watcher": False}

    app = create_application(Config)
    open_connection()
    UserManager.add(user, password)
    FolderManager.add("music", str(music))
    scanner = Scanner()
    scanner.queue_folder("music")
    scanner.run()  # in this thread: the library is scanned before the first request
    close_connection()
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


@contextmanager
def running_supysonic(state: Path, music: Path, port: int, user: str, password: str):
    """A supysonic serving `music` at http://127.0.0.1:PORT, signed in as `user`; stopped after."""
    state.mkdir(parents=True, exist_ok=True)
    log = open(state / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, __file__, str(state), str(music), str(port), user, password],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:  # until it answers (scanning comes first)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/rest/ping?f=json", timeout=1).close()
                break
            except OSError as e:
                if getattr(e, "code", None):  # an HTTP answer, even an error: it is up
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"supysonic did not start: {(state / 'server.log').read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
