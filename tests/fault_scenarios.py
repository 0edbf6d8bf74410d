"""The scenarios of the fault-injection suite (fault_kit.py does one kill): the music and the
libraries they start from, kill -9 at evenly spaced durable steps of `index`, `use`, `fit`,
`user add`, and of a `serve` under load (readers in threads while it indexes and takes
playlist, star and play writes), and a full disk at evenly spaced amounts of free space.

Every library is small (a few 8 s clips, analysed in this process: `--workers 0`, so a clean
run's steps come in the same order every time) and copied afresh for each fault.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import fault_kit as kit
from fault_kit import Held, Outcome, Verdict

INDEX = ["--workers", "0"]


# ---------------------------------------------------------------------------------------------
# Music and the libraries the scenarios start from
# ---------------------------------------------------------------------------------------------


def write_clip(path: Path, seed: int, seconds: float = 8.0) -> None:
    from songspace.synth import STYLES, synth_track, write_audio

    write_audio(path, synth_track(STYLES[seed % len(STYLES)], seconds, seed=seed), 16000)


@dataclass
class World:
    """The music folder (as it is now: 3 tracks added, one changed, one deleted since `before`
    was indexed) and the libraries: `before` (indexed from the old state, with a user, a
    playlist, stars and plays), `after` (`before` indexed again: the clean result)."""

    root: Path
    music: Path
    before: Path
    after: Path
    ids: dict  # file name -> track id in `before`


def make_world(root: Path, tracks: int = 6) -> World:
    music, before = root / "music", root / "lib-before"
    music.mkdir(parents=True)
    for i in range(tracks):
        write_clip(music / f"t{i}.wav", seed=i)
    done = kit.songspace(before, "index", music, *INDEX)
    assert done.returncode == 0, done.stderr
    done = kit.songspace(before, "user", "add", "ann", "--password", "pw")
    assert done.returncode == 0, done.stderr

    from songspace.catalog import Catalog

    cat = Catalog(before / "catalog.sqlite")
    try:
        ids = {Path(t.path).name: t.id for t in cat.ok_tracks()}
        cat.save_playlist(None, "ann", "mix", [ids["t0.wav"], ids["t1.wav"], ids["t2.wav"]], "kept", True)
        cat.star("ann", [str(ids["t3.wav"]), str(ids["t1.wav"])])
        cat.add_plays("ann", [(ids["t0.wav"], 1.7e9), (ids["t1.wav"], 1.7e9 + 60)])
    finally:
        cat.close()
    # The music changes: new tracks, one re-recorded, one deleted (in no playlist: its rows go)
    for i in range(tracks, tracks + 3):
        write_clip(music / f"t{i}.wav", seed=i)
    write_clip(music / "t1.wav", seed=100)
    (music / f"t{tracks - 1}.wav").unlink()
    after = kit.copy_library(before, root / "lib-after")
    done = kit.songspace(after, "index", music, *INDEX)
    assert done.returncode == 0, done.stderr
    return World(root, music, before, after, ids)


# ---------------------------------------------------------------------------------------------
# kill -9 of a command line
# ---------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """Commands run one after another from `base`; a kill in command i is followed by `check`
    and commands i.. again (what a user does: run it again, then go on)."""

    name: str
    base: Path
    commands: list[list]
    fitted: bool = False  # the model is trained anew by each run: compare with a clean index by it


def scenarios(world: World) -> list[Scenario]:
    m = world.music
    empty = world.root / "lib-empty"
    empty.mkdir(exist_ok=True)
    return [
        Scenario("index (new library)", empty, [["index", m, *INDEX]]),
        Scenario("index (changes)", world.before, [["index", m, *INDEX]]),
        Scenario("use + index", world.after, [["use", "mfcc"], ["index", m, *INDEX]]),
        Scenario("user add", world.after, [["user", "add", "bob", "--password", "pw2"],
                                           ["user", "add", "ann", "--password", "changed"]]),
        Scenario("fit", world.after, [["fit", "--minutes", "0.03", "--keep-anyway", "--workers", "0"]], fitted=True),
        Scenario("check", world.after, [["check"]]),  # it writes too: the vector index, a compacted sidecar
    ]



@dataclass
class CleanRun:
    befores: list[Path]  # the library before each command
    steps: list[list[str]]  # each command's durable steps
    held: Held
    seconds: list[float]  # each command's wall time

    def locate(self, point: int) -> tuple[int, int]:
        """A step over the whole run -> (command, its step)."""
        for i, s in enumerate(self.steps):
            if point <= len(s):
                return i, point
            point -= len(s)
        raise ValueError(point)

    @property
    def total(self) -> int:
        return sum(len(s) for s in self.steps)


def clean_run(s: Scenario, work: Path) -> CleanRun:
    library = kit.copy_library(s.base, work / "clean")
    befores, steps, seconds = [], [], []
    for i, args in enumerate(s.commands):
        befores.append(kit.copy_library(library, work / f"before-{i}"))
        log = work / f"clean-{i}.log"
        log.unlink(missing_ok=True)
        started = time.monotonic()
        done = kit.songspace(library, *args, log=log)
        seconds.append(time.monotonic() - started)
        assert done.returncode == 0, f"{s.name}: clean `{args}` failed: {done.stderr[-500:]}"
        steps.append(kit.steps(log))
    return CleanRun(befores, steps, kit.held(library), seconds)


def reference(library: Path, music: Path, work: Path, clean: Held) -> Held:
    """What `library` must hold after a fit: a clean index with the model it uses now (each fit
    trains anew), and the users, playlists, stars, plays and tags of the clean run."""
    model = kit.held(library, segments=False).model
    ref = work / "reference"
    if ref.exists():
        shutil.rmtree(ref)
    for args in (["use", model], ["index", music, *INDEX]):
        done = kit.songspace(ref, *args)
        assert done.returncode == 0, done.stderr
    want = kit.held(ref)
    want.users, want.playlists, want.stars, want.plays = clean.users, clean.playlists, clean.stars, clean.plays
    want.predictions = clean.predictions  # a fitted model has no tags head: the tags before it stay
    return want


def run_kills(s: Scenario, work: Path, points: int, world: World, timed: bool = False) -> list[Outcome]:
    """Kill -9 at `points` evenly spaced steps of a clean run of `s`, each judged. `timed`: at
    evenly spaced fractions of each command's clean wall time instead (1/(n+1) ... n/(n+1))."""
    work.mkdir(parents=True, exist_ok=True)
    clean = clean_run(s, work)
    if s.fitted:
        expected = lambda library: reference(library, world.music, work, clean.held)
    else:
        expected = clean.held
    outcomes = []
    if timed:
        for i, args in enumerate(s.commands):
            for n in range(1, points + 1):
                after = clean.seconds[i] * n / (points + 1)
                for _ in range(3):  # a run faster than the clean one (a busy machine) finished first: earlier
                    o = kit.kill_and_finish(s.name + " (timed)", clean.befores[i], work / "run", args, 0,
                                            clean.steps[i], s.commands[i:], expected, after=after)
                    if o.reached:
                        break
                    after *= 0.6
                outcomes.append(o)
        return outcomes
    for point in kit.spread(clean.total, points):
        i, step = clean.locate(point)
        o = kit.kill_and_finish(s.name, clean.befores[i], work / "run", s.commands[i], step, clean.steps[i],
                                s.commands[i:], expected)
        o.point = point
        outcomes.append(o)
    return outcomes


# ---------------------------------------------------------------------------------------------
# kill -9 of a server under load
# ---------------------------------------------------------------------------------------------


def writes(ids: dict) -> list:
    """The Subsonic writes a player sends, in order: each a function of the ids seen so far
    (playlist ids from earlier answers) -> (method, params). Star and scrobble carry two items:
    one request, one write, applied whole or not at all."""
    def t(n):
        return str(ids[f"t{n}.wav"])

    return [
        lambda c: ("createPlaylist", [("name", "road"), ("songId", t(0)), ("songId", t(2))]),
        lambda c: ("updatePlaylist", [("playlistId", c["road"]), ("songIdToAdd", t(3)), ("songIndexToRemove", "0")]),
        lambda c: ("star", [("id", t(2)), ("id", t(4))]),
        lambda c: ("scrobble", [("id", t(0)), ("time", "1700000100000"), ("id", t(2)), ("time", "1700000200000")]),
        lambda c: ("createPlaylist", [("playlistId", "pl-1"), ("songId", t(3)), ("songId", t(0))]),
        lambda c: ("unstar", [("id", t(3)), ("id", t(1))]),
        lambda c: ("deletePlaylist", [("id", c["road"])]),
    ]


def listening(h: Held) -> tuple:
    return h.users, h.playlists, h.stars, h.plays


@dataclass
class ServeRun:
    acked: int = 0  # writes answered "ok" before the end (or the kill)
    states: list = field(default_factory=list)  # listening(held) before any write and after each answered one
    server_errors: list = field(default_factory=list)  # 5xx answers, or a Subsonic "failed" to a valid write
    refused: list = field(default_factory=list)  # writes answered with the disk-full error (then no more are sent)
    reads: int = 0  # read requests answered while the server indexed and wrote
    returncode: int | None = None
    log: str = ""


GONE = (OSError, http.client.HTTPException)  # no answer: the server died (or is dying)


def http(url: str, data: bytes | None = None, timeout: float = 60) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def serve_once(library: Path, world: World, port: int, kill_at: int = 0, log: Path | None = None,
               record: bool = False, out_dir: Path | None = None) -> ServeRun:
    """`songspace serve` over `library`: readers in three threads, an index run of its folders
    started through the API, and `writes` one after another; until all is done or it died."""
    run = ServeRun()
    base = f"http://127.0.0.1:{port}"
    auth = [("u", "ann"), ("p", "pw"), ("v", "1.16.1"), ("c", "faults"), ("f", "json")]
    extra = {kit.KILL_AT: str(kill_at), kit.ROOT: str(library)}
    if log is not None:
        extra[kit.LOG] = str(log)
    out_path = (out_dir or library.parent) / f"serve-{port}.log"  # the server's output: never on a full disk
    out = open(out_path, "w")
    proc = subprocess.Popen(kit.command("--library", library, "serve", "--port", port), env=kit.environment(**extra),
                            stdout=out, stderr=subprocess.STDOUT)
    alive = lambda: proc.poll() is None
    if record:
        run.states.append(listening(kit.held(library, segments=False)))
    try:
        deadline = time.monotonic() + 180
        while alive() and time.monotonic() < deadline:
            try:
                if http(f"{base}/api/status", timeout=5)[0] == 200:
                    break
            except GONE:
                time.sleep(0.1)
        stop = threading.Event()
        song_ids = sorted(world.ids.values())

        def read(n: int) -> None:
            urls = [f"{base}/api/tracks/{song_ids[n % len(song_ids)]}/similar?k=3", f"{base}/api/status",
                    f"{base}/rest/search3?query=t&" + urllib.parse.urlencode(auth),
                    f"{base}/rest/getRandomSongs?" + urllib.parse.urlencode(auth)]
            k = n
            while not stop.is_set() and alive():
                url = urls[k % len(urls)]
                k += 1
                try:
                    status, body = http(url, timeout=30)
                except GONE:
                    continue
                run.reads += 1
                if status >= 500:
                    run.server_errors.append(f"{status} {url}: {body[:200]!r}")

        readers = [threading.Thread(target=read, args=(n,), daemon=True) for n in range(3)]
        for r in readers:
            r.start()
        seen = {}
        try:
            status, body = http(f"{base}/api/index", data=b"")
            if status >= 500:
                run.server_errors.append(f"{status} POST /api/index: {body[:200]!r}")
            for make in writes(world.ids):
                method, params = make(seen)
                status, body = http(f"{base}/rest/{method}?" + urllib.parse.urlencode(auth + params))
                answer = json.loads(body)["subsonic-response"] if status == 200 else {}
                if answer.get("status") != "ok":
                    if "disk full" in answer.get("error", {}).get("message", ""):
                        run.refused.append(method)
                    else:
                        run.server_errors.append(f"{status} {method}: {body[:300]!r}")
                    break
                run.acked += 1
                if method == "createPlaylist" and "road" not in seen:
                    seen["road"] = answer["playlist"]["id"]
                if record:
                    run.states.append(listening(kit.held(library, segments=False)))
            while alive() and json.loads(http(f"{base}/api/index")[1]).get("running"):
                time.sleep(0.2)
        except GONE:
            pass  # killed mid-request: that write is answered by no one
        stop.set()
        for r in readers:
            r.join(timeout=60)
    finally:
        if alive():
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()
        run.returncode = proc.returncode
        run.log = out_path.read_text()
    return run


def run_serve_kills(world: World, work: Path, points: int) -> list[Outcome]:
    """kill -9 of `serve` at evenly spaced steps of a clean run: then the writes answered must
    all be there (and the one in flight whole or absent), `check` pass, and after an `index`
    the tracks match the clean index."""
    from helpers import free_port

    work.mkdir(parents=True, exist_ok=True)
    clean_lib = kit.copy_library(world.before, work / "clean")
    log = work / "clean-serve.log"
    log.unlink(missing_ok=True)
    clean = serve_once(clean_lib, world, free_port(), log=log, record=True)
    assert clean.acked == len(writes(world.ids)) and not clean.server_errors, (clean.server_errors, clean.log[-2000:])
    assert "Traceback" not in clean.log, clean.log[-3000:]
    steps = kit.steps(log)
    expected = kit.held(world.after)
    outcomes = []
    for point in kit.spread(len(steps), points):
        library = kit.copy_library(world.before, work / "run")
        got = serve_once(library, world, free_port(), kill_at=point)
        v = Verdict()
        reached = got.returncode == -signal.SIGKILL
        v.other += got.server_errors
        if "Traceback" in got.log:
            v.other.append("a traceback in the server's log: " + got.log[got.log.index("Traceback"):][:500])
        now = kit.held(library, segments=False)
        if now.integrity != "ok":
            v.corrupt = now.integrity
        else:
            acked = clean.states[got.acked: got.acked + 2]  # every answered write, and the one in flight or not
            if listening(now) not in acked:
                v.other.append(f"after {got.acked} answered writes the catalog holds {listening(now)!r:.300}")
            v.corrupt = kit.check_after(library)
        if not v.corrupt:
            done = kit.songspace(library, "index", world.music, *INDEX)
            if done.returncode != 0:
                v.other.append(f"index after the kill: exit {done.returncode}: {done.stderr[-300:]}")
            final = kit.held(library)
            cmp = kit.compare(final, expected, listening=False)
            v.lost, v.different, v.corrupt = cmp.lost, cmp.different, cmp.corrupt
            v.other += cmp.other
            want = clean.states[-1] if got.acked == len(clean.states) - 1 else None
            if want is not None and listening(final) != want:
                v.other.append("the writes' results changed after the index")
        step = steps[point - 1].split("\t", 1)[-1] if point <= len(steps) else "?"
        outcomes.append(Outcome("serve under load", point, step, reached, v))
    return outcomes
