"""The auditor outlives a Kafka that cannot answer for a while (a broker SIGKILLed mid-stream): heads
it cannot read back at an assignment, or a transaction it cannot abort, never end the process and never
chain a fact on a guessed head. It waits, reads positions and heads back from the log, and goes on.

The clients are fakes (this is the pure loop); ``tests/integration/test_three_brokers.py`` kills a real
broker under the real auditor."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import sharebus_audit.auditor as auditor_module
from sharebus_audit.anchors import ChainHead
from sharebus_audit.auditor import Auditor, _Step
from sharebus_audit.settings import AuditorSettings
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import TopicReadError

FACTS_TOPIC = "ns.audit.facts"


class Fact:
    """A consumed facts message: one fact with one delivery, at ``offset`` of facts partition 0."""

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def value(self) -> bytes:
        fact = {"time": 1.0, "key": f"k{self._offset}", "decisions": [{"decision": "deliver", "consumer": "c"}]}
        return json.dumps({"records": [fact]}).encode()

    def key(self) -> bytes:
        return b"k"

    def topic(self) -> str:
        return FACTS_TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None


class Delivered:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class FakeProducer:
    """Records what the auditor asks of it; ``fail`` names calls that raise once each."""

    def __init__(self, log: list[str], fail: set[str]) -> None:
        self.log, self.fail = log, fail
        self.produced: list[bytes] = []
        self._reports: list[Callable[[KafkaError | None, Any], None]] = []

    def _call(self, name: str) -> None:
        self.log.append(f"{id(self)}:{name}")
        if name in self.fail:
            self.fail.discard(name)
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{name} timed out"))

    def init_transactions(self, timeout: float) -> None:
        self._call("init")

    def begin_transaction(self) -> None:
        self._call("begin")

    def produce(self, topic: str, *, value: bytes, on_delivery: Any = None, **_: Any) -> None:
        self.produced.append(value)
        if on_delivery is not None:
            self._reports.append(on_delivery)

    def flush(self, timeout: float) -> int:
        for report in self._reports:
            report(None, Delivered(len(self.produced) - 1))
        self._reports.clear()
        return 0

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], metadata: Any, timeout: float) -> None:
        self._call("send_offsets")

    def commit_transaction(self, timeout: float) -> None:
        self._call("commit")

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort")


class FakeConsumer:
    """Plays ``script``: each consume() is one entry, (assign first?, facts). Stops the auditor at its end."""

    def __init__(self, script: list[tuple[bool, list[Fact]]], stop: Callable[[], None]) -> None:
        self.script, self.stop = script, stop
        self.on_assign: Callable[[Any, list[TopicPartition]], None] | None = None
        self.seeks: list[int] = []
        self.assigned: list[TopicPartition] = []

    def subscribe(self, topics: list[str], on_assign: Callable[[Any, list[TopicPartition]], None]) -> None:
        self.on_assign = on_assign

    def consume(self, num_messages: int, timeout: float) -> list[Fact]:
        if not self.script:
            self.stop()
            return []
        assign, facts = self.script.pop(0)
        if assign and self.on_assign is not None:
            self.assigned = [TopicPartition(FACTS_TOPIC, 0)]
            self.on_assign(self, self.assigned)
        return facts

    def assignment(self) -> list[TopicPartition]:
        return self.assigned

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(FACTS_TOPIC, 0, 0)]

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append(tp.offset)

    def consumer_group_metadata(self) -> object:
        return object()

    def close(self) -> None:
        pass


class Harness:
    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        fail_heads: int | set[int],
        fail: set[str],
    ) -> None:
        """``fail_heads``: the first N head reads fail, or those numbered (from 1); ``fail``: calls that fail
        once on the first producer."""
        key = tmp_path / "auditor.pem"
        key.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.calls: list[str] = []
        self.producers: list[FakeProducer] = []
        self.head_reads = 0
        self.script: list[tuple[bool, list[Fact]]] = []
        self.consumer = FakeConsumer(self.script, lambda: self.auditor.stop.set())

        def heads(access: KafkaAccess, topic: str) -> dict[int, ChainHead]:
            self.head_reads += 1
            failing = set(range(1, fail_heads + 1)) if isinstance(fail_heads, int) else fail_heads
            if self.head_reads in failing:
                raise TopicReadError(f"reading the end of {topic}: timed out")
            return {}

        def producer(access: KafkaAccess, config: Any = None) -> FakeProducer:
            made = FakeProducer(self.calls, fail if not self.producers else set())
            self.producers.append(made)
            return made

        monkeypatch.setattr(auditor_module, "chain_heads", heads)
        monkeypatch.setattr(auditor_module, "RESYNC_BACKOFF_S", 0.0)
        monkeypatch.setattr(KafkaAccess, "consumer", lambda access, config=None: self.consumer)
        monkeypatch.setattr(KafkaAccess, "producer", producer)
        settings = AuditorSettings(namespace="ns", audit_signing_key_file=key, anchor_interval_s=3600)
        self.auditor = Auditor(settings)

    def chained_transactions(self) -> int:
        """Transactions that carried facts' offsets (the anchor at stop carries none)."""
        return sum(call.endswith(":send_offsets") for call in self.calls)


def test_heads_unreadable_at_an_assignment_wait_and_nothing_consumed_meanwhile_is_chained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    harness = Harness(monkeypatch, tmp_path, fail_heads=3, fail=set())
    # Assigned inside a consume whose heads read fails, with facts already fetched; then the same facts again.
    harness.script += [(True, [Fact(0), Fact(1)]), (False, [Fact(0), Fact(1)])]

    harness.auditor.run()  # returns at the script's end: it did not raise out of the assignment

    producer = harness.producers[0]
    # The first batch was dropped, positions went back to the committed offset, and the heads were read
    # again (twice more failing, then read) before the second batch was chained on them.
    assert harness.consumer.seeks[-1] == 0
    assert harness.head_reads == 4
    assert harness.chained_transactions() == 1
    assert len(producer.produced) == 2  # one block, then the anchor at stop
    assert harness.auditor.step is _Step.IN_STEP


def test_a_transaction_that_cannot_be_aborted_gets_a_new_producer_before_anything_else_is_chained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    harness = Harness(monkeypatch, tmp_path, fail_heads=0, fail={"commit", "abort"})
    harness.script += [(True, [Fact(0)]), (False, [Fact(0)])]

    harness.auditor.run()

    first, second = harness.producers
    assert [c.split(":")[1] for c in harness.calls if c.startswith(f"{id(first)}:")] == [
        "init",
        "begin",
        "send_offsets",
        "commit",
        "abort",
    ]
    # The new producer fences the old one (init_transactions) before its first transaction; the
    # last transaction is the anchor signed at stop.
    assert [c.split(":")[1] for c in harness.calls if c.startswith(f"{id(second)}:")] == [
        "init",
        "begin",
        "send_offsets",
        "commit",
        "begin",
        "commit",
    ]
    assert harness.consumer.seeks[-1] == 0
    assert len(second.produced) == 2  # one block, then the anchor at stop


def test_a_producer_that_cannot_start_transactions_is_replaced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    harness = Harness(monkeypatch, tmp_path, fail_heads=0, fail={"init"})
    harness.script += [(True, [Fact(0)])]

    harness.auditor.run()

    first, second = harness.producers
    assert [c.split(":")[1] for c in harness.calls if c.startswith(f"{id(first)}:")] == ["init"]
    assert [c.split(":")[1] for c in harness.calls if c.startswith(f"{id(second)}:")][:3] == [
        "init",
        "begin",
        "send_offsets",
    ]


def test_a_new_producer_is_started_once_even_when_reading_the_heads_after_it_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The first producer can neither commit nor abort; the heads read right after its replacement fails.
    harness = Harness(monkeypatch, tmp_path, fail_heads={2}, fail={"commit", "abort"})
    harness.script += [(True, [Fact(0)]), (False, [Fact(0)])]

    harness.auditor.run()

    _, second = harness.producers
    second_calls = [c.split(":")[1] for c in harness.calls if c.startswith(f"{id(second)}:")]
    assert second_calls.count("init") == 1
    assert second_calls[:3] == ["init", "begin", "send_offsets"]
    assert harness.head_reads == 3


class RecordingStop(threading.Event):
    """The auditor's stop event, recording how long each wait would have been (and not waiting)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.is_set()


def test_resync_waits_double_while_kafka_cannot_answer_and_start_again_once_in_step(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Eight failed head reads from the first assignment (one there, seven retried), then in step; a
    # producer that can neither commit nor abort takes the auditor out of step again later, and its
    # first new read fails once more.
    harness = Harness(monkeypatch, tmp_path, fail_heads={1, 2, 3, 4, 5, 6, 7, 8, 10}, fail={"commit", "abort"})
    monkeypatch.setattr(auditor_module, "RESYNC_BACKOFF_S", 1.0)
    monkeypatch.setattr(auditor_module, "RESYNC_BACKOFF_MAX_S", 30.0)
    stop = harness.auditor.stop = RecordingStop()
    harness.consumer.stop = stop.set
    harness.script += [(True, []), (False, [Fact(0)]), (False, [Fact(0)])]

    harness.auditor.run()

    assert stop.waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 1.0]
    assert harness.chained_transactions() == 2  # the failed commit, then the same fact again
    assert harness.auditor.step is _Step.IN_STEP
