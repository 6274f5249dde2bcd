"""The auditor's signed anchors let ``sharebus audit verify`` see what the hash chain alone cannot: an audit
topic rewritten whole with a re-sealed chain, or cut short. Tampered here with the admin access."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from sharebus_cli.main import main as cli
from sharebus_core.audit_trail import GENESIS, events_of, seal_block
from sharebus_core.produce import produce_confirmed
from sharebus_core.signing import Verifier
from sharebus_core.topic_reader import read_topic
from sharebus_ops.audit import AnchorSource, Verification, verify
from sharebus_provision import AUDIT_PARTITIONS, TopicSpec, ensure_topics
from tests.integration.conftest import Bus
from tests.support.auditor import start_auditor
from tests.support.kafka import eventually
from tests.support.keys import keys_for_tests, keys_in_env
from tests.support.records import publish_enterprises


def committed(bus: Bus) -> dict[int, list[dict[str, Any]]]:
    """The committed audit events per partition (the blocks opened)."""
    by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for msg in read_topic(bus.access, bus.topics.audit, isolation="read_committed"):
        by_partition[msg.partition() or 0].extend(events_of(json.loads(msg.value() or b"{}")))
    return by_partition


def checked(bus: Bus) -> Verification:
    source = AnchorSource(bus.topics.audit_anchors, Verifier.from_file(keys_for_tests().audit_public))
    return verify(bus.access, bus.topics.audit, source)


def resealed(events: list[dict[str, Any]], length: int) -> list[bytes]:
    """The partition's events with the fourth one altered, sealed again from genesis one block per event
    (padded to ``length`` blocks with more of the same): a chain as consistent as the original."""
    body = list(events)
    body[3] = {**body[3], "consumer": "someone-else"}
    while len(body) < length:
        body.append(body[len(body) % len(events)])
    prev, out = GENESIS, []
    for event in body:
        sealed = seal_block([event], prev)
        prev = sealed["hash"]
        out.append(json.dumps(sealed).encode())
    return out


def recreate(bus: Bus, topic: str) -> None:
    admin = bus.access.admin()
    admin.delete_topics([topic])[topic].result(timeout=30)
    gone = eventually(lambda: topic not in admin.list_topics(timeout=10).topics, lambda done: done, timeout_s=30)
    assert gone
    ensure_topics(bus.access, [TopicSpec(topic, AUDIT_PARTITIONS)])


def use_cli(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    bus.use_in_env(monkeypatch)
    keys_in_env(monkeypatch)


def test_a_rewritten_or_truncated_audit_topic_is_caught_by_the_signed_anchors(
    bus: Bus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    auditor = start_auditor(
        bus.services["auditor"], bus.namespace, tmp_path, extra_env={"SHAREBUS_AUDITOR_ANCHOR_INTERVAL_S": "1"}
    )
    try:
        publish_enterprises(bus.settings, range(30))
        total = eventually(lambda: sum(len(e) for e in committed(bus).values()), lambda n: n >= 60, timeout_s=60)
        assert total == 60
    finally:
        auditor.stop()  # anchors the final heads on its way out
    before = checked(bus)
    assert before.intact, str(before)
    assert before.anchors is not None
    assert before.anchors.anchors >= 1
    use_cli(bus, monkeypatch)
    assert cli(["audit", "verify"]) == 0
    assert "every anchored head is in place" in capsys.readouterr().out

    original = committed(bus)
    assert before.anchors.latest is not None
    anchored = {h.partition: h.offset for h in before.anchors.latest.heads}
    busiest = max(original, key=lambda p: len(original[p]))
    assert len(original[busiest]) >= 4
    recreate(bus, bus.topics.audit)
    producer = bus.access.producer({"enable.idempotence": True})
    for value in resealed(original[busiest], anchored[busiest] + 2):
        producer.produce(bus.topics.audit, value=value, partition=busiest)
    assert producer.flush(30) == 0
    # Every other partition stays empty: truncated. And someone writes an anchor of their own.
    produce_confirmed(bus.access, bus.topics.audit_anchors, bus.topics.audit.encode(), b'{"heads": []}')

    after = checked(bus)
    assert after.broken is None  # the re-sealed chains are consistent: only the anchors can tell
    assert after.anchors is not None
    assert not after.intact
    kinds = {p.partition: p.kind for p in after.anchors.problems}
    assert kinds == {p: ("rechained" if p == busiest else "truncated") for p in original}
    assert [b.reason for b in after.anchors.bad] == ["unsigned"]

    assert cli(["audit", "verify"]) == 5
    out = capsys.readouterr().out
    assert "audit chain intact" in out
    assert f"partition {busiest} RECHAINED" in out
    assert "refused (unsigned)" in out
    for partition in original:
        if partition != busiest:
            assert f"partition {partition} TRUNCATED" in out
