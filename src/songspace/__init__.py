"""songspace: music similarity from the sound itself."""

from .errors import DecodeError, InputError, ModelError, QueryError, SongspaceError
from .library import IndexReport, Library
from .query import Match, Searcher

__all__ = ["Library", "IndexReport", "Searcher", "Match", "SongspaceError", "QueryError", "DecodeError", "InputError", "ModelError"]
__version__ = "0.1.0"
