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
from sharebus_core.control_log import ControlEventRejected, append_signed, log_once, open_event, read_verified
from sharebus_core.errors import SharebusError
from sharebus_core.grants import Grant
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import RejectReason, Signer, Verifier
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


def closes_grant(rejected: ControlEventRejected) -> str | None:
    """The grant id a refused event closes: one the control plane signed but nobody can read."""
    if rejected.reason is RejectReason.INVALID_PAYLOAD and rejected.key is not None:
        return rejected.key
    return None


def read_grants(
    access: KafkaAccess,
    topic: str,
    verifier: Verifier,
    timeout_s: float = 30.0,
    on_rejected: Callable[[ControlEventRejected], None] = log_once,
) -> dict[str, Grant]:
    """Every grant's latest verified state, read from the start of the log to its current end.

    An event that cannot be verified is ignored (see ``sharebus_core.control_log``): it neither sets
    nor removes a grant. A signed event that cannot be read closes its grant (``closes_grant``).
    """
    ensure_grant_topic(access, topic)
    grants: dict[str, Grant] = {}

    def open_(msg: Message) -> Grant | ControlEventRejected:
        opened = open_grant(verifier, msg)
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


def write_grant(access: KafkaAccess, topic: str, grant: Grant, signer: Signer) -> None:
    """Appends a grant's new state, signed, and returns once Kafka has acknowledged it."""
    try:
        append_signed(access, topic, grant.grant_id, grant.model_dump_json().encode(), signer)
    except CompactedLogError as exc:
        raise GrantLogError(str(exc)) from exc


class GrantFollower(LogFollower):
    """Follows the grants topic in a thread and calls ``on_grant`` for every verified event, in log order,
    ``on_rejected`` for every other one, and also ``on_closed(grant_id)`` for a signed one that
    cannot be read (the reader must then stop honouring that grant).

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
        def on_record(msg: Message) -> None:
            opened = open_grant(verifier, msg)
            if isinstance(opened, ControlEventRejected):
                closed = closes_grant(opened)
                if closed is not None and on_closed is not None:
                    on_closed(closed)
                on_rejected(opened)
            else:
                on_grant(opened)

        super().__init__(access, topic, on_record, name="grant-follower")
