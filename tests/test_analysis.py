"""Analysing one file reads it from disk once: the decoder, the tag reader and the content hash
share one open (analysis.OneRead), and bytes sent from elsewhere go through the same steps."""

import hashlib
import io
import wave
from pathlib import Path

import numpy as np
import pytest

from songspace.analysis import OneRead, Task, analyse, analyse_bytes
from songspace.audio import load
from songspace.errors import DecodeError
from songspace.models.files import DEFAULT_MODEL
from songspace.status import Outcome
from songspace.tags import audio_hash

MODEL = str(DEFAULT_MODEL)


def blake(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def bytes_read() -> int:
    """Bytes this process has read with read() and its kin so far (Linux's rchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
def test_a_file_is_read_once(demo_music, tmp_path):
    from songspace.synth import synth_track, write_audio

    minute = write_audio(tmp_path / "minute.flac", synth_track("mid_chords", 60.0, 44100, seed=2), 44100)
    for path in [minute, *sorted(p for p in demo_music.rglob("*.*") if p.is_file())]:
        analyse(Task(str(path), MODEL))  # the model loaded, caches warm: what is left is the file
        before = bytes_read()
        r = analyse(Task(str(path), MODEL))
        read = bytes_read() - before
        assert r.status == Outcome.OK and r.content_hash == blake(path)
        # Once through, and a few probes: Ogg's decoder and tag reader each read up to 64 KiB
        # at the end for the length. Hashing, decoding and tagging apart read it twice and more.
        assert read < path.stat().st_size + 256 * 1024, (path.name, read, path.stat().st_size)
        # The audio hash, taken from the packets as the decoder demuxed them, is tags.audio_hash's.
        assert r.audio_hash is not None and r.audio_hash == audio_hash(str(path)), path.name
    assert minute.stat().st_size > 512 * 1024  # where reading twice would break the bound


def test_the_hash_covers_what_a_long_files_decoder_skips(tmp_path):
    # 25 minutes: decoded as 30-s windows spread over it, by seeking; the hash still reads it all.
    path = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(4000)
        w.writeframes((0.2 * rng.standard_normal(1500 * 4000) * 32767).astype("<i2").tobytes())
    with open(path, "rb", buffering=0) as f:
        source = OneRead(f, str(path))
        a = load(source)
        assert a.excerpted and 0 < source.hashed < path.stat().st_size  # the decoder skipped parts
        assert source.digest() == blake(path)
    np.testing.assert_equal(analyse(Task(str(path), MODEL)).audio_hash, audio_hash(str(path)))  # demuxed it all
    np.testing.assert_array_equal(a.y, load(path).y)


def test_bytes_from_elsewhere_give_what_the_file_gives(demo_music):
    for path in sorted(p for p in demo_music.rglob("*.*") if p.is_file())[:4]:
        at_home = analyse(Task(str(path), MODEL))
        sent = analyse_bytes(Task(str(path), MODEL, size=123, mtime=4.5), path.read_bytes())
        assert (sent.path, sent.size, sent.mtime, sent.status) == (str(path), 123, 4.5, Outcome.OK)
        assert sent.content_hash == at_home.content_hash and sent.tags == at_home.tags and sent.tags
        np.testing.assert_array_equal(sent.vector, at_home.vector)


def test_an_unchanged_hash_is_not_decoded(tmp_path):
    path = tmp_path / "notes.mp3"  # not audio: decoding it would fail
    path.write_text("these are my shopping notes, not music\n" * 20)
    r = analyse(Task(str(path), MODEL, known_hash=blake(path)))
    assert r.status == Outcome.UNCHANGED and r.content_hash == blake(path)
    assert analyse(Task(str(path), MODEL, known_hash="0" * 32)).status == Outcome.FAILED


def test_an_open_file_fails_as_its_path_does(tmp_path):
    good = tmp_path / "good.flac"
    from songspace.synth import synth_track, write_audio

    data = write_audio(good, synth_track("noise_beat", 20.0, 22050), 22050).read_bytes()
    cases = {"empty.ogg": b"", "notes.mp3": b"not audio at all\n" * 40, "stub.flac": data[:300],
             "half.flac": data[: len(data) // 2]}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DecodeError) as by_path:
            load(path)
        with pytest.raises(DecodeError) as by_file:
            load(OneRead(io.BytesIO(content), str(path)))
        assert by_file.value.path == str(path)
        assert by_file.value.reason == by_path.value.reason, name
