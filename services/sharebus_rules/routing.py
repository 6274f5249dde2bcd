"""Who receives a data class's records: one pure decision per (data class, subscriber, grant, time)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sharebus_core.catalogue import AvroSchema, Catalogue, DataClass, ShareType, Subscription
from sharebus_core.grants import Grant, GrantState
from sharebus_core.topics import PUBLIC_CONSUMER
from sharebus_rules.decision import Decision, Deliver, Deny, DenyReason
from sharebus_rules.open_data import is_open, open_fields
from sharebus_rules.projection import derive_schema

_STATE_DENIALS = {
    GrantState.REVOKED: DenyReason.GRANT_REVOKED,
    GrantState.EXPIRED: DenyReason.GRANT_EXPIRED,
    GrantState.APPLIED: DenyReason.NO_GRANT,
    GrantState.REJECTED: DenyReason.NO_GRANT,
    # Never a recorded state (grants.DERIVED_STATES): here so that every state has its reason.
    GrantState.LAPSED: DenyReason.AUTOMATIC_GRANT_LAPSED,
}


def automatic_lapsed(grant: Grant, entry: DataClass) -> bool:
    """An automatic grant (the bus's own, ``Grant.automatic``) whose class is no longer unconditional: the
    rule that gave it gives nothing any more, and the provider never decided on it."""
    return grant.automatic and entry.share_type is not ShareType.UNCONDITIONAL


def select_grant(grants: Sequence[Grant], now: dt.datetime, entry: DataClass | None = None) -> Grant | None:
    """The grant that governs a (consumer, class) pair: the latest active one, else the latest of any state
    (so that a revoked or expired grant gives its own reason).

    With ``entry``, an automatic grant that lapsed (``lapsed``) does not count as active: a grant the
    provider approved, even an older one, governs before it."""
    if not grants:
        return None
    active = [g for g in grants if g.is_active(now) and not (entry is not None and lapsed(g, entry))]
    pool = active or list(grants)
    return max(pool, key=lambda g: (g.decided_at or g.applied_at, g.applied_at))


def _deliver(
    consumer: str, schema: AvroSchema, fields: Sequence[str], masked: Sequence[str], grant_id: str | None
) -> Deliver:
    ordered = tuple(f for f in schema.field_names if f in fields)
    if ordered == schema.field_names and not masked:
        return Deliver(consumer, None, frozenset(), grant_id)
    return Deliver(consumer, ordered, frozenset(masked), grant_id)


def _conferred(entry: DataClass, grant: Grant) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The fields and masking an approved grant on an unconditional class confers now; None if nothing.

    A grant the provider approved confers what it records. An automatic one confers only what the class's
    rule gives by itself today: its fields that are not sensitive now (the catalogue may have marked one
    so since the grant was given; a masked field is no exception, the rule gives none of them).
    """
    if not grant.automatic:
        return grant.fields, grant.masked_fields
    fields = tuple(f for f in grant.fields if f not in entry.sensitive_fields)
    if not fields:
        return None
    return fields, tuple(f for f in grant.masked_fields if f in fields)


def lapsed(grant: Grant, entry: DataClass | None) -> bool:
    """An automatic grant that confers nothing under the catalogue of now (``entry``: its class's entry,
    None once the class left the catalogue): the class is gone or no longer unconditional
    (``automatic_lapsed``), or every field it granted is sensitive now (``_conferred``). ``decide``
    delivers nothing under such a grant."""
    if not grant.automatic:
        return False
    return entry is None or automatic_lapsed(grant, entry) or _conferred(entry, grant) is None


def shown_state(grant: Grant, catalogue: Catalogue | DataClass | None, now: dt.datetime) -> GrantState:
    """The state every reader shows a grant in: ``effective_state``, except that an approved, unexpired grant
    that ``lapsed`` is ``LAPSED``, so that nobody is shown "approved" while the router delivers nothing
    under it. ``catalogue``: the catalogue of now, or the grant's class's entry in it (None: not in it).

    A grant the provider approved keeps its state even when its class left the catalogue: the provider's
    decision stands (and may be revoked) should the class come back, as the router would honour it."""
    state = grant.effective_state(now)
    if state is not GrantState.APPROVED:
        return state
    entry = catalogue.data_classes.get(grant.data_class) if isinstance(catalogue, Catalogue) else catalogue
    return GrantState.LAPSED if lapsed(grant, entry) else state


def decide(
    entry: DataClass, schema: AvroSchema, subscription: Subscription | None, grant: Grant | None, now: dt.datetime
) -> Decision:
    """The sharing decision for one subscriber of one class at ``now``.

    The result does not depend on a record's content, which is why the router computes it once per
    (class, consumer) and recomputes it only when a grant changes or expires.
    """
    consumer = subscription.system if subscription is not None else grant.consumer if grant is not None else ""
    grant_id = grant.grant_id if grant is not None else None
    if subscription is not None and subscription.data_class != entry.code:
        return Deny(consumer, DenyReason.CONSUMER_NOT_SUBSCRIBED, grant_id)
    if entry.share_type is ShareType.NONE:
        return Deny(consumer, DenyReason.CLASS_NOT_SHARED, grant_id)
    state = grant.effective_state(now) if grant is not None else None
    if grant is not None and state is GrantState.APPROVED and automatic_lapsed(grant, entry):
        return Deny(consumer, DenyReason.AUTOMATIC_GRANT_LAPSED, grant_id)
    if entry.share_type is ShareType.UNCONDITIONAL:
        conferred = _conferred(entry, grant) if grant is not None and state is GrantState.APPROVED else None
        if grant is not None and conferred is not None:
            fields, masked = conferred
            decision: Decision = _deliver(consumer, schema, fields, masked, grant_id)
        elif subscription is not None:
            # The catalogue subscription delivers, not the grant (an application rejected, or a grant
            # revoked or expired: it takes back only the fields it added): the delivery must neither
            # name that grant nor end at its validity.
            open_fields = [f for f in schema.field_names if f not in entry.sensitive_fields]
            decision = _deliver(consumer, schema, open_fields, (), None)
        elif grant is not None and state is GrantState.APPROVED:
            return Deny(consumer, DenyReason.AUTOMATIC_GRANT_LAPSED, grant_id)
        elif state in (GrantState.REVOKED, GrantState.EXPIRED):
            return Deny(consumer, _STATE_DENIALS[state], grant_id)
        else:
            return Deny(consumer, DenyReason.CONSUMER_NOT_SUBSCRIBED, grant_id)
    elif grant is None or state is None:
        return Deny(consumer, DenyReason.NO_GRANT)
    elif state is not GrantState.APPROVED:
        return Deny(consumer, _STATE_DENIALS[state], grant_id)
    else:
        decision = _deliver(consumer, schema, grant.fields, grant.masked_fields, grant_id)
    return decision


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """Every decision for one class, split so the per-record loop does no branching on rules."""

    data_class: DataClass
    deliveries: tuple[Deliver, ...]
    denials: tuple[Deny, ...]
    # When the plan must be made again because a grant it relies on expires.
    valid_until: dt.datetime | None = None


def public_delivery(entry: DataClass, schema: AvroSchema) -> Deliver | None:
    """The delivery to the public of an open or conditionally open class: never a sensitive field.

    ``is_open`` decides, as on every other open-data path.
    """
    if not is_open(entry):
        return None
    return _deliver(PUBLIC_CONSUMER, schema, open_fields(entry, schema.field_names), (), None)


def plan_routes(
    catalogue: Catalogue,
    class_code: str,
    grants: Mapping[str, Sequence[Grant]] | None = None,
    now: dt.datetime | None = None,
    *,
    public: bool = False,
) -> RoutePlan:
    """Decisions for every subscriber of a class and every consumer holding a grant on it.

    ``grants`` maps consumer system -> that consumer's grants on this class. With ``public``, an open
    class is also delivered to the public (``PUBLIC_CONSUMER``), never with a sensitive field.
    """
    now = now or dt.datetime.now(dt.UTC)
    grants = grants or {}
    entry = catalogue.data_class(class_code)
    schema = catalogue.schema(class_code)
    subscriptions = {s.system: s for s in catalogue.subscriptions_of(class_code)}
    consumers = list(subscriptions) + sorted(c for c in grants if c not in subscriptions)
    decisions = []
    expiries = []
    for consumer in consumers:
        grant = select_grant(grants.get(consumer, ()), now, entry)
        decisions.append(decide(entry, schema, subscriptions.get(consumer), grant, now))
        if grant is not None and grant.valid_until is not None and grant.is_active(now):
            expiries.append(grant.valid_until)
    opened = public_delivery(entry, schema) if public else None
    if opened is not None:
        decisions.append(opened)
    return RoutePlan(
        data_class=entry,
        deliveries=tuple(d for d in decisions if isinstance(d, Deliver)),
        denials=tuple(d for d in decisions if isinstance(d, Deny)),
        valid_until=min(expiries) if expiries else None,
    )


def projection_schema(
    catalogue: Catalogue, class_code: str, fields: Sequence[str], masked: Collection[str]
) -> dict[str, Any]:
    """The Avro schema a consumer receives a class in: its granted fields, masked ones as strings."""
    return derive_schema(json.loads(catalogue.schema(class_code).text), fields, masked)


def class_projections(
    catalogue: Catalogue, class_code: str, now: dt.datetime, *, public: bool = False
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(consumer, schema) of each projection of a class that the catalogue alone decides, with no grant:
    what provisioning registers ahead of the router, so that its start does not (sharebus_provision.schemas)."""
    for delivery in plan_routes(catalogue, class_code, {}, now, public=public).deliveries:
        # No fields: the published bytes pass as they are, in the class's own schema.
        if delivery.fields is not None:
            yield delivery.consumer, projection_schema(catalogue, class_code, delivery.fields, delivery.masked)
