"""A subscriber asks again, bounded, for a schema id its registry does not know yet (a federated bus)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sharebus_sdk.decoding import SCHEMA_NOT_FOUND, DeliveryDecoder


class Message:
    def value(self) -> bytes:
        return b"\x00\x00\x00\x00\x07body"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 5


class Clock:
    """time.monotonic and time.sleep for the module: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    # The subscriber reads the time module's functions when it waits: patched for this test only.
    monkeypatch.setattr(time, "monotonic", fake.monotonic)
    monkeypatch.setattr(time, "sleep", fake.sleep)
    return fake


def subscriber(answers: list[Any], wait_s: float = 10.0) -> DeliveryDecoder:
    """A Subscriber's decoding alone (no Kafka): its deserializer gives ``answers`` in turn."""

    def deserialize(value: bytes | None, context: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return DeliveryDecoder("t", deserialize, AnySubject(), lambda error, what: None, wait_s)  # type: ignore[arg-type]


class AnySubject:
    """The subject check passing (tested in test_sdk_schema_subjects.py): only the unknown id is waited on here."""

    def check(self, value: bytes | None, data_class: str, fresh: bool = False) -> None:
        return None


def not_found() -> SchemaRegistryError:
    return SchemaRegistryError(404, SCHEMA_NOT_FOUND, "Schema 7 not found")


def test_an_id_imported_a_moment_later_is_decoded(clock: Clock) -> None:
    got = subscriber([not_found(), not_found(), {"seq": 1}]).deserialize(Message(), "t", "c")  # type: ignore[arg-type]
    assert got == {"seq": 1}
    assert len(clock.slept) == 2


def test_an_id_that_stays_unknown_is_given_up_after_the_bound(clock: Clock) -> None:
    start = clock.now
    with pytest.raises(SchemaRegistryError):
        subscriber([not_found()] * 1000, wait_s=3.0).deserialize(Message(), "t", "c")  # type: ignore[arg-type]
    assert 2.0 <= clock.now - start <= 3.0
    assert max(clock.slept) <= 1.0


def test_other_registry_errors_are_not_asked_again(clock: Clock) -> None:
    refused = SchemaRegistryError(401, 401, "unauthorised")
    with pytest.raises(SchemaRegistryError):
        subscriber([refused, {"seq": 1}]).deserialize(Message(), "t", "c")  # type: ignore[arg-type]
    assert clock.slept == []


def test_no_wait_when_the_bound_is_zero(clock: Clock) -> None:
    with pytest.raises(SchemaRegistryError):
        subscriber([not_found(), {"seq": 1}], wait_s=0).deserialize(Message(), "t", "c")  # type: ignore[arg-type]
    assert clock.slept == []
