"""The cover of a group of songs (an album, an artist, one track, a playlist), for the page's
albums (server/browse.py) and Subsonic's getCoverArt alike: the picture embedded in the first
file that has one, else the folder image beside one of them (tags.embedded_picture, and the
folder images tags.beside found), scaled down when asked (coverart.scaled); for songs of another
server (companion mode, no file here), the cover that server gives (remote.py asks it, at the
size asked, with the secret in the environment, as remote_audio.py relays their audio); else a
placeholder in the group's own colours (coverart.placeholder_png), which is also the answer when
that server has no cover, cannot be asked, or fails.
"""

from __future__ import annotations

import mimetypes

from fastapi.responses import FileResponse, Response

from ..catalog import Track
from ..remote import RemoteError
from ..tags import embedded_picture
from .coverart import placeholder_png, scaled
from .remote_audio import relay_client
from .streaming import inside_folders

MAX_LOOKED_AT = 20  # songs whose files are opened for a picture: looking further costs more than a placeholder is worth
MAX_ASKED = 3  # songs of another server whose cover is asked for (two requests each)


def cover_response(key: str, songs: list[Track], folders: list[str], size: int = 300, scale: bool = False) -> Response:
    """The picture of the first of `songs` that has one (embedded, else the folder image beside
    it), as it is, or with `scale` no larger than `size` pixels (its longer side; never made
    larger); without any, a placeholder of `size` pixels whose colours come from `key`. Only
    files inside the library's `folders` are read."""
    songs = songs[:MAX_LOOKED_AT]

    def picture(data: bytes, mime: str) -> Response:
        data, mime = (scaled(data, size) if scale else None) or (data, mime)
        return Response(data, media_type=mime, headers={"Cache-Control": "max-age=86400"})

    for t in songs:
        found = (embedded_picture(t.path) if (t.picture_mime or not t.tags_version) and inside_folders(t.path, folders)
                 else None)  # a track not re-read since tags were stored may still hold one
        if found:
            return picture(*found)
    for t in songs:
        image = inside_folders(t.folder_image, folders) if t.folder_image else None
        if image is not None:
            mime = mimetypes.guess_type(image)[0] or "image/jpeg"
            if not scale:
                return FileResponse(image, media_type=mime, headers={"Cache-Control": "max-age=86400"})
            try:
                return picture(image.read_bytes(), mime)
            except OSError:
                continue
    found = _remote_cover(songs, size if scale else None)
    if found:
        return picture(*found)
    return Response(placeholder_png(key, min(max(size, 16), 1024)), media_type="image/png",
                    headers={"Cache-Control": "max-age=3600"})


def _remote_cover(songs: list[Track], size: int | None) -> tuple[bytes, str] | None:
    """(picture, media type) of the first of `songs` from another server that has a cover there;
    None when none has, there is no secret to ask with, or the server fails (a server that cannot
    be reached is not asked again for the next song)."""
    for t in [t for t in songs if t.remote_id is not None][:MAX_ASKED]:
        client = relay_client(t.path)
        if client is None:
            continue
        try:
            found = client.cover(t.remote_id, size)
        except RemoteError as e:
            if e.unreachable:
                return None
            continue
        if found:
            return found
    return None
