"""Streaming sample-rate conversion by a polyphase FIR filter, as a few matrix products.

Why not FFmpeg's resampler: in the PyAV wheel its float path runs at ~1,000x real time for
44.1/48 kHz -> 16 kHz, as slow as decoding itself; this one gives the same output to 1e-4 at
~8,000x (2,000x+ at 48 kHz) because the work becomes BLAS matrix products.

The filter copies FFmpeg's defaults as `audio` used them (Kaiser window, beta 9, cutoff 0.97 of
the lower Nyquist, `filter_size` 16 zero crossings), so vectors do not move when the decoder
switches resampler. Output sample n sits at input time n * rate_in / rate_out (the filter is
centred, zeros before the start and after the end), and a stream of N input samples gives
N * rate_out / rate_in output samples, rounded to the nearest (FFmpeg rounds halves either way).

How: with rate_out / rate_in = L / M, output n = q*L + p (phase p) is a dot product of the
phase's taps with the input starting at q*M + base[p]. For a group of consecutive phases those
inputs are one row of a strided view of the input (row q starts at q*M), so a group's outputs
are that view times a small matrix holding the group's taps: no copy of the input is made.
"""

from __future__ import annotations

from functools import lru_cache
from math import ceil, gcd

import numpy as np

FILTER_SIZE = 16
CUTOFF = 0.97
KAISER_BETA = 9.0
PHASES_PER_GROUP = 16  # measured: 16-32 fastest at 44.1 kHz (8,400x), 4-8 up to 3x slower


@lru_cache(maxsize=16)
def _plan(rate_in: int, rate_out: int) -> tuple[int, int, int, list[tuple[int, np.ndarray]]]:
    """(L, M, taps, groups): each group is (first input offset, taps matrix (span, phases))."""
    g = gcd(rate_in, rate_out)
    L, M = rate_out // g, rate_in // g
    fc = min(1.0, L / M) * CUTOFF  # cutoff as a fraction of the input's Nyquist frequency
    taps = 2 * ceil(FILTER_SIZE / fc / 2)
    # numpy hands a strided view to BLAS only when its rows do not overlap (span <= row
    # stride); with few phases per period (48 -> 16 kHz: L=1, M=3) take several periods as one.
    k = 1
    while min(PHASES_PER_GROUP, k * L) * M / L + taps > k * M:
        k += 1
    L, M = k * L, k * M
    group = min(PHASES_PER_GROUP, L)

    p = np.arange(L)
    base = (p * M) // L
    frac = (p * M - base * L) / L
    tau = frac[:, None] - np.arange(taps)[None, :] + (taps // 2 - 1)  # output time - input time
    window = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (tau / (taps // 2)) ** 2, 0, None))) / np.i0(KAISER_BETA)
    h = fc * np.sinc(fc * tau) * window

    groups = []
    for a in range(0, L, group):
        b = min(L, a + group)
        w = np.zeros((base[b - 1] - base[a] + taps, b - a), np.float32)
        for i in range(b - a):
            off = base[a + i] - base[a]
            w[off : off + taps, i] = h[a + i]
        groups.append((int(base[a]), w))
    return L, M, taps, groups


class Resampler:
    """Feed mono float32 blocks with `process`, then call `flush` once at the end."""

    def __init__(self, rate_in: int, rate_out: int):
        self.rate_in, self.rate_out = rate_in, rate_out
        self.identity = rate_in == rate_out
        if not self.identity:
            self.L, self.M, taps, self.groups = _plan(rate_in, rate_out)
            self.need = max(off + w.shape[0] for off, w in self.groups)  # input one period reads
            self.pending = np.zeros(taps // 2 - 1, np.float32)  # centres the filter on sample 0
        self.n_in = self.n_out = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        self.n_in += len(x)
        if self.identity:
            self.n_out += len(x)
            return x
        buf = np.concatenate([self.pending, np.asarray(x, np.float32)])
        q = (len(buf) - self.need) // self.M + 1 if len(buf) >= self.need else 0
        y = self._periods(buf, q)
        self.pending = buf[q * self.M :]
        self.n_out += len(y)
        return y

    def flush(self) -> np.ndarray:
        """The last outputs, computed against zeros after the end."""
        if self.identity:
            return np.zeros(0, np.float32)
        total = (2 * self.n_in * self.rate_out + self.rate_in - 1) // (2 * self.rate_in)
        buf = np.concatenate([self.pending, np.zeros(self.need + self.M, np.float32)])
        q = (len(buf) - self.need) // self.M + 1
        y = self._periods(buf, q)[: max(0, total - self.n_out)]
        self.n_out += len(y)
        self.pending = np.zeros(0, np.float32)
        return y

    def _periods(self, buf: np.ndarray, q: int) -> np.ndarray:
        if q <= 0:
            return np.zeros(0, np.float32)
        buf = np.ascontiguousarray(buf, np.float32)
        out = np.empty((q, self.L), np.float32)
        col = 0
        for off, w in self.groups:
            rows = np.ndarray((q, w.shape[0]), np.float32, buf, off * 4, (self.M * 4, 4))
            out[:, col : col + w.shape[1]] = rows @ w
            col += w.shape[1]
        return out.reshape(-1)
