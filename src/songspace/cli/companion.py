"""Companion mode on the command line: signing in to another Subsonic server (the secret from the
environment or a prompt, never from the command line), and `--to-playlist NAME`, shared by
radio, path and clusters."""

from __future__ import annotations

import getpass
import os
import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape

from ..errors import InputError
from .base import console

if TYPE_CHECKING:
    from ..catalog import Track
    from ..library import Library
    from ..remote import RemoteServer, SubsonicClient

PASSWORD_ENV = "SONGSPACE_REMOTE_PASSWORD"
API_KEY_ENV = "SONGSPACE_REMOTE_API_KEY"

SERVER_HELP = (
    "A Subsonic server instead: subsonic://USER@HOST[:PORT][/PATH] (http; subsonics:// or https://USER@... "
    f"for https; the port defaults to 80 or 443). The password comes from ${PASSWORD_ENV} or is asked for "
    f"(never on the command line); ${API_KEY_ENV} signs in with an API key instead, where the server offers "
    "OpenSubsonic's apiKeyAuthentication. Songs are downloaded one at a time, analysed and deleted; re-runs "
    "download only new or changed songs.")

ToPlaylistOption = Annotated[Optional[str], typer.Option(
    "--to-playlist", metavar="NAME",
    help="Also save the list as playlist NAME where its tracks live, replacing the one of that name saved "
         "before: on the Subsonic server the tracks were indexed from (companion mode), or in this library's "
         "own playlists (`songspace serve` shows them to every app).")]


def client_for(server: "RemoteServer") -> "SubsonicClient":
    """A client of `server`, signed in: the API key in $SONGSPACE_REMOTE_API_KEY, else the
    password in $SONGSPACE_REMOTE_PASSWORD, else the password typed at a prompt."""
    from ..remote import SubsonicClient

    if key := os.environ.get(API_KEY_ENV):
        client = SubsonicClient(server, key, api_key=True)
    else:
        client = SubsonicClient(server, password_for(server))
    client.sign_in()
    return client


def password_for(server: "RemoteServer") -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise InputError(f"{server}: no password: set ${PASSWORD_ENV} (nothing to type it on here)")
    try:
        return getpass.getpass(f"password of {server.user} at {server.host}:{server.port}: ")
    except (EOFError, KeyboardInterrupt):
        raise InputError(f"{server}: no password given") from None


def to_playlist(lib: "Library", tracks: list["Track"], name: str) -> None:
    """Save `tracks` as playlist `name` (to_playlist.py) and say where it went."""
    from ..to_playlist import save_playlist

    for saved in save_playlist(lib.root / "catalog.sqlite", tracks, name, client_for):
        console.print(f"playlist {escape(repr(name))} saved in {escape(saved.where)} "
                      f"(id {escape(saved.playlist_id)}, {saved.tracks} tracks)")
