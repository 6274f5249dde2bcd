"""The registry's door: every request but the readiness probe shows a credential, then a permission.

Refusals use Confluent's error shape: 401 ``{"error_code": 401, "message": "Unauthorized"}`` with
``WWW-Authenticate: Basic``, and 403 ``{"error_code": 40301, "message": "User is denied operation
<op> on <resource>"}``. A read naming a subject the caller may not see is 404 ``40401`` (subject not
found), whether or not the subject exists; the handlers leave such subjects out of their listings.
``GET /`` stays open: ``sharebus run``, the tests and provisioning poll it for readiness, and it
answers ``{}``, which tells nothing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from sharebus_registry.api_support import VISIBLE, Handler, error_response, http_status
from sharebus_registry.auth import (
    Authenticator,
    RegistryPolicy,
    TooManyAttempts,
    VerifierUnavailable,
    operation_of,
    parse_basic,
)
from sharebus_registry.errors import SubjectNotFound

log = logging.getLogger("sharebus_registry.auth")

OPEN_PATHS = frozenset({"/"})
REALM = 'Basic realm="sharebus-registry", charset="UTF-8"'


def unauthorized() -> web.Response:
    response = error_response(401, 401, "Unauthorized")
    response.headers["WWW-Authenticate"] = REALM
    return response


def _route_of(request: web.Request) -> str | None:
    info = request.match_info.route.resource
    return info.canonical if info is not None else None


@dataclass(frozen=True)
class RegistryGuard:
    authenticator: Authenticator
    policy: RegistryPolicy

    async def refusal(self, request: web.Request) -> web.Response | None:
        """The response that refuses ``request``, or None when it may go on."""
        if request.method in ("GET", "HEAD") and request.path in OPEN_PATHS:
            return None
        credentials = parse_basic(request.headers.get("Authorization"))
        if credentials is None:
            return unauthorized()
        try:
            good = await self.authenticator.authenticate(credentials)
        except TooManyAttempts as exc:
            response = error_response(429, 42901, "Too many authentication attempts for this user; retry later")
            response.headers["Retry-After"] = str(math.ceil(exc.retry_after_s))
            return response
        except VerifierUnavailable:
            return error_response(503, 50003, "The credential cannot be verified now; retry later")
        if not good:
            log.info("refused a credential for %r on %s %s", credentials.username, request.method, request.path)
            return unauthorized()
        return self._permission(request, credentials.username)

    def _permission(self, request: web.Request, username: str) -> web.Response | None:
        subject = request.match_info.get("subject")
        operation = operation_of(request.method, _route_of(request), subject)
        if not self.policy.allows(username, operation):
            log.info("denied %s on %s to %r", operation.name, operation.resource, username)
            return error_response(403, 40301, f"User is denied operation {operation.name} on {operation.resource}")
        visible = request[VISIBLE] = self.policy.subjects_of(username)
        if subject is not None and not visible(subject):
            # Decided by the name alone, never by the store: the answer is the same whether it exists.
            hidden = SubjectNotFound(subject)
            return error_response(http_status(hidden), hidden.error_code, hidden.message)
        return None


def guard_middleware(guard: RegistryGuard) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = await guard.refusal(request)
        return refusal if refusal is not None else await handler(request)

    return check


__all__ = ["OPEN_PATHS", "RegistryGuard", "guard_middleware", "unauthorized"]
