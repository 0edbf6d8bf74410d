"""The `subsonic-response` envelope, written as XML (the default) or JSON (`f=json`).

A response body is built once, as plain dicts and lists, in the shape of Subsonic's JSON; the
XML follows from Subsonic's own mapping between the two: a scalar is an attribute, a dict is a
child element, a list is repeated child elements named by its key, and the key "value" is the
element's text (`<genre songCount="2">Jazz</genre>` is {"value": "Jazz", "songCount": 2}).
"""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from fastapi.responses import Response

from .. import __version__

API_VERSION = "1.16.1"
NAMESPACE = "http://subsonic.org/restapi"

# Subsonic's error codes (the ones this server can answer).
GENERIC, MISSING, WRONG_CREDENTIALS, AUTH_NOT_SUPPORTED, NOT_AUTHORIZED, NOT_FOUND = 0, 10, 40, 42, 50, 70
CONFLICTING_AUTH, INVALID_API_KEY = 43, 44  # OpenSubsonic's apiKey extension


class SubsonicError(Exception):
    """An answer with status "failed" and one of Subsonic's error codes."""

    def __init__(self, code: int, message: str):
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")


def _xml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _element(parent: ET.Element, name: str, body: dict) -> None:
    el = ET.SubElement(parent, name)
    _fill(el, body)


def _fill(el: ET.Element, body: dict) -> None:
    for key, v in body.items():
        if v is None:
            continue
        if key == "value" and not isinstance(v, (dict, list)):
            el.text = _xml_value(v)
        elif isinstance(v, dict):
            _element(el, key, v)
        elif isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    _element(el, key, item)
                else:  # a list of scalars: elements with text (e.g. an extension's versions)
                    ET.SubElement(el, key).text = _xml_value(item)
        else:
            el.set(key, _xml_value(v))


def _drop_none(v):
    if isinstance(v, dict):
        return {k: _drop_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_none(x) for x in v]
    return v


def envelope(body: dict, status: str = "ok") -> dict:
    return {"status": status, "version": API_VERSION, "type": "songspace", "serverVersion": __version__,
            "openSubsonic": True, **body}


def render(body: dict, fmt: str | None, status: str = "ok") -> Response:
    """The response for `body` (the part inside the envelope) in format `fmt` ("json" or XML)."""
    full = envelope(body, status)
    if fmt == "json":
        return Response(json.dumps({"subsonic-response": _drop_none(full)}), media_type="application/json")
    root = ET.Element("subsonic-response", xmlns=NAMESPACE)
    _fill(root, full)
    return Response(('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")).encode(),
                    media_type="application/xml")


def error(e: SubsonicError, fmt: str | None) -> Response:
    # HTTP 200, as Subsonic answers: clients read the status from the body.
    return render({"error": {"code": e.code, "message": e.message}}, fmt, status="failed")
