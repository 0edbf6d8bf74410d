"""songspace: music similarity from the sound itself."""

from .library import IndexReport, Library, Match, QueryError

__all__ = ["Library", "IndexReport", "Match", "QueryError"]
__version__ = "0.1.0"
