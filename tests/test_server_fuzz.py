"""Property-based fuzz of every endpoint from the app's own OpenAPI schema (schemathesis):
whatever a generated request holds, the server never answers 5xx. The index POST is fuzzed
too: over an unchanged library a run only rescans, and a second one while it goes is a 409.

    pytest -s tests/test_server_fuzz.py   prints requests and failures per endpoint

(Driven through hypothesis directly: schemathesis' pytest plugin does not run under pytest 9.)
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from songspace.server import create_app

EXAMPLES = 20  # per endpoint and pass; the whole fuzz stays well under a minute on the demo library
REAL_ID = 1  # a track of the demo library: the third pass goes past the 404 into the recommenders


def passes(operation):
    """(name, strategy): schema-valid requests, invalid ones, and valid ones about a real track."""
    yield "valid", operation.as_strategy(GenerationMode.POSITIVE)
    yield "invalid", operation.as_strategy(GenerationMode.NEGATIVE)
    names = {p.name for p in operation.iter_parameters()}
    if "track_id" in names:
        yield "real id", operation.as_strategy(path_parameters={"track_id": REAL_ID})
    elif "a" in names:
        yield "real id", operation.as_strategy(query={"a": REAL_ID})


@pytest.fixture(scope="module")
def app(_indexed_demo, tmp_path_factory):
    app = create_app(shutil.copytree(_indexed_demo, tmp_path_factory.mktemp("fuzz") / "library"), index_workers=0)
    yield app
    app.state.index_job.join(120)


def on_loopback(app):
    """The app as reached at 127.0.0.1: schemathesis sends `Host: testserver`, which a tokenless
    server refuses (a name that is not loopback: DNS rebinding)."""

    async def asgi(scope, receive, send):
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"] + [(b"host", b"127.0.0.1")]
            scope = {**scope, "headers": headers}
        await app(scope, receive, send)

    return asgi


@pytest.mark.slow
def test_no_server_errors(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", on_loopback(app))
    operations = [result.ok() for result in schema.get_all_operations()]
    routes = {(method, path) for path, methods in app.openapi()["paths"].items() for method in methods}
    assert len(routes) > 20 and {(o.method.lower(), o.path) for o in operations} == routes  # every route is fuzzed
    requests: Counter = Counter()
    failures: dict[str, str] = {}
    for operation in operations:
        for kind, strategy in passes(operation):
            name = f"{operation.method.upper()} {operation.path} ({kind})"

            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def fuzz(case):
                requests[name] += 1
                case.call_and_validate(checks=[not_a_server_error])

            try:
                fuzz()
            except Unsatisfiable:
                pass  # no invalid request exists (no parameters, or a free string): nothing to send
            except Exception as e:  # hypothesis re-raises the shrunk failing example
                failures[name] = f"{type(e).__name__}: {e}"[:2000]
    print(f"\nfuzz: {sum(requests.values())} requests, {len(failures)} failing passes, {len(operations)} endpoints")
    for name in sorted(requests):
        print(f"  {requests[name]:4d} requests  {'FAIL' if name in failures else 'ok  '}  {name}")
    assert not failures, "\n\n".join(f"{name}:\n{why}" for name, why in failures.items())
