"""One family of errors for everything a user can get wrong or meet in their files.

Messages name the problem (the file, the parameter, the reason), never a command: each face
(CLI, HTTP server) turns them into its own words and exit or status codes.
"""

from __future__ import annotations


class SongspaceError(Exception):
    """Base of every expected failure; anything else is a bug. `param`: the parameter the
    message is about, by its Python name ("device"), for a face to name it its own way."""

    def __init__(self, *args, param: str | None = None):
        super().__init__(*args)
        self.param = param


class QueryError(SongspaceError, LookupError):
    """A query that names no track, too many, or one that cannot be searched (yet)."""


class InputError(SongspaceError, ValueError):
    """A parameter or input file that cannot be used as given (missing folder, bad CSV, ...)."""


class ModelError(SongspaceError):
    """A model file that is missing or cannot be loaded by this version."""


class DecodeError(SongspaceError):
    """Undecodable audio; str(e) == f"{path}: {reason}"."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Worker processes send errors back pickled; the default would call DecodeError(message).
        return (DecodeError, (self.path, self.reason))


class CatalogError(SongspaceError):
    """A catalog file that is not a database, or is damaged."""


class ReadOnlyLibrary(SongspaceError):
    """A library that cannot be written (a read-only mount, a catalog without write permission):
    it can still be read and searched."""


class DiskFull(SongspaceError):
    """No space left where the library is written; what was stored before is kept."""


class LibraryBusy(SongspaceError):
    """Another process is writing to this library (indexing or fitting)."""


class MpdError(SongspaceError):
    """MPD cannot be reached, or cannot be given a track (outside its music directory, unknown to it)."""


class MissingDependency(SongspaceError):
    """An optional part of songspace that is not installed (Ray, for running on a cluster)."""


class ClusterError(SongspaceError):
    """A Ray cluster that cannot be reached, or whose workers cannot start."""
