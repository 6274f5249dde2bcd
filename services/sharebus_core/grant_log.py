"""Grants as events on a compacted Kafka topic, keyed by grant id. The log is the source of truth;
every reader rebuilds its view of the grants from it, from the events the control plane signed.

An event the control plane signed but that a reader cannot read as a grant (a payload it does not
parse, a time without a zone, a field from a newer version) is the control plane's latest word on
that grant, and nobody can tell what it says: it may be a revocation. Every reader therefore
**closes** that grant (``closes_grant``): it is dropped from the reader's view, so nothing it
allowed stays in force, until a later readable event of the same grant. An event that is not the
control plane's (unsigned, badly signed, a replay) stays ignored, as ``control_log`` explains: it
can neither grant nor take away.
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Message

from sharebus_core.compacted_log import CompactedLogError, LogFollower, ensure_compacted_topic
from sharebus_core.control_log import (
    ControlEventRejected,
    append_signed,
    closed_by,
    log_once,
    open_event,
    read_verified,
    rejected_event,
)
from sharebus_core.errors import SharebusError
from sharebus_core.grants import Grant, GrantState
from sharebus_core.kafka import KafkaAccess
from sharebus_core.produce import Written
from sharebus_core.signing import Rejected, RejectReason, Signer, Verifier
from sharebus_core.topic_reader import TopicReadError


class GrantLogError(SharebusError, RuntimeError):
    pass


def ensure_grant_topic(access: KafkaAccess, topic: str) -> None:
    ensure_compacted_topic(access, topic)


def decode_grant(payload: bytes, record_key: str | None) -> Grant:
    """A verified payload as a grant; ``ValueError`` if it is not one, or not the grant of its record key."""
    grant = Grant.model_validate_json(payload)
    if grant.grant_id != record_key:
        raise ValueError(f"grant {grant.grant_id!r} written under key {record_key!r}")
    return grant


def open_grant(verifier: Verifier, msg: Message) -> Grant | ControlEventRejected:
    return open_event(verifier, msg, decode_grant, subject_field="consumer")


# The workflow only moves forward (sharebus_rules.grant_workflow): applied -> approved | rejected,
# approved -> revoked; rejected and revoked are final.
_NEXT_STATES: dict[GrantState, frozenset[GrantState]] = {
    GrantState.APPLIED: frozenset({GrantState.APPROVED, GrantState.REJECTED}),
    GrantState.APPROVED: frozenset({GrantState.REVOKED}),
}


class GrantHistory:
    """What one reader has taken of each grant, so that only a step forward of its workflow changes it.

    The signature and the broker's append time refuse a forgery and an old replay, but a signed
    event copied back onto the log within ``SHAREBUS_CONTROL_MAX_DELAY_S`` still verifies: an
    "approved" replayed after the real "revoked" would bring the grant back. So after the first
    event of a grant a reader takes, a later one must be a step forward, or the same event again (a
    no-op); anything else is refused as ``stale``. That also settles two decisions written at once
    (an approval appended after a rejection): the first on the log stands.
    """

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self._latest: dict[str, Grant] = {}
        # Grants closed by a signed event nobody can read: the last readable event is superseded.
        self._superseded: set[str] = set()

    def open(self, msg: Message) -> Grant | ControlEventRejected:
        opened = open_grant(self.verifier, msg)
        if isinstance(opened, ControlEventRejected):
            closed = closes_grant(opened)
            if closed is not None:
                self._superseded.add(closed)
            return opened
        before = self._latest.get(opened.grant_id)
        if before is not None and not self._follows(before, opened):
            detail = (
                f"grant {opened.grant_id} is {before.state.value} and this event makes it {opened.state.value}: "
                "not a step forward of its workflow (a replayed or conflicting event)"
            )
            return rejected_event(msg, Rejected(RejectReason.STALE, detail), subject_field="consumer")
        self._latest[opened.grant_id] = opened
        self._superseded.discard(opened.grant_id)
        return opened

    def _follows(self, before: Grant, after: Grant) -> bool:
        if after == before:
            # The same event again changes nothing, unless an unreadable newer one superseded it.
            return after.grant_id not in self._superseded
        return after.state in _NEXT_STATES.get(before.state, frozenset())


def closes_grant(rejected: ControlEventRejected) -> str | None:
    """The grant id a refused event closes: one the control plane signed but nobody can read."""
    return closed_by(rejected)


def read_grants(
    access: KafkaAccess,
    topic: str,
    verifier: Verifier,
    timeout_s: float = 30.0,
    on_rejected: Callable[[ControlEventRejected], None] = log_once,
) -> dict[str, Grant]:
    """Every grant's latest verified state, read from the start of the log to its current end.

    An event that cannot be verified is ignored (see ``sharebus_core.control_log``): it neither sets
    nor removes a grant, and neither does one that is not a step forward (``GrantHistory``). A
    signed event that cannot be read closes its grant (``closes_grant``).
    """
    ensure_grant_topic(access, topic)
    grants: dict[str, Grant] = {}
    history = GrantHistory(verifier)

    def open_(msg: Message) -> Grant | ControlEventRejected:
        opened = history.open(msg)
        if isinstance(opened, ControlEventRejected):
            closed = closes_grant(opened)
            if closed is not None:
                grants.pop(closed, None)
        else:
            grants[opened.grant_id] = opened
        return opened

    try:
        read_verified(access, topic, open_, on_rejected, timeout_s)
    except TopicReadError as exc:
        raise GrantLogError(str(exc)) from exc
    return grants


def write_grant(access: KafkaAccess, topic: str, grant: Grant, signer: Signer) -> Written:
    """Appends a grant's new state, signed, and returns where, once Kafka has acknowledged it."""
    try:
        return append_signed(access, topic, grant.grant_id, grant.model_dump_json().encode(), signer)
    except CompactedLogError as exc:
        raise GrantLogError(str(exc)) from exc


class GrantFollower(LogFollower):
    """Follows the grants topic in a thread and calls ``on_grant`` for every verified event, in log order,
    ``on_rejected`` for every other one, and also ``on_closed(grant_id)`` for a signed one that
    cannot be read (the reader must then stop honouring that grant).

    Only a step forward of a grant's workflow changes it (``GrantHistory``): an event that would move
    it back (a replay) goes to ``on_rejected`` as ``stale``.

    ``caught_up`` is set once the log has been read up to its end as of start-up, so a service can
    refuse to be ready before it knows every grant.
    """

    def __init__(
        self,
        access: KafkaAccess,
        topic: str,
        on_grant: Callable[[Grant], None],
        verifier: Verifier,
        on_rejected: Callable[[ControlEventRejected], None],
        on_closed: Callable[[str], None] | None = None,
    ) -> None:
        history = GrantHistory(verifier)

        def on_record(msg: Message) -> None:
            opened = history.open(msg)
            if isinstance(opened, ControlEventRejected):
                closed = closes_grant(opened)
                if closed is not None and on_closed is not None:
                    on_closed(closed)
                on_rejected(opened)
            else:
                on_grant(opened)

        super().__init__(access, topic, on_record, name="grant-follower")
