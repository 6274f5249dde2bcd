"""Asking for a backfill: checked against the catalogue and the grants as they are now, then logged."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Mapping

from sharebus_core.backfill_log import BackfillEvent, BackfillState, latest_events, write_event
from sharebus_core.catalogue import Catalogue
from sharebus_core.grant_log import read_grants
from sharebus_core.grants import Grant
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import Verifier
from sharebus_core.topics import TopicNames
from sharebus_rules import Deliver, plan_routes
from sharebus_rules.grant_workflow import GrantRefused


def request_backfill(
    catalogue: Catalogue,
    access: KafkaAccess,
    topics: TopicNames,
    department: str,
    system: str,
    data_class: str,
    *,
    verifier: Verifier,
    grants_now: Mapping[str, Grant] | None = None,
) -> BackfillEvent:
    """Logs a request for ``system``'s backfill of ``data_class``; refuses what the rules would not deliver.

    ``grants_now``: every grant's latest state from a followed view (the gateway's); else the log is read whole."""
    if catalogue.department_of_system.get(system) != department:
        raise GrantRefused(f"{department} has no system {system!r}")
    entry = catalogue.data_class(data_class)
    grants: dict[str, list[Grant]] = defaultdict(list)
    latest = grants_now if grants_now is not None else read_grants(access, topics.grants, verifier)
    for grant in latest.values():
        if grant.data_class == data_class:
            grants[grant.consumer].append(grant)
    plan = plan_routes(catalogue, data_class, grants, dt.datetime.now(dt.UTC))
    if not any(isinstance(d, Deliver) and d.consumer == system for d in plan.deliveries):
        reason = next((d.reason.value for d in plan.denials if d.consumer == system), "not subscribed")
        raise GrantRefused(f"{system} is not entitled to {entry.code} now ({reason}); apply for a grant first")
    event = BackfillEvent(
        request_id=f"bf-{uuid.uuid4().hex[:12]}",
        state=BackfillState.REQUESTED,
        consumer=system,
        data_class=data_class,
        requested_by=department,
        at=dt.datetime.now(dt.UTC),
    )
    write_event(access, topics.backfill, event)
    return event


def backfills_of(access: KafkaAccess, topics: TopicNames, department: str, catalogue: Catalogue) -> list[BackfillEvent]:
    """The department's requests (its systems' backfills), latest state each."""
    return [
        event
        for event in latest_events(access, topics.backfill).values()
        if catalogue.department_of_system.get(event.consumer) == department
    ]
