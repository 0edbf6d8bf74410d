"""The cover of a group of songs (an album, an artist, one track): the picture embedded in the
first file that has one, else the folder image beside one of them (tags.embedded_picture, and the
folder images tags.beside found), else a placeholder in the group's own colours (coverart.py).

The page's album covers come from here (server/browse.py). Subsonic's getCoverArt
(subsonic_browse.py) looks the same way; it is meant to call this too, so that there is one copy.
"""

from __future__ import annotations

import mimetypes

from fastapi.responses import FileResponse, Response

from ..catalog import Track
from ..tags import embedded_picture
from .coverart import placeholder_png
from .streaming import inside_folders

MAX_LOOKED_AT = 20  # songs whose files are opened for a picture: looking further costs more than a placeholder is worth


def cover_response(key: str, songs: list[Track], folders: list[str], size: int = 300) -> Response:
    """The picture embedded in the first of `songs` that has one, else the folder image beside
    one of them, as it is; else a placeholder of `size` pixels whose colours come from `key`.
    Only files inside the library's `folders` are read."""
    songs = songs[:MAX_LOOKED_AT]
    for t in songs:
        found = (embedded_picture(t.path) if (t.picture_mime or not t.tags_version) and inside_folders(t.path, folders)
                 else None)  # a track not re-read since tags were stored may still hold one
        if found:
            return Response(found[0], media_type=found[1], headers={"Cache-Control": "max-age=86400"})
    for t in songs:
        image = inside_folders(t.folder_image, folders) if t.folder_image else None
        if image is not None:
            return FileResponse(image, media_type=mimetypes.guess_type(image)[0] or "image/jpeg",
                                headers={"Cache-Control": "max-age=86400"})
    return Response(placeholder_png(key, size), media_type="image/png", headers={"Cache-Control": "max-age=3600"})
