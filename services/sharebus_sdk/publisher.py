"""Publisher: validates records against their class's schema and writes them in the Confluent wire format."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from pydantic import Field

from sharebus_core import headers as h
from sharebus_core.catalogue import Catalogue, UnknownDataClass, load_catalogue
from sharebus_core.registry_client import registry_client
from sharebus_core.settings import BusSettings, shared_config
from sharebus_core.topics import TopicNames
from sharebus_sdk.errors import NotProvider, PublishFailed
from sharebus_sdk.header_values import chosen_headers
from sharebus_sdk.identity import ClientIdentity

log = logging.getLogger(__name__)


class PublisherSettings(BusSettings):
    model_config = shared_config("SHAREBUS_PUBLISHER_")

    linger_ms: int = Field(default=5, ge=0)
    compression: str = "lz4"


class Publisher:
    """Publishes records of the data classes one department provides.

    ``publish`` validates first and raises ``RecordInvalid`` naming the field; nothing is sent for
    an invalid record. Sends are asynchronous: ``flush`` waits for the broker's acknowledgements and
    raises ``PublishFailed`` if any record was not acknowledged.
    """

    def __init__(
        self,
        department: str,
        settings: PublisherSettings | None = None,
        catalogue: Catalogue | None = None,
        client_config: Mapping[str, Any] | None = None,
        transactional_id: str | None = None,
    ) -> None:
        """With ``transactional_id``, ``transaction()`` publishes several records all or nothing."""
        self.settings = settings or PublisherSettings()
        self.catalogue = catalogue or load_catalogue(self.settings.catalogue_dir)
        if department not in self.catalogue.departments:
            raise NotProvider(f"unknown department {department!r}: it is not in the catalogue")
        self.department = department
        self.identity = ClientIdentity(self.settings, f"department {department}")
        self.topics = TopicNames(self.settings.namespace)
        self._registry = registry_client(self.settings.registry_url, self.settings.registry_auth)
        self._serializers: dict[str, AvroSerializer] = {}
        self._failures: list[str] = []
        self._refusal: Exception | None = None
        self._producer = self.identity.access.producer(
            self.identity.client_config(
                {
                    # Idempotence with acks=all: a retried send never duplicates or reorders a record.
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": self.settings.linger_ms,
                    "compression.type": self.settings.compression,
                    **({"transactional.id": transactional_id} if transactional_id else {}),
                    **(client_config or {}),
                }
            )
        )
        self._transactional = transactional_id is not None
        self._transactions_ready = False

    def _serializer(self, class_code: str) -> AvroSerializer:
        serializer = self._serializers.get(class_code)
        if serializer is None:
            # The catalogue registers schemas; a publisher only looks its schema up, so a department
            # cannot change a class's schema by publishing.
            serializer = AvroSerializer(
                self._registry,
                self.catalogue.schema(class_code).text,
                conf={"auto.register.schemas": False},
            )
            self._serializers[class_code] = serializer
        return serializer

    def publish(
        self,
        class_code: str,
        record: Mapping[str, Any],
        trace_id: str | None = None,
        record_id: str | None = None,
        corrects: str | None = None,
    ) -> str:
        """Validates and sends one record; returns its record id (``record_id`` when given: publishing
        the same record again with the same id lets every subscriber drop the repeat). ``corrects``: the
        record id this record corrects (a dispute's answer); subscribers see it as ``Delivery.corrects``.
        ``trace_id``, ``record_id`` and ``corrects`` are at most 200 bytes of printable ASCII (as the router
        takes them), else ``RecordInvalid`` and nothing is sent."""
        entry = self.catalogue.data_class(class_code)
        if entry.provider != self.department:
            raise NotProvider(
                f"department {self.department} does not provide data class {class_code} "
                f"({entry.name}); its provider is {entry.provider}"
            )
        system = self.identity.system
        if system is not None and system != entry.system:
            raise NotProvider(
                f"system {system} does not provide data class {class_code} ({entry.name}): "
                f"{entry.system} does, and only its credential may publish it"
            )
        # Checked before anything else is done with the record: the router would dead-letter it (bad_header).
        chosen = chosen_headers(trace_id=trace_id, record_id=record_id, corrects=corrects)
        self.identity.raise_if_refused()
        schema = self.catalogue.schema(class_code)
        schema.validate(record)
        topic = self.topics.source(class_code)
        try:
            value = self._serializer(class_code)(dict(record), SerializationContext(topic, MessageField.VALUE))
        except SchemaRegistryError as exc:
            raise self.identity.translate_registry(exc, f"look up the schema of {class_code}") or exc from exc
        record_id = record_id or uuid.uuid4().hex
        headers: list[tuple[str, str | bytes | None]] = [
            (h.DATA_CLASS, class_code.encode()),
            (h.PROVIDER, self.department.encode()),
            (h.TRACE_ID, chosen.get("trace_id") or uuid.uuid4().hex.encode()),
            (h.RECORD_ID, record_id.encode()),
            (h.PUBLISHED_NS, str(time.time_ns()).encode()),
        ]
        if "corrects" in chosen:
            headers.append((h.CORRECTS, chosen["corrects"]))
        key = str(record[entry.key_field]).encode()
        self._produce(topic, key, value, headers)
        return record_id

    def _produce(
        self, topic: str, key: bytes, value: bytes | None, headers: list[tuple[str, str | bytes | None]]
    ) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery)
                break
            except BufferError:
                # The local queue is full: serve delivery reports to make room, then retry.
                self._producer.poll(0.1)
        self._producer.poll(0)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()} key={msg.key()!r}: {err.str()}")
            self._refusal = self._refusal or self.identity.translate(err, f"publish to {msg.topic()}")

    def flush(self, timeout_s: float = 30.0) -> None:
        remaining = self._producer.flush(timeout_s)
        self.identity.raise_if_refused()
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            self._failures = []
            raise refusal
        failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} record(s) still unacknowledged after {timeout_s}s")
        if failures:
            raise PublishFailed(failures)

    @contextlib.contextmanager
    def transaction(self, timeout_s: float = 30.0) -> Iterator[None]:
        """Records published inside land together or not at all (for ``read_committed`` readers).

        Begin; publish; then commit, which waits for every acknowledgement. Any failure aborts the
        transaction and raises (``PublishFailed`` when Kafka refused, or what ``publish`` raised).
        """
        if not self._transactional:
            raise PublishFailed(["this Publisher was made without a transactional_id"])
        try:
            if not self._transactions_ready:
                self._producer.init_transactions(timeout_s)
                self._transactions_ready = True
            self._producer.begin_transaction()
        except KafkaException as exc:
            raise PublishFailed([f"cannot begin a transaction: {exc.args[0].str()}"]) from exc
        try:
            yield
            self._producer.commit_transaction(timeout_s)
        except BaseException as exc:
            self._abort(timeout_s)
            failures, self._failures, self._refusal = self._failures, [], None
            if isinstance(exc, KafkaException):
                raise PublishFailed([*failures, exc.args[0].str()]) from exc
            raise
        self._failures, self._refusal = [], None

    def _abort(self, timeout_s: float) -> None:
        try:
            self._producer.abort_transaction(timeout_s)
        except KafkaException:
            # A fatal error (fenced, timed out): nothing of the transaction is committed either way.
            self._transactions_ready = False
            log.exception("could not abort a publish transaction")

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._producer.flush(10)


__all__ = ["Publisher", "PublisherSettings", "UnknownDataClass"]
