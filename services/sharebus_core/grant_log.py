"""Grants as events on a compacted Kafka topic, keyed by grant id. The log is the source of truth;
every reader rebuilds its view of the grants from it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import ValidationError

from sharebus_core.compacted_log import CompactedLogError, LogFollower, append, ensure_compacted_topic
from sharebus_core.grants import Grant
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import TopicReadError, read_topic

log = logging.getLogger(__name__)


class GrantLogError(RuntimeError):
    pass


def ensure_grant_topic(access: KafkaAccess, topic: str) -> None:
    ensure_compacted_topic(access, topic)


def _decode(value: bytes | None) -> Grant | None:
    if value is None:
        return None
    try:
        return Grant.model_validate_json(value)
    except ValidationError:
        log.exception("skipping a grant event that does not parse")
        return None


def read_grants(access: KafkaAccess, topic: str, timeout_s: float = 30.0) -> dict[str, Grant]:
    """Every grant's latest state, read from the start of the log to its current end."""
    ensure_grant_topic(access, topic)
    grants: dict[str, Grant] = {}
    try:
        messages = read_topic(access, topic, timeout_s)
    except TopicReadError as exc:
        raise GrantLogError(str(exc)) from exc
    for msg in messages:
        grant = _decode(msg.value())
        if grant is None:
            grants.pop((msg.key() or b"").decode(), None)
        else:
            grants[grant.grant_id] = grant
    return grants


def write_grant(access: KafkaAccess, topic: str, grant: Grant) -> None:
    """Appends a grant's new state and returns once Kafka has acknowledged it."""
    try:
        append(access, topic, grant.grant_id, grant.model_dump_json().encode())
    except CompactedLogError as exc:
        raise GrantLogError(str(exc)) from exc


class GrantFollower(LogFollower):
    """Follows the grants topic in a thread and calls ``on_grant`` for every event, in log order.

    ``caught_up`` is set once the log has been read up to its end as of start-up, so a service can
    refuse to be ready before it knows every grant.
    """

    def __init__(self, access: KafkaAccess, topic: str, on_grant: Callable[[Grant], None]) -> None:
        def on_record(_key: bytes | None, value: bytes | None) -> None:
            grant = _decode(value)
            if grant is not None:
                on_grant(grant)

        super().__init__(access, topic, on_record, name="grant-follower")
