"""Avro schemas the registry integration tests share."""

from __future__ import annotations

import json

from confluent_kafka.schema_registry import Schema


def person(*extra: dict[str, object], name: str = "Person") -> Schema:
    fields = [{"name": "name", "type": "string"}, *extra]
    return Schema(json.dumps({"type": "record", "name": name, "namespace": "gov.test", "fields": fields}), "AVRO")


V1 = person()
V2 = person({"name": "age", "type": "int", "default": 0})
V2_NO_DEFAULT = person({"name": "age", "type": "int"})
