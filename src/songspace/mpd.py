"""Play songspace's lists in a running MPD, as blissify does (python-mpd2).

MPD names its tracks by path relative to its music directory, so each track's path is made
relative to that directory: given by the user, else asked of MPD (its `config` command answers
only over its local socket), else read from MPD's config file when MPD runs on this machine.
A track outside that directory, unknown to MPD's database, or of another Subsonic server
(companion mode) is an error before the queue is touched: the queue is changed whole or not at all.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

from mpd import CommandError, MPDClient
from mpd.base import ConnectionError as MpdConnectionError

from .errors import MpdError
from .remote import elsewhere

DEFAULT_ADDRESS = "localhost:6600"
TIMEOUT = 10  # seconds: a local MPD answers in milliseconds
CONFIG_FILES = ("~/.config/mpd/mpd.conf", "~/.mpdconf", "~/.mpd/mpd.conf", "/etc/mpd.conf")


def parse_address(address: str | None) -> tuple[str, int | None]:
    """(host, port) of "HOST:PORT", "HOST", "[::1]:6600" or a socket path (port None). None:
    $MPD_HOST and $MPD_PORT, as mpc reads them, else localhost:6600."""
    if not address:
        host, port = os.environ.get("MPD_HOST", "localhost"), os.environ.get("MPD_PORT", "6600")
        address = host if host.startswith("/") else f"{host}:{port}"
    if address.startswith(("/", "~")):
        return os.path.expanduser(address), None
    m = re.fullmatch(r"\[(.+)\](?::(\d+))?|([^:]+)(?::(\d+))?", address)
    if m is None:
        raise MpdError(f"{address!r} is not an MPD address (HOST:PORT, HOST, or a socket path)")
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return host, int(port or 6600)


@contextmanager
def connect(address: str | None):
    """A connected MPDClient; MpdError when MPD cannot be reached."""
    host, port = parse_address(address)
    client = MPDClient()
    client.timeout = TIMEOUT
    shown = host if port is None else f"{host}:{port}"
    try:
        client.connect(host, port)
    except (OSError, MpdConnectionError) as e:
        raise MpdError(f"MPD at {shown} cannot be reached: {e}") from None
    try:
        yield client
    except (OSError, MpdConnectionError) as e:
        raise MpdError(f"lost the connection to MPD at {shown}: {e}") from None
    finally:
        try:
            client.disconnect()
        except Exception:  # already gone: nothing to release
            pass


def _from_config_file() -> str | None:
    for name in CONFIG_FILES:
        try:
            text = Path(name).expanduser().read_text(errors="replace")
        except OSError:
            continue
        m = re.search(r'^\s*music_directory\s+"([^"]+)"', text, re.MULTILINE)
        if m:
            return m.group(1)
    return None


def music_directory(client: MPDClient, address: str | None, given: str | Path | None = None) -> Path:
    """MPD's music directory: `given`, else what MPD says, else its config file (a local MPD)."""
    if given:
        return Path(given).expanduser().resolve()
    try:
        found = client.config()  # only over MPD's local socket
        if isinstance(found, dict):
            found = found.get("music_directory")
    except CommandError:
        found = None
    host, port = parse_address(address)
    if not found and (port is None or host in ("localhost", "127.0.0.1", "::1")):
        found = _from_config_file()
    if not found:
        raise MpdError("MPD's music directory is unknown (MPD tells it only over its local socket, and no MPD "
                       "config file was found): give it", param="music_dir")
    return Path(found).expanduser().resolve()


def relative_uri(path: str | Path, music_dir: Path) -> str:
    """The path of a file as MPD names it: relative to its music directory."""
    real = Path(os.path.realpath(path))
    try:
        return real.relative_to(music_dir).as_posix()
    except ValueError:
        raise MpdError(f"{path} is outside MPD's music directory {music_dir}") from None


def queue_after_current(client: MPDClient, uris: list[str]) -> int:
    """Replace everything after the current song in MPD's queue with `uris` (the whole queue
    when there is no current song); how many were queued. The current song plays on."""
    unknown = [u for u in uris if not client.find("file", u)]
    if unknown:
        raise MpdError(f"MPD's database does not hold {unknown[0]!r}"
                       f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}: update it (mpc update)")
    current = client.status().get("song")
    client.command_list_ok_begin()
    if current is None:
        client.clear()
    else:
        client.delete((int(current) + 1,))  # from after the current song to the end
    for uri in uris:
        client.add(uri)
    client.command_list_end()
    return len(uris)


def play_list(paths: list[str], address: str | None, music_dir: str | Path | None = None) -> int:
    """Queue these files in MPD after its current song; how many were queued. A song of another
    Subsonic server (companion mode) has no file here for MPD to play: said so before MPD is
    asked anything, rather than "outside MPD's music directory"."""
    remote = next((why for p in paths if (why := elsewhere(str(p))) is not None), None)
    if remote is not None:
        raise MpdError(f"{remote}: MPD plays files, and this library was indexed from a server: "
                       "save the list there as a playlist instead", param="to_playlist")
    with connect(address) as client:
        root = music_directory(client, address, music_dir)
        uris = [relative_uri(p, root) for p in paths]
        try:
            return queue_after_current(client, uris)
        except CommandError as e:
            raise MpdError(f"MPD refused the queue: {e}") from None


def current_path(address: str | None, music_dir: str | Path | None = None) -> Path:
    """The file MPD is playing (or paused on), as a path on this machine."""
    with connect(address) as client:
        song = client.currentsong()
        if not song or "file" not in song:
            raise MpdError("MPD has no current song to start from")
        if "://" in song["file"]:
            raise MpdError(f"MPD is playing a stream ({song['file']}), not a file of the library")
        return music_directory(client, address, music_dir) / song["file"]
