"""Reads committed offsets and watermarks from Kafka with one AdminClient, batched per request kind."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin._listoffsets import OffsetSpec  # not re-exported by name

from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess
from sharebus_monitor.lag import Partition

log = logging.getLogger(__name__)


_IDLE = (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD)


class OffsetsUnavailable(SharebusError, RuntimeError):
    pass


class OffsetReader:
    def __init__(self, access: KafkaAccess, timeout_s: float) -> None:
        self.access = access
        self.admin = access.admin()
        self.timeout_s = timeout_s

    def unavailable(self, what: str, exc: KafkaException) -> OffsetsUnavailable:
        """The error to raise; after a timeout the admin client is replaced first.

        librdkafka can abort the process when a timed-out admin request's late answer meets the
        request's freed state (confluentinc/librdkafka#4605); its known workaround is a fresh client.
        """
        if _timed_out(exc):
            self._renew()
        return OffsetsUnavailable(f"{what}: {exc}")

    def _renew(self) -> None:
        log.warning("an admin request timed out: replacing the admin client (librdkafka#4605)")
        self.admin = self.access.admin()

    def partitions(self, topics: Iterable[str]) -> list[Partition]:
        """Partitions of those of ``topics`` that exist."""
        wanted = set(topics)
        try:
            metadata = self.admin.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise self.unavailable("cannot list topics", exc) from exc
        return [(name, p) for name, topic in metadata.topics.items() if name in wanted for p in topic.partitions]

    def topics(self) -> list[str]:
        try:
            return list(self.admin.list_topics(timeout=self.timeout_s).topics)
        except KafkaException as exc:
            raise self.unavailable("cannot list topics", exc) from exc

    def groups(self) -> dict[str, bool]:
        """Every group, and whether it is idle: no members (Kafka's ``Empty``, or ``Dead``)."""
        try:
            listed = self.admin.list_consumer_groups(request_timeout=self.timeout_s).result()
        except KafkaException as exc:
            raise self.unavailable("cannot list consumer groups", exc) from exc
        return {g.group_id: getattr(g, "state", None) in _IDLE for g in listed.valid}

    def committed(self, groups: Iterable[str]) -> dict[str, dict[Partition, int | None]]:
        """Committed offsets of each group: -1 where none, ``None`` where Kafka answered the partition
        with an error. A group that vanished meanwhile is left out."""
        # The API takes one group per request (confluent-kafka 2.16 refuses more); the requests still run
        # concurrently, and GroupLabels.select bounds how many there are.
        futures = {
            group: self.admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)], request_timeout=self.timeout_s
            )[group]
            for group in groups
        }
        found: dict[str, dict[Partition, int | None]] = {}
        timed_out = False
        for group, future in futures.items():
            try:
                result = future.result()
            except KafkaException as exc:
                log.warning("no offsets for group %s: %s", group, exc)
                timed_out = timed_out or _timed_out(exc)
                continue
            partitions = result.topic_partitions or []
            found[group] = {(tp.topic, tp.partition): None if tp.error else tp.offset for tp in partitions}
            failed = [tp for tp in partitions if tp.error]
            if failed:
                # One line per group: the router's alone spans thousands of partitions.
                first = failed[0]
                log.warning(
                    "no committed offset of %s on %d partition(s), %s[%d] the first: %s",
                    group,
                    len(failed),
                    first.topic,
                    first.partition,
                    first.error,
                )
        if timed_out:
            self._renew()  # once every request of the old client has been answered or timed out
        return found

    def watermarks(self, partitions: Iterable[Partition], latest: bool) -> dict[Partition, int]:
        # The library's OffsetSpec constructors carry no annotations.
        spec = OffsetSpec.latest() if latest else OffsetSpec.earliest()  # type: ignore[no-untyped-call]
        request = {TopicPartition(topic, p): spec for topic, p in partitions}
        if not request:
            return {}
        try:
            futures = self.admin.list_offsets(request, request_timeout=self.timeout_s)
            return {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}
        except KafkaException as exc:
            raise self.unavailable("cannot read watermarks", exc) from exc


def _timed_out(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and error.code() == KafkaError._TIMED_OUT
