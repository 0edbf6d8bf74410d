"""Transcoding in Subsonic's `stream` (server/transcode.py), through the real client libraries
py-sonic (stream) and py-opensonic (song entries) against a real uvicorn server over the tagged
library: what comes back is decoded with PyAV and checked for its format, bit rate and duration."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest

libopensonic = pytest.importorskip("libopensonic")
libsonic = pytest.importorskip("libsonic")

from helpers import free_port, serving  # noqa: E402

from songspace import Library  # noqa: E402
from songspace.server import transcode  # noqa: E402

USER, PASSWORD = "ann", "pw"
PHONE = "phone"  # a user with stream defaults
SECONDS = 6.0  # make_tagged_library's tracks


@pytest.fixture(scope="module")
def served(tagged_music, tmp_path_factory):
    root = tmp_path_factory.mktemp("transcode") / "library"
    with Library.open(root) as lib:
        lib.index([tagged_music], workers=0)
        lib.catalog.add_user(USER, PASSWORD)
        lib.catalog.add_user(PHONE, PASSWORD)
        lib.catalog.set_stream_defaults(PHONE, 64, "opus")
        tracks = {Path(t.path).name: t for t in lib.catalog.tracks()}
    port = free_port()
    with serving(root, port=port):
        yield port, tracks


@pytest.fixture(scope="module")
def pysonic(served):
    return libsonic.Connection("http://127.0.0.1", USER, PASSWORD, port=served[0])


def track(served, name: str):
    return served[1][name]


def decoded(body: bytes) -> tuple[str, str, float, float]:
    """(container, codec, seconds, kbit/s) of an encoded stream, decoded with PyAV to the end."""
    with av.open(io.BytesIO(body)) as c:
        stream = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(stream))
        seconds = samples / stream.rate
        return c.format.name, stream.codec_context.name, seconds, len(body) * 8 / seconds / 1000


def stream(pysonic, song_id: int, **asked) -> bytes:
    answer = pysonic.stream(str(song_id), **asked)
    if isinstance(answer, dict):  # py-sonic hands back the envelope of an error
        raise AssertionError(f"stream answered an error: {answer}")
    return answer.read()


def test_nothing_asked_raw_or_a_file_that_fits_sends_the_original_bytes(pysonic, served):
    flac, mp3 = track(served, "01 Opening.flac"), track(served, "b-second.mp3")
    assert stream(pysonic, flac.id) == Path(flac.path).read_bytes()
    assert stream(pysonic, flac.id, tformat="raw", maxBitRate=64) == Path(flac.path).read_bytes()
    mp3_kbps = transcode.source_kbps(mp3.size, mp3.duration)
    assert stream(pysonic, mp3.id, tformat="mp3", maxBitRate=mp3_kbps + 32) == Path(mp3.path).read_bytes()


@pytest.mark.parametrize("fmt, container, codec", [("mp3", "mp3", "mp3"), ("opus", "ogg", "opus"),
                                                   ("aac", "aac", "aac")])
def test_a_format_and_a_bit_rate_are_honoured(pysonic, served, fmt, container, codec):
    if not transcode.available(fmt):
        pytest.skip(f"this FFmpeg build has no {fmt} encoder")
    flac = track(served, "01 Opening.flac")
    assert transcode.source_kbps(flac.size, flac.duration) > 64  # so a transcode is due
    body = stream(pysonic, flac.id, tformat=fmt, maxBitRate=64)
    got_container, got_codec, seconds, kbps = decoded(body)
    assert (got_container, got_codec.removesuffix("float")) == (container, codec)
    assert seconds == pytest.approx(SECONDS, abs=0.15)
    assert 64 * 0.5 < kbps < 64 * 1.25


def test_a_bit_rate_alone_transcodes_what_is_over_it(pysonic, served):
    flac = track(served, "01 Opening.flac")
    container, codec, seconds, kbps = decoded(stream(pysonic, flac.id, maxBitRate=48))
    assert (container, codec) == ("mp3", "mp3float") and kbps < 48 * 1.25
    assert seconds == pytest.approx(SECONDS, abs=0.15)


def test_time_offset_starts_the_transcode_that_far_in(pysonic, served):
    for name in ("02 - wave.wav", "01 Opening.flac"):  # seeking lands on a packet before: cut there
        t = track(served, name)
        _, _, whole, _ = decoded(stream(pysonic, t.id, tformat="opus", maxBitRate=96))
        _, _, rest, _ = decoded(stream(pysonic, t.id, tformat="opus", maxBitRate=96, timeOffset=2))
        assert rest == pytest.approx(whole - 2, abs=0.1)


def test_a_time_offset_past_the_end_is_a_subsonic_error_naming_the_length(pysonic, served):
    t = track(served, "01 Opening.flac")
    with pytest.raises(libsonic.errors.SonicError, match=rf"timeOffset 7 is past the end of song {t.id}, "
                                                         rf"which lasts {t.duration:.1f} s"):
        pysonic.stream(str(t.id), tformat="opus", timeOffset=7)  # an empty 200 before: no error raised
    assert decoded(stream(pysonic, t.id, tformat="opus", timeOffset=5))[2] == pytest.approx(SECONDS - 5, abs=0.1)


def test_a_format_the_server_cannot_make_is_a_subsonic_error(pysonic, served, monkeypatch):
    flac = track(served, "01 Opening.flac")
    with pytest.raises(libsonic.errors.SonicError, match="format 'wma' is not one this server transcodes to"):
        pysonic._checkStatus(pysonic.stream(str(flac.id), tformat="wma"))
    # An FFmpeg build without the encoder: a target naming an encoder no build has.
    monkeypatch.setitem(transcode.TARGETS, "aac", transcode.Target(
        "aac", "no_such_aac_encoder", "adts", "audio/aac", "aac", 192, 32, 320, (".aac",)))
    transcode.available.cache_clear()
    try:
        with pytest.raises(libsonic.errors.SonicError, match="FFmpeg has no no_such_aac_encoder encoder"):
            pysonic._checkStatus(pysonic.stream(str(flac.id), tformat="aac"))
    finally:
        transcode.available.cache_clear()


def test_every_slot_taken_is_a_subsonic_error_and_finished_streams_give_theirs_back(pysonic, served):
    flac = track(served, "01 Opening.flac")
    assert transcode.SLOTS.held == 0  # the streams above gave theirs back
    for _ in range(transcode.SLOTS.limit):
        transcode.SLOTS.take()
    try:
        with pytest.raises(libsonic.errors.SonicError, match="already transcoding"):
            pysonic._checkStatus(pysonic.stream(str(flac.id), tformat="mp3"))
        assert stream(pysonic, flac.id) == Path(flac.path).read_bytes()  # the original needs no slot
    finally:
        for _ in range(transcode.SLOTS.limit):
            transcode.SLOTS.give()
    stream(pysonic, flac.id, tformat="mp3")
    assert transcode.SLOTS.held == 0


def test_head_of_a_transcode_answers_its_headers_without_starting_it(served):
    """A player's HEAD before playing: the type the GET would send, no length (a transcode has
    none ahead; never 0, which reads as an empty file), and no transcode started: it answers
    even with every slot taken, and takes none."""
    import urllib.request

    port, _ = served
    flac = track(served, "01 Opening.flac")
    url = (f"http://127.0.0.1:{port}/rest/stream?u={USER}&p={PASSWORD}&v=1.16.1&c=t&id={flac.id}"
           "&format=mp3&maxBitRate=96")
    for _ in range(transcode.SLOTS.limit):
        transcode.SLOTS.take()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == "audio/mpeg"
            assert answer.headers["Content-Length"] is None
        assert transcode.SLOTS.held == transcode.SLOTS.limit
    finally:
        for _ in range(transcode.SLOTS.limit):
            transcode.SLOTS.give()
    with urllib.request.urlopen(urllib.request.Request(url.replace("&format=mp3&maxBitRate=96", ""),
                                                       method="HEAD")) as answer:  # the original: its length
        assert answer.headers["Content-Length"] == str(Path(flac.path).stat().st_size)


def test_a_transcode_dropped_unread_gives_its_slot_back(served):
    slots = transcode.Slots(1)
    flac = track(served, "01 Opening.flac")
    p = transcode.plan(".flac", 400, "mp3", 64)
    chunks = transcode.Transcode(Path(flac.path), p, slots)
    with pytest.raises(transcode.Busy):
        transcode.Transcode(Path(flac.path), p, slots)
    next(chunks)  # started, then the client goes away
    del chunks
    assert slots.held == 0
    transcode.Transcode(Path(flac.path), p, slots).close()
    assert slots.held == 0


def test_a_users_defaults_transcode_and_show_in_song_entries(served):
    port, _ = served
    flac, opus = track(served, "01 Opening.flac"), track(served, "02 closing.opus")
    phone = libopensonic.Connection("http://127.0.0.1", PHONE, PASSWORD, port=port)
    plain = libopensonic.Connection("http://127.0.0.1", USER, PASSWORD, port=port)
    try:
        entry = phone.get_song(str(flac.id))
        assert (entry.transcoded_suffix, entry.transcoded_content_type) == ("opus", "audio/ogg")
        assert entry.suffix == "flac"
        assert plain.get_song(str(flac.id)).transcoded_suffix is None  # no defaults: the original
        if transcode.source_kbps(opus.size, opus.duration) <= 64:  # already opus within the cap
            assert phone.get_song(str(opus.id)).transcoded_suffix is None
    finally:
        phone.cleanup()
        plain.cleanup()
    pysonic = libsonic.Connection("http://127.0.0.1", PHONE, PASSWORD, port=port)
    container, codec, _, kbps = decoded(stream(pysonic, flac.id))
    assert (container, codec) == ("ogg", "opus") and kbps < 64 * 1.25
    assert stream(pysonic, flac.id, tformat="raw") == Path(flac.path).read_bytes()


def test_user_stream_sets_shows_and_refuses(songspace):
    songspace("user", "add", "kim", "--password", "pw", check=True)
    shown = songspace("user", "stream", "kim", "--max-bit-rate", "96", "--format", "OPUS", check=True)
    assert "96 kbit/s" in shown.stdout and "opus" in shown.stdout
    assert "96 kbit/s" in songspace("user", "stream", "kim", check=True).stdout
    bad = songspace("user", "stream", "kim", "--format", "flac")
    assert bad.exit_code == 2 and "not one this server transcodes to" in bad.stdout + bad.stderr
    cleared = songspace("user", "stream", "kim", "--clear", check=True)
    assert "none" in cleared.stdout and "original" in cleared.stdout


def test_the_plan_sends_the_original_unless_something_does_not_fit():
    plan = transcode.plan
    assert plan(".flac", 900) is None and plan(".flac", 900, "flac") is None  # nothing asked
    assert plan(".flac", 900, "raw", 64, 30) is None  # raw: the original, whatever else is asked
    assert plan(".mp3", 128, "MP3", 192) is None and plan(".opus", 96, "opus") is None  # already fits
    assert plan(".mp3", 320, "mp3", 128) == transcode.Plan(transcode.TARGETS["mp3"], 128)
    assert plan(".mp3", 96, "opus").kbps == 96  # a small file is not inflated
    assert plan(".mp3", 96, None, 0, 12.5).offset == 12.5  # an offset needs a transcode
    assert plan(".flac", 900, None, 0, 0, transcode.Defaults(None, "aac")).target.name == "aac"
    assert plan(".flac", 900, None, 0, 0, transcode.Defaults(96, None)).kbps == 96
    assert plan(".flac", 900, None, 160, 0, transcode.Defaults(96, None)).kbps == 160  # the request wins
    assert plan(".flac", 2000, "mp3", 9999).kbps == 320  # clamped to what the encoder can do
    with pytest.raises(transcode.InputError, match="timeOffset"):
        plan(".flac", 900, "mp3", 0, float("nan"))


def test_a_file_that_cannot_be_decoded_is_a_clear_error_and_holds_no_slot(tmp_path):
    bad = tmp_path / "not audio.flac"
    bad.write_bytes(b"fLaC" + bytes(300))
    slots = transcode.Slots(1)
    with pytest.raises(transcode.InputError, match="not audio.flac: cannot be decoded"):
        transcode.Transcode(bad, transcode.plan(".flac", 900, "mp3"), slots)
    assert slots.held == 0


def test_a_transcode_comes_in_chunks_as_it_is_encoded(served):
    flac = track(served, "01 Opening.flac")
    chunks = list(transcode.Transcode(Path(flac.path), transcode.plan(".flac", 900, "mp3", 320), transcode.Slots(1)))
    assert len(chunks) > 2 and max(map(len, chunks[:-1])) < 2 * transcode.CHUNK  # never the whole file at once
    assert decoded(b"".join(chunks))[1] == "mp3float"


def test_stream_defaults_are_kept_per_user_and_go_with_the_user(tmp_path):
    from songspace.catalog import Catalog

    cat = Catalog(tmp_path / "catalog.sqlite")
    cat.add_user("kim", "pw")
    assert cat.stream_defaults("kim") == (None, None)
    cat.set_stream_defaults("kim", 128, "opus")
    assert cat.stream_defaults("kim") == (128, "opus") and cat.stream_defaults("ann") == (None, None)
    cat.remove_user("kim")
    cat.add_user("kim", "new")
    assert cat.stream_defaults("kim") == (None, None)
    cat.close()


@pytest.mark.parametrize("value", ["two", "-3", "0", "1.5"])
def test_a_bad_transcode_limit_is_refused_naming_the_variable(value):
    """$SONGSPACE_MAX_TRANSCODES=two was a traceback at start; -3 refused every transcode."""
    from songspace.errors import InputError

    with pytest.raises(InputError, match="SONGSPACE_MAX_TRANSCODES"):
        transcode.slot_limit(value)


def test_the_app_reads_the_transcode_limit_and_refuses_a_bad_one(tmp_path, monkeypatch):
    """create_app (what `songspace serve` runs inside its clear errors) sets the limit from the
    environment, and a bad value stops it with the variable named."""
    from songspace.errors import InputError
    from songspace.server.app import create_app

    before = transcode.SLOTS.limit
    try:
        monkeypatch.setenv("SONGSPACE_MAX_TRANSCODES", "two")
        with pytest.raises(InputError, match="SONGSPACE_MAX_TRANSCODES='two'"):
            create_app(tmp_path / "library")
        monkeypatch.setenv("SONGSPACE_MAX_TRANSCODES", "3")
        create_app(tmp_path / "library").state.library.close()
        assert transcode.SLOTS.limit == 3
    finally:
        transcode.SLOTS.limit = before


def test_the_transcode_limit_given_or_the_cores():
    assert transcode.slot_limit(" 3 ") == 3
    assert transcode.slot_limit(None) == transcode.slot_limit("") >= 2
