"""The server face from the command line: serve the web page and the APIs, and the users of the
Subsonic API."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer
from rich.markup import escape

from ..library import default_library_dir
from .base import app, clear_errors, console, open_library, out, state


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
    token: Annotated[Optional[str], typer.Option(envvar="SONGSPACE_TOKEN", help="Every request must carry it (Authorization: Bearer, or the page's login form).")] = None,
):
    """The web page and the JSON API (OpenAPI docs at /docs), in this one process."""
    from ..server.auth import is_loopback_host

    if not token and not is_loopback_host(host):
        console.print(f"[red]error:[/] listening on {escape(host)} lets other machines in: give a token "
                      f"(--token or $SONGSPACE_TOKEN), or listen on 127.0.0.1")
        raise typer.Exit(2)
    import uvicorn

    from ..server import create_app

    with clear_errors():
        server_app = create_app(state.get("library") or default_library_dir(), token=token or None)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"songspace at http://{shown}:{port}/  (API docs: /docs; Ctrl-C stops)")
    uvicorn.run(server_app, host=host, port=port, log_level="warning")


user_app = typer.Typer(help="Users of the Subsonic API (/rest/ of `songspace serve`).", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name, as typed in the Subsonic app.")],
    password: Annotated[Optional[str], typer.Option("--password", help="The password (asked, hidden, when not given).")] = None,
):
    """Add a user (or change their password). Subsonic's token auth needs the plain password on
    the server: it is kept in the catalog, in clear, which becomes readable by its owner only.
    Use a password made for this, not one used anywhere else; or give clients an API key
    (`songspace user key NAME`) so they never hold the password."""
    if password is None:
        password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    if not name.strip() or not password:
        console.print("[red]error:[/] a user needs a name and a non-empty password")
        raise typer.Exit(2)
    with open_library() as lib, clear_errors():
        lib.catalog.add_user(name, password)
        console.print(f"user {escape(name)} can sign in at /rest/ ({lib.catalog.path} is now private: mode 600)")


@user_app.command("key")
def user_key(
    name: Annotated[str, typer.Argument(help="User name.")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Remove every API key of this user instead.")] = False,
):
    """Make an API key for a user (OpenSubsonic's apiKey): a client signs in with it alone,
    without holding the password. Shown once; the catalog keeps only its SHA-256."""
    import hashlib
    import secrets

    with open_library() as lib, clear_errors():
        if lib.catalog.user_password(name) is None:
            console.print(f"[red]error:[/] no user {escape(name)!r}: add one with `songspace user add {escape(name)}`")
            raise typer.Exit(2)
        if revoke:
            console.print(f"removed {lib.catalog.remove_api_keys(name)} API keys of {escape(name)}")
            return
        key = secrets.token_urlsafe(32)
        lib.catalog.add_api_key(name, hashlib.sha256(key.encode()).hexdigest())
    out.print(key)
    console.print(f"an API key for {escape(name)} (give it to the client as apiKey; it is not shown again)")


@user_app.command("stream")
def user_stream(
    name: Annotated[str, typer.Argument(help="User name.")],
    max_bit_rate: Annotated[Optional[int], typer.Option("--max-bit-rate", min=0, max=100_000, help="Cap in kbit/s for streams that ask for none (0: no cap).")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="Transcode to this format (mp3, opus, aac) when a player asks for none.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the defaults: original files unless a player asks.")] = False,
):
    """A user's stream defaults: what their players get when they ask for no format or bit
    rate (a phone on mobile data). Without options: show them."""
    from ..server import transcode

    with open_library() as lib, clear_errors():
        if lib.catalog.user_password(name) is None:
            console.print(f"[red]error:[/] no user {escape(name)!r}: add one with `songspace user add {escape(name)}`")
            raise typer.Exit(2)
        if format is not None:
            format = transcode.target(format).name  # unknown or not in this FFmpeg: one line, exit 2
        if clear:
            lib.catalog.set_stream_defaults(name, None, None)
        elif max_bit_rate is not None or format is not None:
            old_rate, old_format = lib.catalog.stream_defaults(name)
            rate = old_rate if max_bit_rate is None else (max_bit_rate or None)
            lib.catalog.set_stream_defaults(name, rate, format or old_format)
        rate, fmt = lib.catalog.stream_defaults(name)
    out.print(f"{escape(name)}\tmax bit rate: {f'{rate} kbit/s' if rate else 'none'}\tformat: "
              f"{fmt or (transcode.DEFAULT_FORMAT + ' when over the cap' if rate else 'original')}")


@user_app.command("list")
def user_list():
    """The users of the Subsonic API."""
    with open_library() as lib:
        for name, created in lib.catalog.users():
            out.print(f"{escape(name)}\tadded {time.strftime('%Y-%m-%d %H:%M', time.localtime(created))}")


@user_app.command("remove")
def user_remove(name: Annotated[str, typer.Argument(help="User name.")]):
    """Remove a user (their playlists, stars and plays stay in the catalog)."""
    with open_library() as lib:
        if not lib.catalog.remove_user(name):
            console.print(f"[red]error:[/] no user {escape(name)!r}")
            raise typer.Exit(2)
        console.print(f"removed user {escape(name)}")
