"""Bearer API keys, and the 403 path: every refusal is counted and audited before it is answered."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from sharebus_gateway.audit import forbidden_fact
from sharebus_gateway.keys import ApiKey, KeyKind
from sharebus_gateway.state import Gateway, gateway

_bearer = HTTPBearer(auto_error=False, description="An API key from `sharebus apikey issue --system SYS`")


@dataclass(frozen=True, slots=True)
class Caller:
    system: str
    department: str
    key_id: str


def unauthenticated(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def authenticate(connection: HTTPConnection, token: str | None) -> Caller:
    """The caller behind the token; every authenticated request also takes one of its key's rate tokens."""
    if not token:
        raise unauthenticated("an API key is required: Authorization: Bearer <key>")
    gw = gateway(connection)
    key = gw.keys.authenticate(token, KeyKind.SYSTEM)
    if key is None:
        raise unauthenticated("the API key is not valid, or has been revoked")
    wait_s = gw.rate_limits.take(key.key_id)
    if wait_s > 0:
        gw.metrics.throttled.labels("rate").inc()
        limits = gw.rate_limits
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many requests for this API key: at most {limits.rate_per_s:g} a second on average, "
            f"{limits.burst} at once; retry after the Retry-After seconds",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )
    return current_caller(gw, connection, key)


def current_caller(gw: Gateway, connection: HTTPConnection, key: ApiKey) -> Caller:
    """The key's caller, as the catalogue has it now.

    A key names the system and department it was issued to, and keys outlive catalogue changes: a key
    of a system since removed, or moved to another department, must not keep acting as the old
    department. Refused after the rate limit, so a stale key cannot flood the audit trail faster.
    """
    department = gw.catalogue.department_of_system.get(key.system)
    if department == key.department:
        return Caller(key.system, department, key.key_id)
    if department is None:
        reason = "system_not_in_catalogue"
        detail = f"the API key's system {key.system} is no longer in the catalogue; its keys no longer work"
    else:
        reason = "department_changed"
        detail = (
            f"the API key was issued to {key.system} of department {key.department}, and the catalogue now "
            f"puts {key.system} in {department}: issue a new key for it (`sharebus apikey issue --system "
            f"{key.system}`)"
        )
    gw.metrics.stale_keys.labels(reason).inc()
    gw.audit.write(
        forbidden_fact(
            action="authenticate",
            system=key.system,
            department=key.department,
            key_id=key.key_id,
            method=connection.scope.get("method", "WEBSOCKET"),
            path=connection.url.path,
            reason=reason,
        )
    )
    raise unauthenticated(detail)


def bearer_token(connection: HTTPConnection) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def caller(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Caller:
    return authenticate(request, credentials.credentials if credentials is not None else None)


CallerDep = Annotated[Caller, Depends(caller)]


def forbid(
    gw: Gateway,
    who: Caller,
    connection: HTTPConnection,
    *,
    action: str,
    reason: str,
    detail: str,
    data_class: str | None = None,
    provider: str | None = None,
    grant_id: str | None = None,
) -> HTTPException:
    """Audits a refusal and returns the 403 to raise. Blocks until the audit fact is in Kafka.

    ``detail`` must only name what the caller may see: its own system, its department, and what it sent.
    """
    gw.metrics.forbidden.labels(action).inc()
    gw.audit.write(
        forbidden_fact(
            action=action,
            system=who.system,
            department=who.department,
            key_id=who.key_id,
            method=connection.scope.get("method", "WEBSOCKET"),
            path=connection.url.path,
            reason=reason,
            data_class=data_class,
            provider=provider,
            grant_id=grant_id,
        )
    )
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)
