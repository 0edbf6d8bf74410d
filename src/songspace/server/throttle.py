"""Slowing down whoever guesses: failed sign-ins (the login form, a wrong token, Subsonic
credentials) counted per client address, with an exponential back-off.

A client's first `free` failures cost nothing (typos); after that each failure blocks that
address for base * 2**(n - free) seconds, up to `most`. While blocked, the address gets no
answer to its credentials at all, right or wrong (429, or Subsonic's error 40), so guessing runs
at a few tries an hour instead of hundreds a second. A success clears the count. The clock is a
parameter so the tests can move time instead of waiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

FREE = 10  # failures before any wait
BASE = 1.0  # seconds of the first wait
MOST = 15 * 60.0  # the longest wait
REMEMBERED = 10_000  # addresses remembered at most (the oldest forgotten first)


class Throttle:
    def __init__(self, free: int = FREE, base: float = BASE, most: float = MOST,
                 clock: Callable[[], float] = time.monotonic):
        self.free, self.base, self.most, self.clock = free, base, most, clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address -> (count, blocked until)
        self._lock = threading.Lock()

    def wait(self, client: str) -> int:
        """Whole seconds `client` must still wait before its credentials are looked at (0: none)."""
        with self._lock:
            count, until = self._failures.get(client, (0, 0.0))
        return max(0, math.ceil(until - self.clock())) if count > self.free - 1 else 0

    def failed(self, client: str) -> None:
        with self._lock:
            count = self._failures.pop(client, (0, 0.0))[0] + 1
            wait = 0.0 if count <= self.free else min(self.most, self.base * 2 ** (count - self.free - 1))
            self._failures[client] = (count, self.clock() + wait)
            while len(self._failures) > REMEMBERED:
                self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


def client_address(request) -> str:
    """The address a request came from. Behind a reverse proxy on this machine (the peer is
    loopback), the address that proxy saw: the last one it added to X-Forwarded-For."""
    import ipaddress

    peer = request.client.host if request.client else "?"
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
    try:
        local = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        local = False
    return forwarded if forwarded and local else peer
