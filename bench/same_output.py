"""Does a change leave what users see unchanged? Runs every query command with --json, the JSON
API and a few OpenSubsonic calls on one indexed library, saves every answer to a JSON file, and
compares two such files byte for byte.

    PYTHONPATH=src python bench/same_output.py run before.json --library /tmp/lib-before
    PYTHONPATH=src python bench/same_output.py run after.json --library /tmp/lib-after
    python bench/same_output.py compare before.json after.json     # exit 1 on any difference

`run` indexes the music (default ../shared/data/ost-dev) into --library (a new temporary folder
when not given) in this process (workers=0, so catalog ids come in the same order each time),
then asks its questions in-process: the CLI through typer's CliRunner, the HTTP API through
FastAPI's TestClient. Every seed is fixed. The library's folder and the package's folder are
replaced by <library> and <package> in the saved answers, so two libraries, or two checkouts,
compare. Calls whose answers are random by design (getSimilarSongs, getRandomSongs) and the UMAP
map are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

DEFAULT_MUSIC = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ost-dev"
USER, PASSWORD = "same-output", "same-output-password"


def run(out: Path, library: Path | None, music: Path) -> None:
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    import songspace
    from songspace import Library
    from songspace.cli import app
    from songspace.server import create_app

    library = library or Path(tempfile.mkdtemp(prefix="songspace-same-output-"))
    music = music.resolve()
    scratch = Path(tempfile.mkdtemp(prefix="songspace-same-output-files-"))
    package = str(Path(songspace.__file__).resolve().parent)
    answers: dict[str, dict] = {}

    def keep(name: str, code: int, text: str, stderr: str = "") -> None:
        for folder, mark in ((str(library.resolve()), "<library>"), (str(library), "<library>"),
                             (str(scratch), "<scratch>"), (package, "<package>")):
            text, stderr = text.replace(folder, mark), stderr.replace(folder, mark)
        answers[name] = {"code": code, "text": text, **({"stderr": stderr} if stderr else {})}
        print(f"{code:4d} {name} ({len(text)} chars)", file=sys.stderr)

    runner = CliRunner()

    def cli(name: str, *args: str) -> str:
        result = runner.invoke(app, ["--library", str(library), *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        keep(f"cli: {name}", result.exit_code, result.stdout, result.stderr if result.exit_code else "")
        return result.stdout

    print(f"indexing {music} into {library}", file=sys.stderr)
    with Library.open(library) as lib:
        report = lib.index([music], workers=0)
        print(f"added {report.added}, unchanged {report.unchanged}, failed {len(report.failed)}", file=sys.stderr)
        lib.catalog.add_user(USER, PASSWORD)
        tracks = lib.catalog.ok_tracks()
    ids = [t.id for t in tracks]
    a, b, c, d = ids[0], ids[len(ids) // 3], ids[len(ids) // 2], ids[-1]
    excerpt = tracks[len(tracks) // 4].path

    # The CLI: every query command with --json.
    cli("status", "status", "--json")
    cli("similar id", "similar", str(a), "--json")
    cli("similar manners", "similar", str(b), "-k", "7", "--other-artists", "--keep-copies", "--json")
    cli("similar text", "similar", "battle epic", "-k", "5", "--json")
    cli("similar other albums", "similar", str(c), "--other-albums", "--max-duration", "40", "--json")
    cli("radio", "radio", str(a), str(c), "-n", "15", "--seed", "7", "--json")
    cli("radio avoid", "radio", str(b), "--avoid", str(d), "-n", "10", "--seed", "3", "--artist-window", "2", "--json")
    cli("path", "path", str(a), str(d), "-n", "8", "--json")
    cli("duplicates", "duplicates", "--json")
    cli("identify", "identify", excerpt, "-k", "3", "--json")
    cli("explain", "explain", str(a), str(b), "--top", "4", "--json")
    cli("clusters", "clusters", str(scratch / "clusters"), "-k", "5", "--seed", "1", "--json")
    # Labels for two tracks in three, so classify predicts the third (and the API has predictions).
    rows = (music / "labels.csv").read_text(encoding="utf-8").splitlines()
    column = rows[0].split(",").index("album")
    labelled = ["path,album"] + [f"{music / r.split(',')[0]},{r.split(',')[column]}" for i, r in enumerate(rows[1:]) if i % 3]
    (scratch / "labels.csv").write_text("\n".join(labelled) + "\n", encoding="utf-8")
    cli("classify", "classify", "--column", "album", "--labels", str(scratch / "labels.csv"), "--no-baseline", "--json")
    # Errors a user meets: one red line on stderr, an exit code (stdout empty).
    cli("similar unknown", "similar", "no such track at all", "--json")
    cli("path same", "path", str(a), str(a), "--json")

    # The HTTP API and OpenSubsonic, on the same library.
    # A tokenless server answers loopback names only (not TestClient's default "testserver").
    with TestClient(create_app(library), base_url="http://127.0.0.1") as client:
        def api(name: str, method: str, url: str, **kw) -> dict | None:
            response = client.request(method, url, **kw)
            keep(f"http: {name}", response.status_code, response.text)
            return response.json() if response.headers.get("content-type", "").startswith("application/json") else None

        api("status", "GET", "/api/status")
        api("tracks", "GET", "/api/tracks", params={"limit": 500})
        api("tracks q", "GET", "/api/tracks", params={"q": "wesnoth", "offset": 2, "limit": 5})
        api("track", "GET", f"/api/tracks/{a}")
        api("track 404", "GET", "/api/tracks/999999")
        api("similar", "GET", f"/api/tracks/{a}/similar")
        api("similar manners", "GET", f"/api/tracks/{b}/similar",
            params={"k": 7, "other_artists": True, "keep_copies": True})
        api("radio", "POST", "/api/radio", json={"seeds": [a, c], "n": 15, "seed": 7})
        api("radio avoid", "POST", "/api/radio", json={"seeds": [b], "avoid": [d], "n": 10, "seed": 3, "artist_window": 2})
        api("path", "GET", "/api/path", params={"a": a, "b": d, "n": 8})
        api("path same", "GET", "/api/path", params={"a": a, "b": a})
        api("duplicates", "GET", "/api/duplicates")
        with open(excerpt, "rb") as f:
            api("identify", "POST", "/api/identify", params={"k": 3}, files={"file": (Path(excerpt).name, f.read())})
        api("identify empty", "POST", "/api/identify", files={"file": ("empty.ogg", b"")})
        api("explain", "GET", "/api/explain", params={"a": a, "b": b, "top": 4})
        api("predictions", "GET", "/api/predictions")
        api("predictions album", "GET", "/api/predictions/album")
        api("predictions 404", "GET", "/api/predictions/nothing")
        api("playlist", "GET", "/api/playlist.m3u8", params={"ids": f"{a},{b},{d}"})

        auth = {"u": USER, "p": PASSWORD, "f": "json"}
        api("rest ping", "GET", "/rest/ping", params=auth)
        songs = api("rest search3", "GET", "/rest/search3", params={**auth, "query": ""})
        found = songs["subsonic-response"]["searchResult3"]["song"]
        first, last = found[0]["id"], found[-1]["id"]
        api("rest getSong", "GET", "/rest/getSong", params={**auth, "id": first})
        api("rest getArtists", "GET", "/rest/getArtists", params=auth)
        api("rest getAlbumList2", "GET", "/rest/getAlbumList2", params={**auth, "type": "alphabeticalByName"})
        api("rest getSonicSimilarTracks", "GET", "/rest/getSonicSimilarTracks", params={**auth, "id": first, "count": 8})
        api("rest findSonicPath", "GET", "/rest/findSonicPath",
            params={**auth, "startSongId": first, "endSongId": last, "count": 6})
        api("rest getSonicSimilarTracks xml", "GET", "/rest/getSonicSimilarTracks", params={"u": USER, "p": PASSWORD, "id": first})
        api("rest bad id", "GET", "/rest/getSong", params={**auth, "id": "nonsense"})

    out.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(answers)} answers to {out}", file=sys.stderr)


def compare(before: Path, after: Path) -> int:
    old = json.loads(before.read_text(encoding="utf-8"))
    new = json.loads(after.read_text(encoding="utf-8"))
    differ = 0
    for name in sorted(set(old) | set(new)):
        if name not in old or name not in new:
            print(f"only in {'after' if name in new else 'before'}: {name}")
            differ += 1
        elif old[name] != new[name]:
            differ += 1
            same_data = False
            try:  # the same JSON with its keys in another order?
                same_data = old[name]["code"] == new[name]["code"] and \
                    json.loads(old[name]["text"]) == json.loads(new[name]["text"])
            except ValueError:
                pass
            print(f"DIFFERENT: {name}" + (" (same data, other key order or spacing)" if same_data else ""))
    print(f"{len(set(old) & set(new))} answers in both, {differ} differ")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="ask every question, save the answers")
    r.add_argument("out", type=Path)
    r.add_argument("--library", type=Path, help="library folder (made and indexed if needed; default: a temporary one)")
    r.add_argument("--music", type=Path, default=DEFAULT_MUSIC)
    c = sub.add_parser("compare", help="compare two saved runs; exit 1 if they differ")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.out, args.library, args.music)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
