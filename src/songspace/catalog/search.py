"""Text search over tracks, the one place that decides what a typed query matches: the CLI's
names (`Searcher.resolve`), the page's search (`Catalog.search_text`) and the Subsonic search
(server/subsonic_browse.py) all use it.

Text is *folded* before it is compared: accents dropped (NFKD, combining marks removed), case
folded ("Café" and "CAFE" are "cafe"), apostrophes removed ("Don't" is "dont") and anything
else that is neither a letter nor a digit turned into a space, so words are separated by single
spaces. A query is split into words the same way, and every word of it must begin a word of the
track's text, in any order, in any field: "hoffmann geosphere" finds Hoffmann's "Geosphere",
"colo" and `colo*` (the `*` that some apps send is allowed) find "Colours" but not "Tricolore".
Word starts rather than any substring: a short word ("c", "a") would otherwise match nearly
everything. An empty query matches everything.

A track's searched text (`track_key`) is its title, artist(s), album artist, album, genre(s), and the
names of its file and of the folder it lies in (untagged files are found by their names), not
the whole path: "music" or "home" would otherwise match every file. The catalog stores it
folded beside the track (`tracks.search_key`, filled on every write and by migration step 6),
so a search is one SQL scan with `instr` at C speed, not a Python function per row.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePath

_APOSTROPHES = str.maketrans("", "", "'’ʼ`´")
_NOT_WORD = re.compile(r"[^\w*]+|_+")  # \w is Unicode letters, digits and _ ; `*` kept for queries


def fold(text: str | None) -> str:
    """`text` compared as search compares it: accents and case dropped, words separated by one
    space, no `*`."""
    return _fold(text).replace("*", " ").strip()


def _fold(text: str | None) -> str:
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().translate(_APOSTROPHES)
    return " ".join(_NOT_WORD.sub(" ", plain).split())


def track_key(title: str | None, artist: str | None, artists, albumartist: str | None, album: str | None,
              genre: str | None, genres, path: str) -> str:
    """The folded text a track is found by, with a space at either end (so that a word start is
    always a space followed by the word)."""
    p = PurePath(path)
    parts = [title, artist, *(artists or ()), albumartist, album, genre, *(genres or ()), p.parent.name, p.stem]
    return f" {fold(' '.join(x for x in parts if x))} "


@dataclass(frozen=True)
class Term:
    word: str  # folded

    def needle(self) -> str:
        """What the key must hold: the word after a space, i.e. at a word's start."""
        return f" {self.word}"


def terms(query: str | None) -> list[Term]:
    """The words of a query, folded (a `*` ends a word; a lone `*` is none). Quotes around the
    whole query (Symfonium sends `""` for "everything") are ignored."""
    return [Term(w) for w in fold((query or "").strip().strip('"')).split()]


def matches(found: list[Term], key: str) -> bool:
    """Does the folded `key` (as `track_key` or `name_key` makes it) hold every term?"""
    return all(t.needle() in key for t in found)


def name_key(*names: str | None) -> str:
    """The folded text of an artist or album found by its names, spaced like `track_key`."""
    return f" {fold(' '.join(n for n in names if n))} "


def sql_where(found: list[Term], column: str) -> tuple[str, tuple]:
    """An SQL condition (and its parameters) true where `column` (a stored key) holds every term."""
    if not found:
        return "1", ()
    return " AND ".join(f"instr({column}, ?) > 0" for _ in found), tuple(t.needle() for t in found)
