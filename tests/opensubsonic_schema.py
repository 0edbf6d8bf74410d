"""Validation of Subsonic JSON answers against the OpenSubsonic specification's own schemas
(tests/opensubsonic-spec/: its OpenAPI files, kept unchanged with their licence).

`validate(call, body)` follows the specification as written: the call's endpoint file
(openapi/endpoints/CALL.json), its 200 response (an inline one, or a shared one in
openapi/responses/), and that response's JSON schema, whose `$ref`s name other files relative
to the file they are in; `referencing` resolves them as file URIs.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SPEC = Path(__file__).parent / "opensubsonic-spec" / "openapi"


def _retrieve(uri: str) -> Resource:
    return Resource.from_contents(json.loads(Path(unquote(urlparse(uri).path)).read_text()),
                                  default_specification=DRAFT7)


REGISTRY = Registry(retrieve=_retrieve)


def has_json(call: str) -> bool:
    """Does the specification describe a JSON answer for `call` (not a binary one)?"""
    return "application/json" in _response(call)[0].get("content", {})


@cache
def _response(call: str) -> tuple[dict, Path]:
    endpoint = SPEC / "endpoints" / f"{call}.json"
    response = json.loads(endpoint.read_text())["get"]["responses"]["200"]
    base = endpoint.parent
    if "$ref" in response:  # a shared response (EmptySubsonicResponse, BinaryResponse)
        path = (base / response["$ref"]).resolve()
        response, base = json.loads(path.read_text()), path.parent
    return response, base


def schema_uri(call: str) -> str:
    response, base = _response(call)
    return (base / response["content"]["application/json"]["schema"]["$ref"]).resolve().as_uri()


@cache
def _validator(call: str) -> Draft7Validator:
    return Draft7Validator({"$ref": schema_uri(call)}, registry=REGISTRY)


def errors(call: str, body: dict) -> list[str]:
    """What in `body` (a whole JSON answer, {"subsonic-response": ...}) breaks the specification's
    schema for `call`: one line per error, with where it is; [] when it is valid."""
    found = []
    for e in _validator(call).iter_errors(body):
        # oneOf (success or failure): say which branch failed how, not only that none matched
        causes = [c for c in (e.context or []) if c.validator != "enum"] or list(e.context or [])
        detail = "; ".join(f"{'/'.join(map(str, c.absolute_path))}: {c.message[:200]}" for c in causes[:5])
        found.append(f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]} {detail}".strip())
    return found
