"""The audit trail's committed events as a test reads them: every block opened, in partition order."""

from __future__ import annotations

from typing import Any

from sharebus_core.audit_trail import decode_record, events_of
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import read_topic


def trail_events(access: KafkaAccess, topic: str) -> list[dict[str, Any]]:
    messages = read_topic(access, topic, isolation="read_committed")
    return [event for m in messages for event in events_of(decode_record(m.value()))]
