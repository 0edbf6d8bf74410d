"""The HTTP face: a FastAPI app serving the JSON API, the audio, and the page's static files.

    from songspace.server import create_app
    app = create_app("~/.local/share/songspace")   # or `songspace serve`
"""

from .app import create_app

__all__ = ["create_app"]
