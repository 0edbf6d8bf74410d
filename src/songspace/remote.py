"""A client of another Subsonic-compatible server (Navidrome, Airsonic, gonic, supysonic, songspace
itself): what companion mode needs from it and nothing more.

  RemoteServer     where the server is and who signs in: parsed from `subsonic://USER@HOST[:PORT][/BASE]`
                   (`subsonics://` over https; `http://` and `https://` say the same); a song
                   there is the track path `subsonic://USER@HOST:PORT[/BASE]/SONG_ID`
  SubsonicClient   signs in (the apiKey extension when a key is given, else a token: md5(password
                   + a fresh salt) per request; a server that takes no tokens, such as supysonic,
                   gets the password hex-encoded), lists every song (paged `search3` with an empty
                   query; `getAlbumList2` + `getAlbum` where that finds nothing), downloads one
                   song into a file the caller holds, asks a song's cover and lyrics (what
                   `songspace serve` relays for a song that has no file here), and reads and
                   writes playlists

Standard library only (urllib): no run-time dependency for a feature many never use. Every
failure is a `RemoteError` whose message names the server (never the password) and the reason.
"""

from __future__ import annotations

import binascii
import hashlib
import http.client
import json
import os
import secrets
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO

from .errors import InputError, SongspaceError

API_VERSION = "1.16.1"
CLIENT = "songspace"
PAGE = 500  # songs per search3 page; albums per getAlbumList2 page (the most Subsonic allows)
TIMEOUT = 60.0  # seconds without a byte from the server before a request is given up
QUICK = 10.0  # the same for a cover or lyrics: a page or an app waits for them, often by the dozen
MAX_PICTURE = 32 * 2**20  # a cover larger than this is no cover
# A download stops here whatever the server says: a song bigger than this is no song.
MAX_DOWNLOAD = 4 * 2**30

# Subsonic error codes (the specification's "error" element)
MISSING_PARAMETER, WRONG_CREDENTIALS, TOKENS_NOT_SUPPORTED, AUTH_NOT_SUPPORTED = 10, 40, 41, 42
INVALID_API_KEY, NOT_AUTHORIZED, NOT_FOUND = 44, 50, 70

SCHEMES = {"subsonic": "http", "subsonics": "https", "http": "http", "https": "https"}
# Where the secret of a server comes from (never the command line): the password, or an API key
PASSWORD_ENV, API_KEY_ENV = "SONGSPACE_REMOTE_PASSWORD", "SONGSPACE_REMOTE_API_KEY"


class RemoteError(SongspaceError):
    """Another Subsonic server that cannot be reached, refuses us, answers with an error, or sends
    something other than it said. `code`: the Subsonic error code when it answered one;
    `unreachable`: no answer at all (down, refused, timed out)."""

    def __init__(self, message: str, code: int | None = None, unreachable: bool = False):
        super().__init__(message)
        self.code, self.unreachable = code, unreachable


def is_remote(location: str) -> bool:
    """Whether `location` (an `index` argument) names a Subsonic server rather than a folder."""
    return isinstance(location, str) and location.split("://", 1)[0].lower() in SCHEMES and "://" in location


# ---------------------------------------------------------------------------------------------
# Where the server is
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteServer:
    scheme: str  # "subsonic" (http) or "subsonics" (https)
    user: str
    host: str  # as written in a URL: an IPv6 address in brackets
    port: int
    base: str = ""  # the path the server is mounted under ("" or "/music"), without a trailing slash

    @classmethod
    def parse(cls, url: str) -> "RemoteServer":
        """`subsonic://USER@HOST[:PORT][/BASE]`, `subsonics://...` (https), or `http(s)://USER@...`.
        The port defaults to 80 (http) or 443 (https). InputError naming what is wrong; a
        password in the URL is refused (it would stay in the shell's history and in `ps`)."""
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise InputError(f"{url}: not a server address ({e})", param="location") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise InputError(f"{url}: a server address starts with subsonic:// (or subsonics:// for https)",
                             param="location")
        if parts.password is not None:
            raise InputError(f"{scheme}://{parts.username}:...@{parts.hostname}: no password in the address; "
                             "set $SONGSPACE_REMOTE_PASSWORD or type it when asked", param="location")
        if not parts.username:
            raise InputError(f"{url}: give the user to sign in as: {scheme}://USER@{parts.hostname or 'HOST'}",
                             param="location")
        if not parts.hostname:
            raise InputError(f"{url}: no host in the address", param="location")
        if parts.query or parts.fragment:
            raise InputError(f"{url}: a server address has no ?query or #fragment", param="location")
        https = SCHEMES[scheme] == "https"
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        base = parts.path.rstrip("/").removesuffix("/rest")  # the API's own path given: the server is above it
        return cls("subsonics" if https else "subsonic", urllib.parse.unquote(parts.username), host,
                   port or (443 if https else 80), base)

    @classmethod
    def of_track(cls, path: str) -> "RemoteServer | None":
        """The server a track path (`subsonic://USER@HOST:PORT[/BASE]/SONG_ID`) names, or None."""
        if not path.startswith(("subsonic://", "subsonics://")) or path.count("/") < 3:
            return None
        try:
            return cls.parse(path.rsplit("/", 1)[0])
        except InputError:
            return None

    @property
    def prefix(self) -> str:
        """What every track path from this server starts with."""
        return f"{self.scheme}://{urllib.parse.quote(self.user, safe='')}@{self.host}:{self.port}{self.base}/"

    def track_path(self, song_id: str) -> str:
        # "/" and "%" in an id quoted, so the id is always the last part (Track.remote_id unquotes it)
        return self.prefix + urllib.parse.quote(song_id, safe="!$&'()*+,;=:@-._~")

    def holds(self, path: str) -> bool:
        """Whether a track path is a song of this server (and user)."""
        return path.startswith(self.prefix) and "/" not in path[len(self.prefix):]

    @property
    def api(self) -> str:
        http = "https" if self.scheme == "subsonics" else "http"
        return f"{http}://{self.host}:{self.port}{self.base}/rest/"

    def __str__(self) -> str:
        return self.prefix.rstrip("/")


def elsewhere(path: str) -> str | None:
    """For a track indexed from another server (companion mode), why its audio is not here:
    songspace keeps its vectors and tags, the file stays on that server. None for a local file."""
    server = RemoteServer.of_track(path)
    if server is None:
        return None
    return f"the song lives on {server} (companion mode): only its vectors and tags are here; play it from that server"


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


def client_from_env(server: RemoteServer) -> "SubsonicClient | None":
    """A client of `server` with the secret in the environment ($SONGSPACE_REMOTE_API_KEY, else
    $SONGSPACE_REMOTE_PASSWORD), not yet signed in; None when neither is set."""
    if key := os.environ.get(API_KEY_ENV):
        return SubsonicClient(server, key, api_key=True)
    password = os.environ.get(PASSWORD_ENV)
    return None if password is None else SubsonicClient(server, password)


class SubsonicClient:
    """One server, signed in as one user. `secret` is the password, or an API key with
    `api_key=True` (the OpenSubsonic apiKeyAuthentication extension)."""

    def __init__(self, server: RemoteServer, secret: str, *, api_key: bool = False, timeout: float = TIMEOUT):
        self.server, self.timeout = server, timeout
        self._secret, self._api_key = secret, api_key
        self._plain = False  # the server takes no tokens: the password goes hex-encoded (p=enc:...)
        self._signed_in = False

    @property
    def identity(self) -> tuple[str, str]:
        """Who this client signs in as: the server and a digest of its secret (two clients with
        the same identity are interchangeable; the secret itself is not in it)."""
        kind = "key" if self._api_key else "password"
        return str(self.server), kind + ":" + hashlib.sha256(self._secret.encode()).hexdigest()

    # -- requests ---------------------------------------------------------------------------------

    def _credentials(self) -> list[tuple[str, str]]:
        common = [("v", API_VERSION), ("c", CLIENT), ("f", "json")]
        if self._api_key:
            return [("apiKey", self._secret), *common]
        if self._plain:
            return [("u", self.server.user), ("p", "enc:" + binascii.hexlify(self._secret.encode()).decode()), *common]
        salt = secrets.token_hex(8)  # a fresh salt each request: servers may refuse a t/s pair seen before
        token = hashlib.md5((self._secret + salt).encode()).hexdigest()
        return [("u", self.server.user), ("t", token), ("s", salt), *common]

    def _open(self, method: str, params: list[tuple[str, str]] | None = None, form: bool = False,
              headers: dict[str, str] | None = None, timeout: float | None = None):
        """The HTTP response of `method` (credentials in the query string; `params` there too, or
        in a form body with `form`, for long lists of ids). RemoteError when it cannot be had.
        Signs in first if not yet done (which way the server takes credentials is learnt then).
        `timeout`: seconds without a byte, the client's own when None."""
        if not self._signed_in and method != "ping":
            self.sign_in()
        query = self._credentials() + ([] if form else list(params or []))
        url = self.server.api + method + "?" + urllib.parse.urlencode(query)
        body = urllib.parse.urlencode(params or []).encode() if form else None
        request = urllib.request.Request(url, data=body, headers={"User-Agent": CLIENT, **(headers or {})})
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as e:
            answer = _subsonic_answer(e)  # many servers send their Subsonic error with a 4xx status
            if answer is not None:
                self._check(method, answer)
            raise RemoteError(f"{self.server}: {method} answered HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            raise RemoteError(f"{self.server}: cannot reach the server ({_why(e)})", unreachable=True) from None
        except http.client.HTTPException as e:  # an answer that is not HTTP
            raise RemoteError(f"{self.server}: {method}: the server's answer is not HTTP ({type(e).__name__})") from None

    def call(self, method: str, params: list[tuple[str, str]] | None = None, form: bool = False,
             timeout: float | None = None) -> dict:
        """The `subsonic-response` of `method` (JSON), checked: RemoteError on a Subsonic error."""
        with self._open(method, params, form, timeout=timeout) as response:
            try:
                raw = response.read(64 * 2**20 + 1)
            except (OSError, ValueError, http.client.HTTPException) as e:
                raise RemoteError(f"{self.server}: {method}: the answer broke off ({_why(e)})") from None
        if len(raw) > 64 * 2**20:
            raise RemoteError(f"{self.server}: {method}: the answer is over 64 MiB")
        try:
            answer = json.loads(raw)["subsonic-response"]
        except (ValueError, KeyError, TypeError):
            raise RemoteError(f"{self.server}: {method}: the answer is not a Subsonic JSON answer "
                              f"(is this a Subsonic server? its API is expected at {self.server.api})") from None
        return self._check(method, answer)

    def _check(self, method: str, answer) -> dict:
        if not isinstance(answer, dict):
            raise RemoteError(f"{self.server}: {method}: the answer is not a Subsonic answer")
        if answer.get("status") != "ok":
            err = answer.get("error") if isinstance(answer.get("error"), dict) else {}
            code = err.get("code")
            raise RemoteError(f"{self.server}: {method}: error {code}: {err.get('message') or 'no message'}",
                              code=code if isinstance(code, int) else None)
        return answer

    # -- signing in -------------------------------------------------------------------------------

    def sign_in(self) -> None:
        """Check the credentials (ping). A server that takes no tokens (error 41, or 42, or 10 for
        the `p` it looks for) is asked again with the password itself, hex-encoded as Subsonic's
        legacy clients send it. RemoteError naming the user for wrong credentials. Once is enough."""
        if self._signed_in:
            return
        try:
            self.call("ping")
        except RemoteError as e:
            if self._api_key or e.code not in (MISSING_PARAMETER, TOKENS_NOT_SUPPORTED, AUTH_NOT_SUPPORTED):
                raise self._refused(e) from None
            self._plain = True
            try:
                self.call("ping")
            except RemoteError as e2:
                raise self._refused(e2) from None
        self._signed_in = True

    def _refused(self, e: RemoteError) -> RemoteError:
        if e.code in (WRONG_CREDENTIALS, INVALID_API_KEY):
            what = "the API key" if self._api_key else f"user {self.server.user!r} and this password"
            return RemoteError(f"{self.server}: signing in with {what} was refused (error {e.code})", e.code)
        return e

    def extensions(self) -> set[str]:
        """The OpenSubsonic extensions the server offers (none for a plain Subsonic server)."""
        try:
            answer = self.call("getOpenSubsonicExtensions")
        except RemoteError:
            return set()
        return {x.get("name") for x in _list(answer.get("openSubsonicExtensions")) if isinstance(x, dict)}

    # -- the library ------------------------------------------------------------------------------

    def songs(self) -> list[dict]:
        """Every song entry of the server, each once: paged search3 with an empty query, or,
        where the server refuses that or finds nothing with it, every album's songs
        (getAlbumList2 + getAlbum). RemoteError when neither can be had."""
        try:
            found = self._songs_by_search()
        except RemoteError as e:
            if e.code is None:  # cannot reach it, or not Subsonic: the albums would fail the same way
                raise
            found = []
        return found or self._songs_by_album()

    def _songs_by_search(self) -> list[dict]:
        found: dict[str, dict] = {}
        offset = 0
        while True:
            answer = self.call("search3", [("query", ""), ("artistCount", "0"), ("albumCount", "0"),
                                           ("songCount", str(PAGE)), ("songOffset", str(offset))])
            page = _list((answer.get("searchResult3") or {}).get("song"))
            before = len(found)
            for song in page:
                if isinstance(song, dict) and song.get("id") is not None and not song.get("isVideo"):
                    found.setdefault(str(song["id"]), song)
            if len(page) < PAGE or len(found) == before:  # the end, or a server that ignores songOffset
                return list(found.values())
            offset += len(page)

    def _songs_by_album(self) -> list[dict]:
        found: dict[str, dict] = {}
        offset = 0
        while True:
            answer = self.call("getAlbumList2", [("type", "alphabeticalByName"), ("size", str(PAGE)),
                                                 ("offset", str(offset))])
            albums = _list((answer.get("albumList2") or {}).get("album"))
            for album in albums:
                if not isinstance(album, dict) or album.get("id") is None:
                    continue
                songs = _list((self.call("getAlbum", [("id", str(album["id"]))]).get("album") or {}).get("song"))
                for song in songs:
                    if isinstance(song, dict) and song.get("id") is not None and not song.get("isVideo"):
                        found.setdefault(str(song["id"]), song)
            if len(albums) < PAGE or offset > 10_000_000:  # the end (or a server that ignores offset)
                return list(found.values())
            offset += len(albums)

    def download(self, song_id: str, out: BinaryIO, declared: int | None = None,
                 stop: threading.Event | None = None) -> int:
        """Write song `song_id`'s file, as stored on the server, into `out`; its size. `download`,
        or `stream` with format=raw where downloading is not allowed (error 50). RemoteError when
        the server answers an error instead of audio, the transfer breaks off before the length
        it announced, or the file is not the `declared` size of its song entry (nothing past it is
        read): a server saying one size and sending another is trusted neither with the disk nor
        with the catalog. `stop` set: the download ends at its next block (RemoteError)."""
        response = self.open_audio(song_id, download=True)
        with response:
            length = _int(response.headers.get("Content-Length"))
            expected = declared if declared else length
            limit = min(MAX_DOWNLOAD, expected) if expected else MAX_DOWNLOAD
            got = 0
            try:
                while block := response.read(min(1 << 20, limit + 1 - got)):
                    got += len(block)
                    if got > limit:
                        raise RemoteError(f"{self.server}: song {song_id}: the server said {expected or limit} bytes "
                                          f"and sent more; stopped at {got} bytes")
                    out.write(block)
                    if stop is not None and stop.is_set():
                        raise RemoteError(f"{self.server}: song {song_id}: download stopped")
            except (OSError, ValueError, http.client.HTTPException) as e:  # IncompleteRead; timeouts are OSErrors
                raise RemoteError(f"{self.server}: song {song_id}: the download broke off after {got}"
                                  f"{f' of {expected}' if expected else ''} bytes ({_why(e)})") from None
        if length is not None and got < length:
            raise RemoteError(f"{self.server}: song {song_id}: the download broke off after {got} of {length} bytes")
        if declared and got != declared:  # a short Content-Length, or a library scanned before the file changed
            raise RemoteError(f"{self.server}: song {song_id}: its entry says {declared} bytes, the download gave "
                              f"{got} (rescan the server's library?)")
        if got == 0:
            raise RemoteError(f"{self.server}: song {song_id}: the server sent an empty file")
        return got

    def open_audio(self, song_id: str, *, download: bool = False, params: list[tuple[str, str]] | None = None,
                   range_header: str | None = None):
        """The open HTTP response carrying song `song_id`'s audio, for the caller to pass on and
        close: `download` (the file as stored; `stream` with format=raw where downloading is not
        allowed, error 50, which most servers answer with HTTP 200), or `stream` with `params`
        (format, maxBitRate, timeOffset: the server transcodes as it can). A Range header is
        passed on (its 206 comes back as it is). RemoteError for an error answer instead of audio."""
        headers = {"Range": range_header} if range_header else None
        if not download:
            return self._audio("stream", [("id", song_id), *(params or [])], headers)
        try:
            return self._audio("download", [("id", song_id)], headers)
        except RemoteError as e:
            if e.code != NOT_AUTHORIZED:
                raise
            return self._audio("stream", [("id", song_id), ("format", "raw")], headers)

    def _audio(self, method: str, params: list[tuple[str, str]], headers: dict[str, str] | None):
        response = self._open(method, params, headers=headers)
        self._media_only(response, method, f"song {params[0][1]}", "audio")
        return response

    def _media_only(self, response, method: str, item: str, what: str) -> None:
        """Nothing when `response` carries media; else (a Subsonic answer: the server's error) it
        is read, closed and raised as a RemoteError, in the server's words when it has some."""
        kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind not in ("application/json", "text/json", "text/xml", "application/xml"):
            return
        with response:
            data = response.read(2**20)
        try:
            self._check(method, json.loads(data)["subsonic-response"])
        except (ValueError, KeyError, TypeError):
            pass
        raise RemoteError(f"{self.server}: {method} of {item} sent {kind}, not {what}")

    # -- what a song's file holds besides its audio: its cover and lyrics --------------------------

    def cover(self, song_id: str, size: int | None = None) -> tuple[bytes, str] | None:
        """The picture of song `song_id`, with its media type: the `coverArt` its entry names
        (getSong), from getCoverArt, at most `size` pixels when given (the server scales; some
        ignore it). None when the entry names no cover. RemoteError when the server fails or
        sends something that is not a picture."""
        entry = self.call("getSong", [("id", song_id)], timeout=QUICK).get("song")
        cover = entry.get("coverArt") if isinstance(entry, dict) else None
        if cover is None or cover == "":
            return None
        params = [("id", str(cover))] + ([("size", str(size))] if size else [])
        response = self._open("getCoverArt", params, timeout=QUICK)
        self._media_only(response, "getCoverArt", f"song {song_id}'s cover", "a picture")
        with response:
            kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            try:
                data = response.read(MAX_PICTURE + 1)
            except (OSError, ValueError, http.client.HTTPException) as e:
                raise RemoteError(f"{self.server}: getCoverArt of song {song_id}: the answer broke off ({_why(e)})") from None
        if not kind.startswith("image/") or not data or len(data) > MAX_PICTURE:
            raise RemoteError(f"{self.server}: getCoverArt of song {song_id} sent {len(data)} bytes of "
                              f"{kind or 'no type'}, not a picture")
        return data, kind

    def structured_lyrics(self, song_id: str) -> list[dict]:
        """The `structuredLyrics` entries of song `song_id` (OpenSubsonic's getLyricsBySongId, as
        the server sends them: the caller checks their shape). RemoteError from a server without
        that call."""
        answer = self.call("getLyricsBySongId", [("id", song_id)], timeout=QUICK)
        return [e for e in _list((answer.get("lyricsList") or {}).get("structuredLyrics")) if isinstance(e, dict)]

    def lyrics(self, artist: str | None, title: str | None) -> str:
        """The text of Subsonic's getLyrics for this artist and title ("" when the server has none)."""
        answer = self.call("getLyrics", [("artist", artist or ""), ("title", title or "")], timeout=QUICK)
        value = (answer.get("lyrics") or {}).get("value") if isinstance(answer.get("lyrics"), dict) else None
        return value if isinstance(value, str) else ""

    # -- playlists --------------------------------------------------------------------------------

    def playlists(self) -> list[dict]:
        return [p for p in _list((self.call("getPlaylists").get("playlists") or {}).get("playlist"))
                if isinstance(p, dict)]

    def playlist_songs(self, playlist_id: str) -> list[str]:
        """The song ids of a playlist, in order."""
        entries = _list((self.call("getPlaylist", [("id", str(playlist_id))]).get("playlist") or {}).get("entry"))
        return [str(e["id"]) for e in entries if isinstance(e, dict) and "id" in e]

    def save_playlist(self, name: str, song_ids: list[str]) -> str:
        """Create playlist `name` holding these songs, replacing the user's own playlist of that
        name (the first, if several; the others are left alone); its id. Replacing creates the
        new one, then deletes the old one (not every server replaces songs through
        createPlaylist's playlistId): a server refusing the new list leaves the old one as it
        was. The ids travel in a form body (thousands fit)."""
        mine = [p for p in self.playlists() if p.get("name") == name and _owned(p, self.server.user)]
        old = str(mine[0]["id"]) if mine else None
        answer = self.call("createPlaylist", [("name", name)] + [("songId", i) for i in song_ids], form=True)
        made = answer.get("playlist")
        if isinstance(made, dict) and made.get("id") is not None:
            new = str(made["id"])
        else:  # Subsonic before 1.14 answers nothing: the new playlist is the one of that name not there before
            before = {str(p.get("id")) for p in mine}
            again = [str(p.get("id")) for p in self.playlists()
                     if p.get("name") == name and _owned(p, self.server.user) and str(p.get("id")) not in before]
            if not again:
                raise RemoteError(f"{self.server}: createPlaylist answered ok, yet no new playlist {name!r} is there")
            new = again[-1]
        if old is not None and old != new:
            self.call("deletePlaylist", [("id", old)])
        return new


def _owned(playlist: dict, user: str) -> bool:
    owner = playlist.get("owner")
    return owner is None or str(owner) == user


def _list(value) -> list:
    """A JSON array as a list; a lone object (some servers' JSON for one element) as a list of one."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _int(value) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def _why(e: BaseException) -> str:
    reason = getattr(e, "reason", None)
    if isinstance(reason, BaseException):
        e = reason
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "no answer in time"
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _subsonic_answer(e: urllib.error.HTTPError):
    try:
        return json.loads(e.read(2**20))["subsonic-response"]
    except (ValueError, KeyError, TypeError, OSError):
        return None
