"""One message of a delivery topic decoded into a ``Delivery``: with its writer schema, and only with a schema
registered for its class there (``sharebus_core.schema_subjects``), asked about again for a while.

Anything that goes wrong leaves as ``DeliveryDecodeError`` (the Subscriber skips the record), except the
registry refusing the credential, which leaves as the SDK's ``CredentialError`` or ``NotAuthorised``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Message
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from sharebus_core import headers as h
from sharebus_core.schema_subjects import SchemaSubjectMismatch, SchemaSubjects
from sharebus_sdk.batches import BatchInfo
from sharebus_sdk.delivery import Delivery
from sharebus_sdk.errors import DeliveryDecodeError
from sharebus_sdk.offsets import Position

log = logging.getLogger(__name__)

# The registry's error code for an id it has no schema under (the Confluent REST API's).
SCHEMA_NOT_FOUND = 40403

# confluent-kafka's AvroDeserializer, or a test's stand-in.
Deserializer = Callable[[bytes | None, SerializationContext], Any]
# The registry's refusal of the credential as the SDK's error (``ClientIdentity.translate_registry``), else None.
RegistryRefusal = Callable[[Exception, str], Exception | None]


def position_of(msg: Message) -> Position:
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise DeliveryDecodeError("a consumed message has no topic, partition or offset")
    return topic, partition, offset


class DeliveryDecoder:
    """Decodes the messages of one system's delivery topic."""

    def __init__(
        self,
        system: str,
        deserializer: Deserializer,
        subjects: SchemaSubjects,
        refusal: RegistryRefusal,
        unknown_schema_wait_s: float,
    ) -> None:
        self.system = system
        self._deserializer = deserializer
        self._subjects = subjects
        self._refusal = refusal
        self.unknown_schema_wait_s = unknown_schema_wait_s

    def deserialize(self, msg: Message, topic: str, data_class: str) -> Any:
        """Decodes with the writer schema, asking the registry again, bounded, for an id it does not know
        or does not hold for the record's class on this topic (``SchemaSubjects``): never with another schema.

        A federated bus imports the other bus's schemas with their ids a moment after the records can
        cross (docs/federation.md), so an unknown id may be on its way. The router delivers only
        records it decoded, so an id that stays unknown is the registry's loss: then it is undecodable.
        """
        context = SerializationContext(topic, MessageField.VALUE)
        deadline = time.monotonic() + self.unknown_schema_wait_s
        delay = 0.05
        fresh = False
        while True:
            try:
                self._subjects.check(msg.value(), data_class, fresh)
                return self._deserializer(msg.value(), context)
            except SchemaRegistryError as exc:
                if exc.error_code != SCHEMA_NOT_FOUND or time.monotonic() + delay > deadline:
                    raise
            except SchemaSubjectMismatch:
                if time.monotonic() + delay > deadline:
                    raise
                fresh = True
            where = (topic, msg.partition(), msg.offset())
            log.info("schema of %s[%s]@%s not (yet) in the registry for its class; asking again", *where)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def decode(self, msg: Message, meta: Mapping[str, bytes], batch: BatchInfo | None = None) -> Delivery:
        topic, partition, offset = position_of(msg)
        try:
            value = self.deserialize(msg, topic, h.text(meta, h.DATA_CLASS) or "")
        except Exception as exc:
            refusal = self._refusal(exc, f"look up the schema of {topic}")
            if refusal is not None:
                raise refusal from exc
            raise DeliveryDecodeError(f"cannot decode the record at {topic}[{partition}]@{offset}: {exc}") from exc
        if not isinstance(value, dict):
            raise DeliveryDecodeError(f"the record at {topic}[{partition}]@{offset} is not an Avro record")
        published = h.text(meta, h.PUBLISHED_NS)
        key = msg.key()
        # A garbled timestamp header costs the record its latency figure, not its delivery.
        return Delivery(
            data_class=h.text(meta, h.DATA_CLASS) or "",
            provider=h.text(meta, h.PROVIDER) or "",
            consumer=h.text(meta, h.CONSUMER) or self.system,
            trace_id=h.text(meta, h.TRACE_ID),
            record_id=h.text(meta, h.RECORD_ID),
            mode=h.text(meta, h.MODE),
            published_ns=int(published) if published and published.isdigit() else None,
            key=key.decode("utf-8", "replace") if key is not None else None,
            value=value,
            topic=topic,
            partition=partition,
            offset=offset,
            batch=batch,
            backfill=h.text(meta, h.BACKFILL),
            corrects=h.text(meta, h.CORRECTS),
            quality=tuple((h.text(meta, h.QUALITY) or "").split(",")) if h.QUALITY in meta else (),
            key_withheld=h.text(meta, h.KEY_WITHHELD),
        )


__all__ = ["SCHEMA_NOT_FOUND", "DeliveryDecoder", "Deserializer", "RegistryRefusal", "position_of"]
