"""Reading the bus's durable records for a report: the audit trail, the grants and the disputes.

The audit trail is kept forever and may be very long, so it is streamed, never held: each partition
is read from the first record appended at or after the period's start (less a margin, below) up to
its end, and every event is handed to a callback. Offsets are found by time
(``offsets_for_times``), which is exact enough because an audit event is appended after the
decision it records: its broker timestamp is never earlier than its ``time``, except by the clock
difference of the router's and the auditor's hosts, which the margin covers. Which events count is
decided by their own ``time``, not by where reading began.

Committed records only: the auditor writes in transactions, and an aborted one is not the trail.
A topic that does not exist yet holds nothing (a new bus); any other failure to read to the end is
an error (``ReportUnavailable``), never an empty report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from sharebus_core.audit_trail import events_of
from sharebus_core.control_log import ControlEventRejected, log_once, read_verified
from sharebus_core.errors import SharebusError
from sharebus_core.grant_log import open_grant
from sharebus_core.grants import Grant
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import Verifier
from sharebus_core.topic_reader import TopicMissing, TopicReadError

# How much earlier than the period's start reading begins (see the module's docstring).
SEEK_MARGIN = dt.timedelta(days=1)
BATCH = 1000

OnEvent = Callable[[Mapping[str, Any], int], None]


class ReportUnavailable(SharebusError, RuntimeError):
    """A record the report needs could not be read to its end: no report rather than a wrong one."""


def each_event(on_event: OnEvent) -> OnEvent:
    """``on_event`` for every audit event of a trail record (a block holds many: ``sharebus_core.audit_trail``)."""

    def on_record(record: Mapping[str, Any], partition: int) -> None:
        for event in events_of(record):
            on_event(event, partition)

    return on_record


def _decode(msg: Message) -> Mapping[str, Any] | None:
    try:
        value = json.loads(msg.value() or b"")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _found_offsets(consumer: Consumer, topic: str, since: dt.datetime | None) -> list[TopicPartition]:
    """Per partition, the first record at or after ``since`` less the margin (-1: none that late; the
    beginning when ``since`` is None). Raises ``TopicMissing``, and ``TopicReadError`` for a partition
    Kafka could not answer for."""
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None:
        raise TopicMissing(f"topic {topic} does not exist")
    partitions = sorted(metadata.partitions)
    if since is None:
        return [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
    stamp_ms = int((since - SEEK_MARGIN).timestamp() * 1000)
    found = consumer.offsets_for_times([TopicPartition(topic, p, stamp_ms) for p in partitions], timeout=10)
    # A partition Kafka could not answer for (its leader moving, say) is unread, not empty: leaving it
    # out would make a report that misses its events.
    failed = [f"partition {tp.partition}: {tp.error.str()}" for tp in found if tp.error is not None]
    if failed:
        raise TopicReadError(f"finding where to start reading {topic}: {'; '.join(failed)}")
    return list(found)


def _start_offsets(consumer: Consumer, topic: str, since: dt.datetime | None) -> list[TopicPartition]:
    """Per partition, where reading begins; partitions with nothing at or after ``since`` are left out."""
    # -1: no record that late in the partition, so nothing there to read.
    return [tp for tp in _found_offsets(consumer, topic, since) if tp.offset >= 0 or tp.offset == OFFSET_BEGINNING]


def stream_topic(
    access: KafkaAccess, topic: str, on_event: OnEvent, since: dt.datetime | None = None, timeout_s: float = 30.0
) -> int:
    """Hands every committed record of ``topic`` (from ``since``, less the margin) to ``on_event`` as
    (decoded JSON object or ``{}`` when it is not one, partition), in each partition's order; returns
    the number of records read. Raises ``TopicMissing`` for a topic that does not exist."""
    consumer = access.consumer(
        {
            "isolation.level": "read_committed",
            "group.id": access.private_group("report"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    read = 0
    try:
        starts = []
        for tp in _start_offsets(consumer, topic, since):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            if (low if tp.offset == OFFSET_BEGINNING else tp.offset) < high:
                starts.append(tp)
        remaining = {tp.partition for tp in starts}
        if starts:
            consumer.assign(starts)
        while remaining:
            batch = consumer.consume(BATCH, timeout_s)
            if not batch:
                raise TopicReadError(f"reading {topic} timed out; partitions {sorted(remaining)} unread")
            for msg in batch:
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        remaining.discard(msg.partition() or 0)
                        continue
                    raise TopicReadError(f"reading {topic}: {error.str()}")
                read += 1
                on_event(_decode(msg) or {}, msg.partition() or 0)
    except KafkaException as exc:
        raise TopicReadError(f"reading {topic}: {exc.args[0]}") from exc
    finally:
        consumer.close()
    return read


def starts_at_log_start(found: list[TopicPartition], watermarks: Mapping[int, tuple[int, int]]) -> bool:
    """Whether reading from ``found`` (``offsets_for_times``'s answer) reads every partition from its first
    record: each non-empty partition's first record is the one found."""
    offsets = {tp.partition: tp.offset for tp in found}
    return all(low == high or offsets.get(partition) == low for partition, (low, high) in watermarks.items())


def read_from_its_start(access: KafkaAccess, topic: str, since: dt.datetime) -> bool:
    """Whether ``stream_events(..., since)`` reads ``topic`` from its very first record (a topic younger than
    ``since`` less the margin). A missing topic holds nothing, so it is read whole; a failure to tell is
    ``ReportUnavailable``."""
    consumer = access.consumer({"group.id": access.private_group("report"), "enable.auto.commit": False})
    try:
        found = _found_offsets(consumer, topic, since)
        watermarks = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10) for tp in found}
    except TopicMissing:
        return True
    except (KafkaException, TopicReadError) as exc:
        raise ReportUnavailable(f"the report cannot be made: finding where {topic} begins: {exc}") from exc
    finally:
        consumer.close()
    return starts_at_log_start(found, watermarks)


def stream_events(access: KafkaAccess, topic: str, on_event: OnEvent, since: dt.datetime | None = None) -> int:
    """``stream_topic``, with a missing topic read as empty and any other failure as ``ReportUnavailable``."""
    try:
        return stream_topic(access, topic, on_event, since)
    except TopicMissing:
        return 0
    except TopicReadError as exc:
        raise ReportUnavailable(f"the report cannot be made: {exc}") from exc


def read_grant_events(
    access: KafkaAccess,
    topic: str,
    verifier: Verifier,
    on_rejected: Callable[[ControlEventRejected], None] = log_once,
) -> list[Grant]:
    """Every verified grant event in log order (the history, not only each grant's latest state).
    An event the control plane did not sign is not the bus's word, and is left out."""
    try:
        return read_verified(access, topic, lambda msg: open_grant(verifier, msg), on_rejected)
    except TopicMissing:
        return []
    except TopicReadError as exc:
        raise ReportUnavailable(f"the report cannot be made: {exc}") from exc
