"""The outcome of one (record, subscriber) decision: deliver these fields, or deny with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DenyReason(StrEnum):
    """A closed set; each value is a Prometheus label and an audit field, so it never grows per record."""

    NO_GRANT = "no_grant"
    GRANT_EXPIRED = "grant_expired"
    GRANT_REVOKED = "grant_revoked"
    CLASS_NOT_SHARED = "class_not_shared"
    CONSUMER_NOT_SUBSCRIBED = "consumer_not_subscribed"
    # A grant the bus gave by itself (``Grant.automatic``) under a rule that no longer gives it: the class
    # is not unconditional any more, or every field it granted is sensitive now. Only the provider's
    # decision on a new application can confer it.
    AUTOMATIC_GRANT_LAPSED = "automatic_grant_lapsed"
    # Not a rule's answer: the router could not build the class's routes, so it denies everyone
    # until it can (failing closed rather than keeping routes that may no longer be true).
    ROUTES_UNAVAILABLE = "routes_unavailable"


@dataclass(frozen=True, slots=True)
class Deliver:
    consumer: str
    # The delivered fields in schema order; None means every field, unmasked (the bytes pass as published).
    fields: tuple[str, ...] | None = None
    masked: frozenset[str] = frozenset()
    grant_id: str | None = None


@dataclass(frozen=True, slots=True)
class Deny:
    consumer: str
    reason: DenyReason
    grant_id: str | None = None


Decision = Deliver | Deny
