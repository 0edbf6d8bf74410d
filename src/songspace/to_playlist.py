"""A list of tracks saved as a named playlist where its tracks live, so the user's players show it:
songspace's own playlists (the catalog's, served by its Subsonic API) for local files, and a
playlist on the other Subsonic server for tracks indexed from it (companion mode: remote.py).

Saving replaces the playlist of that name the same owner made before (a radio re-run updates
the one playlist instead of piling up copies). A list mixing local tracks and several servers'
is saved once in each place, each part in the list's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .catalog import Catalog, Track
from .errors import InputError
from .remote import RemoteServer, SubsonicClient
from .tags import clean

# The owner of playlists songspace writes into a library with no single Subsonic user (none, or
# several): saved public, so every user's apps list them.
OWNER = "songspace"
MAX_NAME = 200


@dataclass(frozen=True)
class Saved:
    """One playlist written: where (this library, or a server), its id there, how many tracks."""

    where: str
    playlist_id: str
    tracks: int


def playlist_name(name: str) -> str:
    """The name as saved; InputError for one that is empty (or only control characters)."""
    text = clean(name, MAX_NAME)
    if text is None:
        raise InputError("give the playlist a name", param="to_playlist")
    return text


def save_playlist(catalog_path: str | Path, tracks: Sequence[Track], name: str,
                  client_for: Callable[[RemoteServer], SubsonicClient]) -> list[Saved]:
    """Save `tracks` as playlist `name`: local files into the catalog at `catalog_path`, each
    server's songs on that server through `client_for(server)` (a signed-in client). InputError
    for an empty list; RemoteError from a server (what was saved elsewhere stays saved)."""
    name = playlist_name(name)
    if not tracks:
        raise InputError(f"no tracks to put in playlist {name!r}", param="to_playlist")
    parts: dict[RemoteServer | None, list[Track]] = {}
    for t in tracks:
        parts.setdefault(RemoteServer.of_track(t.path), []).append(t)
    saved = []
    for server, part in parts.items():
        if server is None:
            saved.append(save_local(catalog_path, part, name))
        else:
            playlist_id = client_for(server).save_playlist(name, [t.remote_id for t in part])
            saved.append(Saved(str(server), playlist_id, len(part)))
    return saved


def save_local(catalog_path: str | Path, tracks: Sequence[Track], name: str) -> Saved:
    """Into songspace's own catalog: owned by its one Subsonic user if it has exactly one (else
    by "songspace"), public, replacing that owner's playlist of the same name."""
    catalog = Catalog(catalog_path)
    try:
        users = [u for u, _ in catalog.users()]
        owner = users[0] if len(users) == 1 else OWNER
        before = [p for p in catalog.playlists() if p["name"] == name and p["owner"] == owner]
        playlist_id = catalog.save_playlist(before[0]["id"] if before else None, owner, name, [t.id for t in tracks],
                                            comment="made by songspace", public=True)
    finally:
        catalog.close()
    return Saved("this library", str(playlist_id), len(tracks))
