"""Indexing speed and memory of `Library.index`, against an MFCC-statistics baseline in the same run.

    .venv/bin/python bench/index_speed.py [--data ../shared/data/ost-dev] [--out bench/out]

Workloads:
  ost-dev     the ost-dev clips, indexed into a fresh library
  long-5min   8 tracks of 5 minutes (ost-dev clips joined end to end; built once, cached in --out)
  long-3h     one 3-hour low-bitrate mp3 (clips joined and repeated; built once by streaming)

Each workload runs in a fresh child process (this script with --child), so its figures are end to
end: interpreter start-up, imports, worker spawn and model loading are all inside the wall time.
Training is not (no `fit`). Memory is sampled every ~50 ms from this process over the child's whole
process tree (child + its workers): "peak RSS" is the largest sum of RSS seen at one instant, and
"largest process" the largest single RSS. Summed RSS counts shared pages (torch's libraries) once
per process, so it overstates what the tree really holds; it is the conservative figure.

The baseline is the bliss-like hand-crafted vector of `songspace.baselines` (librosa: 20 MFCCs + deltas, centroid,
contrast, flatness, chroma, zcr, rms; mean and std of each) run with the same parallelism: a spawn
ProcessPoolExecutor with `--workers` processes, one thread each.

A benchmark, not a test: it prints figures and the issue's targets beside them (PASS/MISS) and
writes everything to --out/index_speed.json; it never fails on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ost-dev"
DEFAULT_OUT = REPO / "bench" / "out"

# Targets stated in the issues.
TARGET_X_REALTIME = 1000.0  # on ost-dev and long-5min, 2 cores, end to end
TARGET_PEAK_RSS = 1.5 * 2**30  # bytes, every workload including the 3-hour file

RESULT_MARK = "@@RESULT@@ "
MiB = 2**20


# ---------------------------------------------------------------------------------------------
# Memory: a sampler over a process tree
# ---------------------------------------------------------------------------------------------


class RssSampler:
    """Samples RSS of a process and all its descendants every `interval` seconds, in a thread,
    and each process's CPU time (the last value seen per pid is kept, so a process that exits
    loses at most one interval)."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_total = 0  # largest sum over the tree at one instant, bytes
        self.peak_single = 0  # largest single process, bytes
        self.peak_anon = 0  # largest sum of anonymous RSS (heap: RSS less file-backed and shared pages)
        self.max_procs = 0
        self.samples = 0
        self.cpu: dict[int, float] = {}  # pid → user + system seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss, anon = [], 0
        for p in procs:
            try:
                with p.oneshot():
                    m = p.memory_info()
                    t = p.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # a worker that exited between listing and reading
            self.cpu[p.pid] = t.user + t.system
            rss.append(m.rss)
            anon += m.rss - m.shared
        if rss:
            self.peak_total = max(self.peak_total, sum(rss))
            self.peak_anon = max(self.peak_anon, anon)
            self.peak_single = max(self.peak_single, max(rss))
            self.max_procs = max(self.max_procs, len(rss))
            self.samples += 1

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


def run_measured(child_args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run this script as a child with `child_args` (and `env` added to the environment); return
    its result plus wall and tree memory."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *child_args]
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    with RssSampler(proc.pid) as mem:
        out, err = proc.communicate()
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0  # the child and its waited-for workers, user + system
    lines = [l for l in out.splitlines() if l.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {child_args[0]} failed (rc={proc.returncode}):\n{err[-3000:]}")
    result = json.loads(lines[-1][len(RESULT_MARK):])
    result.update(wall_s=wall, peak_rss=mem.peak_total, peak_rss_single=mem.peak_single,
                  max_procs=mem.max_procs, rss_samples=mem.samples, cpu_s=cpu)
    result["x_realtime"] = result["audio_seconds"] / wall
    result["x_realtime_per_cpu"] = result["audio_seconds"] / cpu if cpu else None
    return result


def _children_cpu() -> float:
    """CPU seconds of all reaped descendants so far. Unlike wall time this barely moves when other
    work shares the cores, so it is the figure to compare on a busy machine."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------------------------
# Child: songspace
# ---------------------------------------------------------------------------------------------


def child_songspace(paths: list[str], workers: int, device: str = "cpu") -> dict:
    """Index `paths` into a fresh library (`device` as `index --device`); time to first result
    and the index call itself."""
    t0 = time.perf_counter()
    from songspace.library import Library

    results: list[tuple[float, str]] = []  # (seconds since start, file name) of each stored result

    def on_progress(phase, done, total, note):
        if phase == "analyse" and done:
            results.append((time.perf_counter() - t0, note))

    with tempfile.TemporaryDirectory(prefix="songspace-bench-") as root:
        lib = Library(root)
        try:
            report = lib.index(paths, workers=workers, report=on_progress, device=device)
            durations: dict[str, list[float]] = {}
            for t in lib.catalog.tracks():
                durations.setdefault(Path(t.path).name, []).append(t.duration or 0.0)
        finally:
            lib.close()
    # The steady rate leaves out start-up: the audio of every result after the first, over the
    # time from the first result to the last.
    steady = None
    if len(results) > 1 and results[-1][0] > results[0][0]:
        after_first = sum(durations[name].pop() for _, name in results[1:] if durations.get(name))
        steady = after_first / (results[-1][0] - results[0][0])
    return dict(tracks=report.added, failed=report.failed, audio_seconds=report.audio_seconds,
                inner_wall_s=time.perf_counter() - t0, first_result_s=results[0][0] if results else None,
                steady_x_realtime=steady, gpu=gpu_name(device), parent_cpu_s=own_cpu_seconds())


def own_cpu_seconds() -> float:
    """CPU seconds of this process alone (not its workers): near the wall time, the indexing
    process itself is what limits the rate."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def gpu_name(device: str) -> str | None:
    """The GPU that embedded (None on the CPU path); torch is imported already when there is one."""
    if device == "cpu" or "torch" not in sys.modules:
        return None
    import torch

    return torch.cuda.get_device_name(device if device != "auto" else None) if torch.cuda.is_available() else None


def cnn_precision() -> str:
    """What songspace's workers compute the CNN in on this machine (they choose from the CPU;
    asked here, in the benchmark's own process, so no child pays for importing torch)."""
    import torch

    from songspace.embedding import pick_precision

    return str(pick_precision(torch.device("cpu"))).removeprefix("torch.")


# ---------------------------------------------------------------------------------------------
# Child: the MFCC-statistics baseline
# ---------------------------------------------------------------------------------------------

BASELINE_SR = 22050
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1"}


def _decode_pyav(path: str, sr: int) -> np.ndarray:
    """Whole file to mono float32 at `sr`: the baseline's fallback for what libsndfile cannot read
    (m4a here, with no ffmpeg binary for audioread)."""
    import av

    chunks = []
    with av.open(path) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        for frame in container.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(chunks)


def mfcc_stats(path: str) -> tuple[str, float, np.ndarray | None, str | None]:
    """(path, seconds, feature vector, error): a bliss-like hand-crafted vector for one file."""
    import warnings

    import librosa

    from songspace.baselines import mfcc_statistics

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                y, sr = librosa.load(path, sr=BASELINE_SR, mono=True)
            except Exception:  # librosa's NoBackendError and friends: decode with PyAV instead
                y, sr = _decode_pyav(path, BASELINE_SR), BASELINE_SR
        vec = mfcc_statistics(y, sr)  # the same features as `songspace use mfcc`
        return path, len(y) / sr, vec, None
    except Exception as e:
        return path, 0.0, None, f"{type(e).__name__}: {e}"


def _init_baseline_worker() -> None:
    os.environ.update(SINGLE_THREAD_ENV)


def child_baseline(paths: list[str], workers: int) -> dict:
    """MFCC statistics over `paths` with `workers` spawned single-threaded processes."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    t0 = time.perf_counter()
    os.environ.update(SINGLE_THREAD_ENV)  # before spawning, so the workers' libraries see it
    files = expand(paths)
    seconds, failed, first = 0.0, [], None
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_baseline_worker) as pool:
        for fut in as_completed([pool.submit(mfcc_stats, f) for f in files]):
            path, secs, vec, err = fut.result()
            first = first or time.perf_counter() - t0
            if err:
                failed.append((path, err))
            seconds += secs
    return dict(tracks=len(files) - len(failed), failed=failed, audio_seconds=seconds,
                inner_wall_s=time.perf_counter() - t0, first_result_s=first)


def expand(paths: list[str]) -> list[str]:
    """Audio files under `paths` (files or folders), sorted: what the baseline analyses."""
    from songspace.scan import scan

    return scan(paths)[0]


# ---------------------------------------------------------------------------------------------
# Test material: long tracks built from the ost-dev clips (once, cached)
# ---------------------------------------------------------------------------------------------

LONG_SR = 22050
LONG_TRACKS, LONG_SECONDS = 8, 300.0
HOURS3_SECONDS, HOURS3_BITRATE = 3 * 3600.0, 48_000


def clip_stream(clips: list[str], sr: int):
    """Yield the clips decoded to mono float32 at `sr`, one after another, cycling for ever."""
    from songspace.audio import DecodeError, load

    while True:
        for path in clips:
            try:
                yield load(path, sr=sr).y
            except DecodeError:
                continue


def build_long_set(data: Path, out: Path) -> Path:
    """`LONG_TRACKS` tracks of `LONG_SECONDS` each (alternating .mp3 and .ogg) from joined clips."""
    from songspace.synth import write_audio

    folder = out / "long-5min"
    done = folder / "done.json"
    spec = dict(tracks=LONG_TRACKS, seconds=LONG_SECONDS, sr=LONG_SR)
    if done.exists() and json.loads(done.read_text()) == spec:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    print(f"building {LONG_TRACKS} x {LONG_SECONDS / 60:.0f} min tracks in {folder} ...", flush=True)
    clips = clip_stream(expand([str(data)]), LONG_SR)
    n = int(LONG_SECONDS * LONG_SR)
    for i in range(LONG_TRACKS):
        parts, have = [], 0
        while have < n:
            y = next(clips)
            parts.append(y)
            have += len(y)
        y = np.concatenate(parts)[:n]
        write_audio(folder / f"long{i:02d}{'.mp3' if i % 2 == 0 else '.ogg'}", y, LONG_SR)
    done.write_text(json.dumps(spec))
    return folder


def build_three_hours(data: Path, out: Path) -> Path:
    """One 3-hour mono mp3 at a low bit rate, encoded chunk by chunk (never held whole)."""
    import av

    path = out / "long-3h" / "three-hours.mp3"
    spec = dict(seconds=HOURS3_SECONDS, sr=LONG_SR, bit_rate=HOURS3_BITRATE)
    done = path.with_suffix(".json")
    if path.exists() and done.exists() and json.loads(done.read_text()) == spec:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"building a {HOURS3_SECONDS / 3600:.0f}-hour mp3 at {path} ...", flush=True)
    tmp = path.with_name(path.stem + ".partial.mp3")
    total = int(HOURS3_SECONDS * LONG_SR)
    with av.open(str(tmp), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=LONG_SR)
        stream.layout = "mono"
        stream.bit_rate = HOURS3_BITRATE
        written = 0
        for y in clip_stream(expand([str(data)]), LONG_SR):
            y = np.clip(y[: total - written], -1.0, 1.0)
            frame = av.AudioFrame.from_ndarray(y[np.newaxis, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = LONG_SR, written, Fraction(1, LONG_SR)
            container.mux(stream.encode(frame))
            written += len(y)
            if written >= total:
                break
        container.mux(stream.encode(None))
    tmp.rename(path)
    done.write_text(json.dumps(spec))
    return path


# ---------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------


def bench(name: str, paths: list[Path], workers: int, baseline: bool, float32: bool = False,
          device: str = "cpu") -> dict:
    """One workload: songspace, then (optionally) the baseline, each in a fresh child process.
    `float32`: also songspace with its CNN forced to float32, to show what bfloat16 gives (CPU only).
    `device`: where songspace embeds, as `index --device` (a GPU embeds in float32)."""
    args = ["--workers", str(workers), "--device", device, *map(str, paths)]
    precision = cnn_precision() if device == "cpu" else "float32"
    row = {"workload": name, "device": device, "precision": precision, "songspace": run_measured(["songspace", *args])}
    gpu = row["songspace"].get("gpu")
    show(name, f"songspace (CNN in {precision}{' on ' + gpu if gpu else ''})", row["songspace"])
    if float32 and precision != "float32":
        from songspace.embedding import PRECISION_ENV

        row["songspace_float32"] = run_measured(["songspace", *args], env={PRECISION_ENV: "float32"})
        show(name, "songspace (CNN forced to float32)", row["songspace_float32"])
    if baseline:
        row["baseline"] = run_measured(["baseline", *args[:2], *map(str, paths)])
        show(name, "MFCC-librosa", row["baseline"])
    return row


def bench_ost_dev(data: Path, out: Path, workers: int, baseline: bool, device: str) -> dict:
    return bench("ost-dev", [data], workers, baseline, float32=True, device=device)


def bench_long_5min(data: Path, out: Path, workers: int, baseline: bool, device: str) -> dict:
    return bench("long-5min", [build_long_set(data, out)], workers, baseline, device=device)


def bench_long_3h(data: Path, out: Path, workers: int, baseline: bool, device: str) -> dict:
    # The baseline would decode 3 h whole (~950 MB of float32 at 22 kHz): skipped by design.
    return bench("long-3h", [build_three_hours(data, out)], workers, baseline=False, device=device)


WORKLOADS = {"ost-dev": bench_ost_dev, "long-5min": bench_long_5min, "long-3h": bench_long_3h}


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def mib(n: float) -> str:
    return f"{n / MiB:,.0f} MiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def show(workload: str, engine: str, r: dict) -> None:
    first = f"{r['first_result_s']:.1f} s" if r.get("first_result_s") is not None else "-"
    print(f"\n[{workload}] {engine}")
    print(f"  tracks            {r['tracks']}  ({len(r['failed'])} failed)")
    print(f"  audio             {r['audio_seconds']:,.0f} s ({r['audio_seconds'] / 3600:.2f} h)")
    print(f"  wall              {r['wall_s']:.1f} s end to end  ({r['inner_wall_s']:.1f} s in the child "
          f"after start-up; first result after {first})")
    line = f"  x real time       {r['x_realtime']:,.0f}x"
    if engine.startswith("songspace") and workload in ("ost-dev", "long-5min"):
        line += f"   target >= {TARGET_X_REALTIME:.0f}x  {verdict(r['x_realtime'] >= TARGET_X_REALTIME)}"
    print(line)
    if r.get("steady_x_realtime"):
        print(f"  once running      {r['steady_x_realtime']:,.0f}x  (the audio after the first result, over the time from it to the last)")
    print(f"  CPU time (tree)   {r['cpu_s']:.1f} s = {r['x_realtime_per_cpu']:,.0f} audio s per CPU s"
          + (f"; the indexing process alone {r['parent_cpu_s']:.1f} s" if r.get("parent_cpu_s") else ""))
    line = f"  peak RSS (tree)   {mib(r['peak_rss'])}  (largest process {mib(r['peak_rss_single'])}, up to {r['max_procs']} processes)"
    if engine.startswith("songspace"):
        line += f"   target < {mib(TARGET_PEAK_RSS)}  {verdict(r['peak_rss'] < TARGET_PEAK_RSS)}"
    print(line)
    for path, reason in r["failed"][:5]:
        print(f"    failed: {path}: {reason}")


def table(rows: list[dict]) -> str:
    head = ("workload", "songspace x RT", "MFCC-librosa x RT", "ratio", "peak RSS songspace", "peak RSS baseline",
            "audio s/CPU s (ss | base)")
    lines = []
    for row in rows:
        s, b = row["songspace"], row.get("baseline")
        lines.append((
            row["workload"],
            f"{s['x_realtime']:,.0f}x",
            f"{b['x_realtime']:,.0f}x" if b else "-",
            f"{s['x_realtime'] / b['x_realtime']:.2f}" if b else "-",
            f"{mib(s['peak_rss'])} {verdict(s['peak_rss'] < TARGET_PEAK_RSS)}",
            mib(b["peak_rss"]) if b else "-",
            f"{s['x_realtime_per_cpu']:,.0f} | {b['x_realtime_per_cpu']:,.0f}" if b else f"{s['x_realtime_per_cpu']:,.0f} | -",
        ))
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    fmt = lambda cells: " | ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head), "-+-".join("-" * w for w in widths), *map(fmt, lines)])


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Workloads: ost-dev; long-5min and long-3h (built once under --out).")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder of clips (default {DEFAULT_DATA})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="where built long tracks are cached and index_speed.json goes (default bench/out)")
    p.add_argument("--workers", type=int, default=2, help="worker processes for both engines (default 2)")
    p.add_argument("--device", default="cpu",
                   help="where songspace embeds, as `index --device`: cpu (default), auto, cuda or cuda:N")
    p.add_argument("--only", choices=list(WORKLOADS), action="append",
                   help="run only these workloads (repeatable)")
    p.add_argument("--no-baseline", action="store_true", help="skip the MFCC-librosa baseline")
    p.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child_main(argv: list[str]) -> None:
    """`--child songspace --workers N --device D PATH...` or `--child baseline --workers N PATH...`:
    run one engine and print its result as one JSON line."""
    engine, _, workers, *rest = argv
    if engine == "songspace":
        _, device, *paths = rest
        result = child_songspace(paths, int(workers), device)
    else:
        result = child_baseline(rest, int(workers))
    print(RESULT_MARK + json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args.child)
    data, out = args.data.resolve(), args.out.resolve()
    if not data.is_dir():
        sys.exit(f"{data}: no such folder (see --data)")
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    print(f"songspace indexing benchmark: {psutil.cpu_count()} CPUs, {args.workers} workers, device {args.device}, "
          f"data {data}, load average {load:.2f}")
    if load > 0.5:
        print("  note: other work is running; wall-time figures will be low, CPU-time figures less so")

    rows = [fn(data, out, args.workers, not args.no_baseline, args.device) for name, fn in WORKLOADS.items()
            if not args.only or name in args.only]
    print("\n" + table(rows))
    print(f"\ntargets: >= {TARGET_X_REALTIME:.0f}x real time end to end on ost-dev and long-5min; peak RSS (tree) < {mib(TARGET_PEAK_RSS)} "
          "on every workload. long-3h x RT counts the whole 3 h, of which songspace analyses excerpts.")
    result = dict(cpus=psutil.cpu_count(), workers=args.workers, device=args.device, load_average_at_start=load, data=str(data), rows=rows,
                  targets=dict(x_realtime=TARGET_X_REALTIME, peak_rss=TARGET_PEAK_RSS),
                  when=time.strftime("%Y-%m-%dT%H:%M:%S"))
    (out / "index_speed.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out / 'index_speed.json'}")


if __name__ == "__main__":
    main()
