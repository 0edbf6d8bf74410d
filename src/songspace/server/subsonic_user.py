"""Subsonic handlers for what each user keeps while listening: the play queue (to resume on
another device), bookmarks (a position in a long track), ratings, and what is playing now.

Play queues, bookmarks and ratings live in the catalog (catalog/listening.py), per user. What
is playing now lives only in memory: a play is noted when `stream` starts a song from its first
byte, or when a client scrobbles with submission=false (its "now playing" notice); an entry
stays until the song would have ended, plus a few minutes, or until the same client starts
another.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from . import subsonic_library as lib
from .subsonic_format import GENERIC, MISSING, SubsonicError
from .subsonic_request import Ctx, method

GRACE_S = 300  # a paused song still counts as playing this long past its end
MAX_QUEUE = 10_000  # songs in a saved play queue


# ---------------------------------------------------------------------------------------------
# Now playing
# ---------------------------------------------------------------------------------------------


@dataclass
class NowPlaying:
    """(user, client) -> (song id, when it started), for every client that played lately."""

    playing: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    players: dict[tuple[str, str], int] = field(default_factory=dict)  # stable player ids
    lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, user: str, client: str, song_id: int) -> None:
        with self.lock:
            self.playing[(user, client)] = (song_id, time.time())
            self.players.setdefault((user, client), len(self.players) + 1)

    def entries(self, durations: dict[int, float]) -> list[tuple[str, str, int, int, float]]:
        """(user, client, player id, song id, minutes ago) of the songs still playing, newest first;
        `durations`: seconds of each song known now (a song gone from the library is dropped)."""
        now = time.time()
        with self.lock:
            found = [(u, c, self.players[(u, c)], song, (now - when) / 60)
                     for (u, c), (song, when) in self.playing.items()
                     if song in durations and now - when <= (durations[song] or 0) + GRACE_S]
        return sorted(found, key=lambda e: e[4])


_start_lock = threading.Lock()


def now_playing(ctx: Ctx) -> NowPlaying:
    """The app's record of what plays now (one per app, made on first use)."""
    state = ctx.request.app.state
    with _start_lock:
        if not hasattr(state, "subsonic_now_playing"):
            state.subsonic_now_playing = NowPlaying()
        return state.subsonic_now_playing


@method("getNowPlaying")
def get_now_playing(ctx: Ctx) -> dict:
    songs = ctx.view.songs
    entries = now_playing(ctx).entries({i: t.duration for i, t in songs.items()})
    return {"nowPlaying": {"entry": [{**ctx.child(songs[song]), "username": user, "minutesAgo": int(ago),
                                      "playerId": player, "playerName": client or None}
                                     for user, client, player, song, ago in entries]}}


# ---------------------------------------------------------------------------------------------
# Play queue and bookmarks
# ---------------------------------------------------------------------------------------------


def _milliseconds(ctx: Ctx, name: str) -> int:
    return ctx.params.int(name, 0, 0, 2**53)


def _queue(ctx: Ctx) -> tuple[list, int | None, dict | None]:
    """(songs, index of the current one among them, what was saved) of the user's play queue:
    songs removed from the library since drop out, and the current index moves with them."""
    saved = ctx.catalog.play_queue(ctx.user)
    if saved is None:
        return [], None, None
    songs, current = [], None
    for n, i in enumerate(saved["track_ids"]):
        if i in ctx.view.songs:
            if n == saved["current"]:
                current = len(songs)
            songs.append(ctx.view.songs[i])
    return songs, current, saved


def _queue_body(ctx: Ctx, saved: dict | None) -> dict:
    if saved is None:  # nothing saved: an empty queue, as the schema has it
        return {"username": ctx.user, "changed": lib.iso(0), "changedBy": ""}
    return {"username": ctx.user, "changed": lib.iso(saved["changed"]), "changedBy": saved["changed_by"]}


@method("getPlayQueue")
def get_play_queue(ctx: Ctx) -> dict:
    """The user's saved queue; an empty one (no entries) when none was saved."""
    songs, current, saved = _queue(ctx)
    return {"playQueue": {"current": None if current is None else str(songs[current].id),
                          "position": None if current is None else saved["position"],
                          **_queue_body(ctx, saved), "entry": ctx.children(songs)}}


@method("getPlayQueueByIndex")
def get_play_queue_by_index(ctx: Ctx) -> dict:
    """getPlayQueue with the current song as its index in the queue (OpenSubsonic's indexBasedQueue)."""
    songs, current, saved = _queue(ctx)
    return {"playQueueByIndex": {"currentIndex": current, "position": None if current is None else saved["position"],
                                 **_queue_body(ctx, saved), "entry": ctx.children(songs)}}


def _save_queue(ctx: Ctx, current_index) -> dict:
    ids = ctx.params.getlist("id")
    if len(ids) > MAX_QUEUE:
        raise SubsonicError(GENERIC, f"A play queue holds at most {MAX_QUEUE} songs, not {len(ids)}.")
    tracks = [ctx.song(i).id for i in ids]
    index = current_index(tracks)
    with ctx.writer() as w:
        w.save_play_queue(ctx.user, tracks, index, _milliseconds(ctx, "position"), ctx.params.get("c") or "")
    return {}


@method("savePlayQueue")
def save_play_queue(ctx: Ctx) -> dict:
    """Replace the user's queue with the `id` songs (none: forget it); `current` must be one of them."""
    def index(tracks: list[int]) -> int | None:
        current = ctx.params.get("current")
        if not current:
            return None
        current_id = ctx.song(current).id
        if current_id not in tracks:
            raise SubsonicError(GENERIC, f"current ({current}) must be one of the queue's songs (id).")
        return tracks.index(current_id)

    return _save_queue(ctx, index)


@method("savePlayQueueByIndex")
def save_play_queue_by_index(ctx: Ctx) -> dict:
    """savePlayQueue with the current song given by its index in the queue (from 0)."""
    def index(tracks: list[int]) -> int | None:
        text = ctx.params.get("currentIndex")
        if text is None or text == "":
            return None
        n = ctx.params.int("currentIndex", 0, -1, 2**31)
        if not 0 <= n < len(tracks):
            raise SubsonicError(GENERIC, f"currentIndex must be a position in the queue (0 to {len(tracks) - 1}), "
                                         f"not {text[:20]!r}.")
        return n

    return _save_queue(ctx, index)


@method("createBookmark")
def create_bookmark(ctx: Ctx) -> dict:
    t = ctx.song(ctx.params.require("id"))
    ctx.params.require("position")
    with ctx.writer() as w:
        w.save_bookmark(ctx.user, t.id, _milliseconds(ctx, "position"), ctx.params.get("comment"))
    return {}


@method("getBookmarks")
def get_bookmarks(ctx: Ctx) -> dict:
    songs = ctx.view.songs
    return {"bookmarks": {"bookmark": [
        {"position": b["position"], "username": ctx.user, "comment": b["comment"], "created": lib.iso(b["created"]),
         "changed": lib.iso(b["changed"]), "entry": ctx.child(songs[b["track_id"]])}
        for b in ctx.catalog.bookmarks(ctx.user) if b["track_id"] in songs]}}


@method("deleteBookmark")
def delete_bookmark(ctx: Ctx) -> dict:
    t = ctx.song(ctx.params.require("id"))
    with ctx.writer() as w:
        w.delete_bookmark(ctx.user, t.id)
    return {}


# ---------------------------------------------------------------------------------------------
# Ratings
# ---------------------------------------------------------------------------------------------


@method("setRating")
def set_rating(ctx: Ctx) -> dict:
    """Rate a song, an album or an artist 1 to 5 for this user; 0 removes the rating."""
    item = ctx.params.require("id")
    v = ctx.view
    if item not in v.albums and item not in v.artists and item not in v.dirs:
        ctx.song(item)  # 70 unless a song
    text = ctx.params.get("rating")
    if text is None or text == "":
        raise SubsonicError(MISSING, "Required parameter is missing: rating.")
    rating = ctx.params.int("rating", 0, -1, 6)
    if not 0 <= rating <= 5:
        raise SubsonicError(GENERIC, f"rating must be 0 (none) to 5, not {text[:20]!r}.")
    album = v.albums.get(item)
    song = album.songs[0].id if album is not None and album.songs else None  # for the rating to follow
    with ctx.writer() as w:
        w.rate(ctx.user, item, rating, song=song)
    return {}
