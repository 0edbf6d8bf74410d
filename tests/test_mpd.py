"""`radio`/`path` --mpd against a real MPD (Debian's `mpd`), started on loopback with a temporary
config over the demo music, no audio output."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from helpers import free_port
from mpd import MPDClient

MPD = shutil.which("mpd") or next((p for p in ("/usr/bin/mpd", "/usr/sbin/mpd") if Path(p).exists()), None)
pytestmark = pytest.mark.skipif(MPD is None, reason="the mpd binary is not installed (Debian package: mpd)")


@pytest.fixture
def mpd_server(music, tmp_path, songspace):
    """(TCP address, socket path, music folder) of a running MPD whose database holds `music`,
    which songspace has indexed too."""
    songspace("index", str(music), "--workers", "0", check=True)
    state = tmp_path / "mpd"
    state.mkdir()
    port, sock = free_port(), state / "socket"
    (state / "mpd.conf").write_text(f'''
music_directory "{music}"
db_file "{state}/database"
state_file "{state}/state"
pid_file "{state}/pid"
log_file "{state}/log"
bind_to_address "127.0.0.1"
bind_to_address "{sock}"
port "{port}"
audio_output {{
    type "null"
    name "null"
}}
''')
    proc = subprocess.Popen([MPD, "--no-daemon", str(state / "mpd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = MPDClient()
    deadline = time.monotonic() + 30
    while True:
        try:
            client.connect("127.0.0.1", port)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"mpd did not start: {proc.stderr.read().decode(errors='replace')}")
            time.sleep(0.1)
    client.update()
    while "updating_db" in client.status() or len(files(client)) < 12:
        assert time.monotonic() < deadline, "mpd did not finish its database update"
        time.sleep(0.1)
    client.disconnect()
    yield f"127.0.0.1:{port}", str(sock), music
    proc.terminate()
    proc.wait(timeout=10)


def files(client: MPDClient) -> list[str]:
    """Every file in MPD's database (listall lists the directories too)."""
    return [e["file"] for e in client.listall() if "file" in e]


def mpd_client(address: str) -> MPDClient:
    client = MPDClient()
    host, _, port = address.rpartition(":")
    client.connect(host, int(port))
    return client


def relative(rows: list[dict], music: Path) -> list[str]:
    return [Path(r["path"]).resolve().relative_to(music.resolve()).as_posix() for r in rows]


def test_radio_replaces_the_queue_after_the_current_song(mpd_server, songspace):
    address, _, music = mpd_server
    client = mpd_client(address)
    first, second = files(client)[:2]
    client.add(first)
    client.add(second)  # to be replaced
    client.play(0)
    expected = relative(json.loads(songspace("radio", "1", "-n", "5", "--json", check=True).stdout), music)
    result = songspace("radio", "1", "-n", "5", "--mpd", address, "--mpd-music-dir", str(music), check=True)
    assert "queued 5 tracks" in result.stderr
    assert [s["file"] for s in client.playlistinfo()] == [first, *expected]
    assert client.currentsong()["file"] == first  # the current song plays on

    trip = relative(json.loads(songspace("path", "1", "10", "-n", "4", "--json", check=True).stdout), music)
    songspace("path", "1", "10", "-n", "4", "--mpd", address, "--mpd-music-dir", str(music), check=True)
    assert [s["file"] for s in client.playlistinfo()] == [first, *trip]
    client.disconnect()


def test_radio_from_what_mpd_plays(mpd_server, songspace, library_dir):
    address, sock, music = mpd_server
    from songspace import Library

    with Library.open(library_dir) as lib:
        seed = next(t for t in lib.catalog.tracks() if t.path.endswith(".flac"))
    client = mpd_client(address)
    client.clear()
    client.add(Path(seed.path).relative_to(music.resolve()).as_posix())
    client.play(0)
    expected = relative(json.loads(songspace("radio", str(seed.id), "-n", "4", "--json", check=True).stdout), music)
    # over MPD's local socket, MPD itself says where its music directory is
    songspace("radio", "--mpd-current", "--mpd", sock, "-n", "4", check=True)
    assert [s["file"] for s in client.playlistinfo()][1:] == expected
    client.disconnect()


def test_unreachable_mpd_or_a_track_outside_its_music_directory(mpd_server, songspace, tmp_path, monkeypatch):
    address, _, music = mpd_server
    nowhere = f"127.0.0.1:{free_port()}"
    result = songspace("radio", "1", "-n", "3", "--mpd", nowhere)
    assert result.exit_code == 2 and "cannot be reached" in result.stderr
    result = songspace("radio", "--mpd-current", "--mpd", nowhere)
    assert result.exit_code == 2 and "cannot be reached" in result.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = songspace("radio", "1", "-n", "3", "--mpd", address, "--mpd-music-dir", str(elsewhere))
    assert result.exit_code == 2 and "outside MPD's music directory" in result.stderr
    client = mpd_client(address)
    client.clear()
    result = songspace("radio", "--mpd-current", "--mpd", address, "--mpd-music-dir", str(music))
    assert result.exit_code == 2 and "no current song" in result.stderr
    client.disconnect()
    # Over TCP MPD does not tell its music directory; with no config file to read either, the
    # error (from mpd.py, naming no flag) gets the option that gives it from the CLI.
    monkeypatch.setattr("songspace.mpd._from_config_file", lambda: None)
    result = songspace("radio", "1", "-n", "3", "--mpd", address)
    assert result.exit_code == 2 and "music directory is unknown" in result.stderr, result.stderr
    assert "(--mpd-music-dir)" in result.stderr


def test_a_companion_mode_song_is_said_to_live_on_its_server():
    """A library indexed from a Subsonic server has no files for MPD: the error names companion
    mode and the way out (--to-playlist), before MPD is asked anything (none listens here)."""
    from songspace.errors import MpdError
    from songspace.mpd import play_list

    with pytest.raises(MpdError, match=r"lives on subsonic://alice@music\.local:4533 \(companion mode\).*playlist") as e:
        play_list(["subsonic://alice@music.local:4533/tr-7"], f"127.0.0.1:{free_port()}")
    assert e.value.param == "to_playlist"  # the CLI names its option: (--to-playlist NAME)
