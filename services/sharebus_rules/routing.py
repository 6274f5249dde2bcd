"""Who receives a data class's records: one pure decision per (data class, subscription)."""

from __future__ import annotations

from dataclasses import dataclass

from sharebus_core.catalogue import Catalogue, DataClass, ShareType, Subscription, UpdateMode
from sharebus_rules.decision import Decision, Deliver, Deny, DenyReason


def decide(entry: DataClass, subscription: Subscription) -> Decision:
    """The sharing decision for one subscriber of one class.

    Conditional classes need an approved grant; no grant can exist yet, so they are denied with
    ``no_grant``. The result does not depend on the record's content, which is why the router can
    compute it once per class and reuse it for every record.
    """
    consumer = subscription.system
    if subscription.data_class != entry.code:
        return Deny(consumer, DenyReason.CONSUMER_NOT_SUBSCRIBED)
    if entry.share_type is ShareType.NONE:
        return Deny(consumer, DenyReason.CLASS_NOT_SHARED)
    if entry.share_type is ShareType.CONDITIONAL:
        return Deny(consumer, DenyReason.NO_GRANT)
    if entry.update.mode is UpdateMode.PERIODIC:
        return Deny(consumer, DenyReason.PERIODIC_RELEASE_PENDING)
    return Deliver(consumer)


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """Every decision for one class, split so the per-record loop does no branching on rules."""

    data_class: DataClass
    deliveries: tuple[Deliver, ...]
    denials: tuple[Deny, ...]


def plan_routes(catalogue: Catalogue, class_code: str) -> RoutePlan:
    entry = catalogue.data_class(class_code)
    decisions = [decide(entry, sub) for sub in catalogue.subscriptions_of(class_code)]
    return RoutePlan(
        data_class=entry,
        deliveries=tuple(d for d in decisions if isinstance(d, Deliver)),
        denials=tuple(d for d in decisions if isinstance(d, Deny)),
    )
