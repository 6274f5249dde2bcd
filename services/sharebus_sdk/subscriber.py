"""Subscriber: reads one system's delivery topic and yields decoded records with their metadata.

Only the SDK's own errors leave it (``sharebus_sdk.errors``): a broker refusal is ``CredentialError`` or
``NotAuthorised``, any other Kafka failure ``SubscriberFailed``. A record it cannot decode never stops
it: it goes to the ``on_error`` callback (by default logged) and is skipped, its offset committed past.
Decoding is ``decoding.py``'s, what is handed out ``delivery.py``'s, whole batches ``batches.py``'s and
which offsets may be committed ``offsets.py``'s.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer
from pydantic import Field

from sharebus_core import headers as h
from sharebus_core.principals import Principals
from sharebus_core.recent_ids import RecentIds
from sharebus_core.registry_client import registry_client
from sharebus_core.schema_subjects import SchemaSubjects
from sharebus_core.settings import BusSettings, shared_config
from sharebus_core.topics import TopicNames
from sharebus_sdk.batches import SKIPPED, Batch, BatchAssembler, BatchInfo
from sharebus_sdk.decoding import DeliveryDecoder, position_of
from sharebus_sdk.delivery import Delivery, ErrorCallback, Undecodable
from sharebus_sdk.errors import CredentialError, DeliveryDecodeError, SubscriberFailed
from sharebus_sdk.identity import ClientIdentity
from sharebus_sdk.offsets import OffsetBook, Position

log = logging.getLogger(__name__)


class SubscriberSettings(BusSettings):
    model_config = shared_config("SHAREBUS_SUBSCRIBER_")

    group_id: str | None = Field(
        default=None,
        description="defaults to <namespace>.<system>.sub; a system's groups live under <namespace>.<system>.",
    )
    from_beginning: bool = True
    # Record ids remembered to drop redeliveries (the router is at-least-once).
    dedupe_window: int = Field(default=100_000, ge=0)
    unknown_schema_wait_s: float = Field(
        default=10.0,
        ge=0,
        description="how long a record whose schema id the registry does not know is asked about again before "
        "it is skipped as undecodable: on a federated bus the schema can arrive a moment after the record",
    )


def log_and_skip(record: Undecodable) -> None:
    """The default ``on_error``: the record is logged, then skipped (its offset is committed past it)."""
    log.warning(
        "skipping an undecodable record at %s[%s]@%s: %s", record.topic, record.partition, record.offset, record.error
    )


class Subscriber:
    """Iterating yields each delivered record once, in order per partition, and each periodic batch
    once, whole.

    ``poll`` returns a ``Delivery`` (a real-time or backfilled record), a ``Batch`` (every record of
    one released window), or None. An item's offsets are stored only when the caller asks for the
    next one, so a crash while handling it redelivers it (at-least-once), and so does leaving a
    ``with`` block on an exception raised while handling it; redeliveries of a record
    already seen in the dedupe window (the same record id of the same provider's class) are dropped
    and counted in ``duplicates``.

    A record that cannot be decoded goes to ``on_error`` (default ``log_and_skip``) and is skipped: its
    offset is stored as done. A callback that raises stops the Subscriber at that record instead.
    """

    def __init__(
        self,
        system: str,
        settings: SubscriberSettings | None = None,
        client_config: Mapping[str, Any] | None = None,
        on_error: ErrorCallback = log_and_skip,
    ) -> None:
        self.settings = settings or SubscriberSettings()
        self.system = system
        self.identity = ClientIdentity(self.settings, f"system {system}")
        if self.identity.system is not None and self.identity.system != system:
            raise CredentialError(
                f"system {system}: the credential is {self.identity.access.username}'s, not this system's"
            )
        self.topic = TopicNames(self.settings.namespace).delivery(system)
        registry = registry_client(self.settings.registry_url, self.settings.registry_auth)
        self._decoder = DeliveryDecoder(
            system,
            AvroDeserializer(registry),
            SchemaSubjects(registry, TopicNames(self.settings.namespace), system),
            self.identity.translate_registry,
            self.settings.unknown_schema_wait_s,
        )
        group_prefix = Principals(self.settings.namespace).consumer_group_prefix(system)
        self._on_error = on_error
        self._consumer = self._kafka(lambda: self._make_consumer(group_prefix, client_config), "connect")
        self._book = OffsetBook()
        self._handed: list[Position] = []
        self._batches = BatchAssembler()
        self._seen = RecentIds(self.settings.dedupe_window)
        self.duplicates = 0
        self.skipped = 0

    def _make_consumer(self, group_prefix: str, client_config: Mapping[str, Any] | None) -> Consumer:
        consumer = self.identity.access.consumer(
            self.identity.client_config(
                {
                    "group.id": self.settings.group_id or f"{group_prefix}sub",
                    "auto.offset.reset": "earliest" if self.settings.from_beginning else "latest",
                    "enable.auto.offset.store": False,
                    "enable.auto.commit": True,
                    **(client_config or {}),
                }
            )
        )
        consumer.subscribe([self.topic], on_revoke=self._on_revoke)
        return consumer

    def _kafka(self, call: Callable[[], Any], what: str) -> Any:
        """Runs a consumer call; a ``KafkaException`` leaves as the SDK's own error."""
        try:
            return call()
        except KafkaException as exc:
            raise self._failure(exc.args[0], what) from exc

    def _failure(self, error: KafkaError, what: str) -> Exception:
        refusal = self.identity.translate(error, f"{what} {self.topic}")
        return refusal or SubscriberFailed(f"system {self.system}: cannot {what} {self.topic}: {error.str()}")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Called inside the consumer's poll or close, after the finished offsets were stored; the
        # auto-commit of the revocation commits them. Then the revoked partitions are forgotten.
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self._handed = [p for p in self._handed if (p[0], p[1]) not in lost]
        self._book.forget(lost)

    def _store_pending(self) -> None:
        self._book.done(self._handed)
        self._handed = []
        changes = self._book.to_store()
        if not changes:
            return
        try:
            self._consumer.store_offsets(offsets=changes)
        except KafkaException as exc:
            # _STATE: a partition revoked meanwhile; its new owner resumes from the last commit.
            if exc.args[0].code() != KafkaError._STATE:
                raise self._failure(exc.args[0], "store offsets of") from exc
            log.info("not storing offsets of revoked partitions: %s", exc.args[0].str())

    def poll(self, timeout_s: float = 1.0) -> Delivery | Batch | None:
        """The next new record or whole batch, or None when none arrived within the timeout.

        Redeliveries and parts of batches are taken in without shortening the wait: a run of
        duplicates does not look like an idle feed.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self._store_pending()
            msg = self._next_message(deadline)
            if msg is None:
                return None
            position = position_of(msg)
            self._book.consumed(position)
            meta = h.header_map(msg.headers())
            try:
                info = BatchInfo.from_headers(meta)
            except ValueError as exc:
                self._skip(msg, position, DeliveryDecodeError(f"malformed batch headers: {exc}"))
                continue
            if info is not None:
                batch = self._take_batch_part(msg, meta, info, position)
                if batch is not None:
                    return batch
                continue
            try:
                delivery = self._decoder.decode(msg, meta)
            except DeliveryDecodeError as exc:
                self._skip(msg, position, exc)
                continue
            if self._is_repeat(delivery):
                self.duplicates += 1
                self._book.done([position])
                continue
            self._handed = [position]
            return delivery

    def _next_message(self, deadline: float) -> Message | None:
        msg: Message | None = self._kafka(lambda: self._consumer.poll(max(0.0, deadline - time.monotonic())), "read")
        self.identity.raise_if_refused()
        if msg is None:
            return None
        error = msg.error()
        if error is None:
            return msg
        if error.retriable() and not error.fatal():
            log.warning("reading %s: %s (retrying)", self.topic, error.str())
            return None
        raise self._failure(error, "read")

    def _skip(self, msg: Message, position: Position, error: DeliveryDecodeError) -> None:
        """An undecodable record: to the callback, then done (its offset is stored past it)."""
        self._report(msg, position, error)
        self._book.done([position])

    def _report(self, msg: Message, position: Position, error: DeliveryDecodeError) -> None:
        topic, partition, offset = position
        self._on_error(Undecodable(topic, partition, offset, msg.key(), error))
        self.skipped += 1

    def _take_batch_part(
        self, msg: Message, meta: Mapping[str, bytes], info: BatchInfo, position: Position
    ) -> Batch | None:
        if self._batches.is_completed(info.batch_id):
            self.duplicates += info.seq is not None
            self._book.done([position])
            return None
        try:
            record = self._decoder.decode(msg, meta, info) if info.seq is not None else None
        except DeliveryDecodeError as exc:
            # Its slot is filled as skipped, so the rest of the batch is still handed out, whole otherwise.
            self._report(msg, position, exc)
            record = SKIPPED
        whole = self._batches.add(
            info,
            position,
            record,
            h.text(meta, h.DATA_CLASS) or "",
            h.text(meta, h.PROVIDER) or "",
            h.text(meta, h.CONSUMER) or self.system,
        )
        if whole is None:
            return None
        batch, positions = whole
        self._handed = positions
        return self._without_repeats(batch)

    def _without_repeats(self, batch: Batch) -> Batch:
        """The batch without the records handed out before, as a real-time repeat is dropped: a router that
        crashed after holding a record and before committing holds it again, and a copy past the window's
        end marker goes out with the next window, in another batch, with the same record id."""
        kept = [r for r in batch.records if not self._is_repeat(r)]
        if len(kept) == len(batch.records):
            return batch
        self.duplicates += len(batch.records) - len(kept)
        repeats = tuple(sorted({r.batch.seq for r in batch.records} - {r.batch.seq for r in kept}))
        return dataclasses.replace(batch, records=tuple(kept), repeats=repeats)

    def _is_repeat(self, delivery: Delivery) -> bool:
        return self._seen.is_repeat(h.record_identity(delivery.provider, delivery.data_class, delivery.record_id))

    def __iter__(self) -> Iterator[Delivery | Batch]:
        while True:
            delivery = self.poll(1.0)
            if delivery is not None:
                yield delivery

    def records(self, idle_timeout_s: float = 5.0) -> Iterator[Delivery | Batch]:
        """Yields records and whole batches until nothing has arrived for ``idle_timeout_s``."""
        while True:
            delivery = self.poll(idle_timeout_s)
            if delivery is None:
                return
            yield delivery

    def commit(self) -> None:
        """Stores the last handed-out record and commits synchronously."""
        self._store_pending()
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:  # nothing to commit yet
                raise self._failure(exc.args[0], "commit offsets of") from exc

    def close(self, *, handled: bool = True) -> None:
        """Commits what the caller finished with and leaves the group.

        ``handled=False``: the item handed out last was not finished (its handling failed), so it is
        not committed and the next member of the group receives it again. Leaving a ``with`` block on
        an exception closes so.
        """
        try:
            if not handled:
                self._handed = []  # still open in the book: the stored offsets stay before it
            self._store_pending()
        finally:
            self._kafka(self._consumer.close, "close")

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(handled=exc is None)


__all__ = [
    "Delivery",
    "ErrorCallback",
    "Subscriber",
    "SubscriberSettings",
    "Undecodable",
    "log_and_skip",
]
