"""Lists of tracks as files: M3U8 playlists (their JSON rows: shapes.py).

M3U8 is UTF-8 `#EXTM3U` with one `#EXTINF:<seconds>,<artist> - <title>` line before each path;
paths are relative to the playlist file by default (the playlist keeps working when the music
and the playlist move together), absolute on request.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .catalog import Track
from .errors import InputError


def extinf(track: Track) -> str:
    seconds = -1 if track.duration is None else int(round(track.duration))
    name = f"{track.artist} - {track.title}" if track.artist and track.title else track.label
    return f"#EXTINF:{seconds},{' '.join(name.splitlines())}"


def m3u8_text(tracks: Sequence[Track], base: Path | None = None) -> str:
    """The playlist; paths relative to folder `base` when given, else absolute."""
    lines = ["#EXTM3U"]
    for t in tracks:
        lines.append(extinf(t))
        lines.append(os.path.relpath(t.path, base) if base is not None else t.path)
    return "\n".join(lines) + "\n"


def write_m3u8(tracks: Sequence[Track], out: str | Path, absolute: bool = False) -> Path:
    out = Path(out).expanduser()
    remote = [t for t in tracks if t.remote_id is not None]
    if remote:  # companion mode: a path a player could open does not exist for them
        server = remote[0].path.rsplit("/", 1)[0]
        raise InputError(f"{out}: {len(remote)} of these {len(tracks)} tracks are songs of {server} (companion "
                         "mode), not files here, and an M3U8 playlist lists files: save the list as a playlist "
                         "on that server instead", param="to_playlist")
    if out.is_dir():
        raise InputError(f"{out}: is a folder; give a playlist file name such as {out / 'playlist.m3u8'}")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such folder for the playlist")
    # Overwrite only what is a playlist already: a mistyped path must not replace a library's
    # catalog or a song.
    if out.suffix.lower() not in (".m3u8", ".m3u"):
        raise InputError(f"{out}: a playlist file name ends in .m3u8 (or .m3u)")
    if out.exists() and not is_playlist(out):
        raise InputError(f"{out}: exists and is not a playlist (no #EXTM3U header); not overwritten")
    base = None if absolute else out.resolve().parent
    try:
        out.write_text(m3u8_text(tracks, base), encoding="utf-8")
    except OSError as e:
        raise InputError(f"{out}: cannot write the playlist ({e.strerror or e})") from None
    return out


def is_playlist(path: Path) -> bool:
    """An extended M3U file (a UTF-8 byte-order mark allowed), or an empty file."""
    try:
        with open(path, "rb") as f:
            head = f.read(10)
    except OSError:
        return False
    return not head or head.removeprefix(b"\xef\xbb\xbf").startswith(b"#EXTM3U")
