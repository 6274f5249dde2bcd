"""Request bodies read as JSON (RFC 8259), not as Python's json module reads them.

Python's ``json.loads`` takes the non-standard literals ``NaN``, ``Infinity`` and ``-Infinity``, so a
body with ``"registered_capital": NaN`` would pass validation as a double and be published: subscribers
whose JSON parsers follow the standard could then not read what the bus handed them. Every gateway route
is a ``StrictJsonRoute``, which refuses such a body with a 400 that names the literal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute


def _refuse(literal: str) -> NoReturn:
    # HTTPException passes through FastAPI's body reading as it is (any other error becomes a vague 400).
    raise HTTPException(
        status.HTTP_400_BAD_REQUEST, f"the body is not valid JSON: {literal} is not a JSON number (RFC 8259)"
    )


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_constant=_refuse)
        return self._json


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
