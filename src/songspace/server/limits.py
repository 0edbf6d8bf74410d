"""How much of a request body the server reads: counted as it arrives, not only as declared.

A `Content-Length` over the limit is refused before anything is read; a chunked body (no
length) or one that lies is cut off with 413 the moment its bytes pass the limit, so neither
memory nor temporary files (a multipart upload spills to disk) grow past it. A route lowers its
own limit with `lower_body_limit` before it reads: /rest/ reads at most a little until the
caller has proved who they are.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

LIMIT_KEY = "songspace.body_limit"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request too large: at most {_size(limit)}")



def _size(n: int) -> str:
    return f"{n // 2**20} MB" if n >= 2**20 else f"{n // 1024} KB"


def declared_length(scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def lower_body_limit(request, limit: int) -> None:
    """From now on this request's body may hold at most `limit` bytes (a lower one only)."""
    scope = request.scope
    scope[LIMIT_KEY] = min(limit, scope.get(LIMIT_KEY, limit))
    if declared_length(scope) > scope[LIMIT_KEY]:
        raise BodyTooLarge(scope[LIMIT_KEY])


class BodyLimit:
    """ASGI middleware: at most `limit` bytes of any request body."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        scope[LIMIT_KEY] = self.limit
        if declared_length(scope) > self.limit:
            return await JSONResponse({"detail": BodyTooLarge(self.limit).detail}, status_code=413)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > scope[LIMIT_KEY]:
                    # Raised inside whatever is reading (a form parser, an upload's copy): the
                    # route's exception handling answers 413, and nothing more is read.
                    raise BodyTooLarge(scope[LIMIT_KEY])
            return message

        started = False

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as e:  # read where no route turned it into an answer
            if started:
                raise
            await JSONResponse({"detail": e.detail}, status_code=413)(scope, receive, send)
