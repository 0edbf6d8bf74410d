"""`--ray [ADDRESS]`: the option of the commands that can run on a Ray cluster (index, embed)."""

from __future__ import annotations

import os
import re
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand

from ..errors import InputError


def looks_like_ray_address(text: str) -> bool:
    """"auto", "local", ray://HOST:PORT or HOST:PORT, and not a file or folder here (nor a
    bucket: `embed --ray s3://bucket/music/` embeds the bucket on a local cluster)."""
    if os.path.exists(text):
        return False
    return text in ("auto", "local") or text.startswith("ray://") or re.fullmatch(r"[\w.\-]+:\d+|\[[0-9a-fA-F:]+\]:\d+", text) is not None


class RayAddressCommand(TyperCommand):
    """A command whose `--ray` may stand alone (a local cluster) or take an address. Typer has no
    option with an optional value, so a bare `--ray` becomes `--ray local` before parsing; what
    follows `--ray` is its address only if it looks like one, so `index --ray ~/Music` works."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--":
                break
            if arg == "--ray" and (i + 1 == len(args) or not looks_like_ray_address(args[i + 1])):
                args.insert(i + 1, "local")
                break
        return super().parse_args(ctx, args)


RayOption = Annotated[Optional[str], typer.Option(
    "--ray", metavar="[ADDRESS]",
    help="Run on a Ray cluster (needs pip install 'songspace[ray]'). Alone: start one on this machine for the "
         "run; 'auto': the running cluster $RAY_ADDRESS names; or HOST:PORT / ray://HOST:10001.")]


def ray_config(address: str | None, ship_below_mb: float | None = None, always_ship: bool = False):
    if address is None:
        if ship_below_mb is not None or always_ship:
            raise InputError(f"{'--ship-below' if ship_below_mb is not None else '--always-ship'} works only with --ray")
        return None
    from ..distributed import DEFAULT_SHIP_BELOW, MiB, RayConfig

    ship_below = DEFAULT_SHIP_BELOW if ship_below_mb is None else int(ship_below_mb * MiB)
    return RayConfig(address=address, ship_below=ship_below, always_ship=always_ship)
