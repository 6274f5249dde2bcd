"""The portal's refusals and failed sign-ins as audit facts, through the gateway's facts path.

Same shape as the gateway's (``sharebus_gateway.audit``): decision ``forbidden``, mode ``portal``, so
the auditor chains them into the audit trail and ``sharebus audit verify`` covers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sharebus_core.audit_fact import AuditFact, FactDecision


def portal_fact(
    *,
    action: str,
    username: str,
    department: str | None,
    method: str,
    path: str,
    reason: str,
    client: str | None = None,
    data_class: str | None = None,
    provider: str | None = None,
    grant_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> AuditFact:
    return AuditFact(
        mode="portal",
        source={"portal": {"method": method, "path": path, "username": username, "client": client}},
        decisions=(FactDecision(consumer=None, decision="forbidden", reason=reason, grant_id=grant_id),),
        partition_key=f"portal:{department or username}",
        provider=provider,
        data_class=data_class,
        extra={"action": action, "caller_department": department, "portal_user": username, **(extra or {})},
    )
