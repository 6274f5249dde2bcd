"""Refuses a request body over a set size with 413, before anything reads or parses it.

An ASGI middleware, outside everything else: a declared ``Content-Length`` over the limit is refused at
once, and any other body (chunked, or lying about its length) is counted while it is read and refused
as soon as it passes the limit. A body within the limit is held (at most the limit) and handed on.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharebus_core.errors import SharebusError


class BodyTooLarge(SharebusError):
    pass


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, on_refused: Callable[[], None] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        try:
            first = await self._read_body(receive)
        except BodyTooLarge:
            await self._refuse(send)
            return
        delivered = False

        async def replay() -> Message:
            # The body once, whole; then whatever comes next (a disconnect, for streaming responses).
            nonlocal delivered
            if not delivered:
                delivered = True
                return first
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> Message:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message  # the client left before sending it all
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                raise BodyTooLarge
            chunks.append(body)
            if not message.get("more_body", False):
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    async def _refuse(self, send: Send) -> None:
        if self.on_refused is not None:
            self.on_refused()
        detail = f"the request body is larger than {self.max_bytes} bytes, the most this gateway accepts"
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is never read, so this connection cannot serve another request.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
