"""A real audit partition whose oldest records are gone (``kafka-delete-records``, as retention would leave it),
verified against the retention the auditor signed into its anchors (docs/audit.md, "Retention of the trail")."""

from __future__ import annotations

import json
import operator
import time
from collections import defaultdict
from functools import partial
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from sharebus_audit.anchors import open_anchors
from sharebus_cli.main import main as cli
from sharebus_core.signing import Verifier
from sharebus_core.topic_reader import read_topic
from sharebus_ops.audit import AnchorSource, partitions, verify_read
from tests.integration.conftest import Bus
from tests.support.auditor import start_auditor
from tests.support.kafka import eventually
from tests.support.keys import keys_for_tests, keys_in_env
from tests.support.records import publish_enterprises

HOUR = 3600.0


def committed_offsets(bus: Bus) -> dict[int, list[int]]:
    by_partition: dict[int, list[int]] = defaultdict(list)
    for msg in read_topic(bus.access, bus.topics.audit, isolation="read_committed"):
        by_partition[msg.partition() or 0].append(msg.offset() or 0)
    return by_partition


def events(bus: Bus) -> int:
    messages = read_topic(bus.access, bus.topics.audit, isolation="read_committed")
    return sum(len(json.loads(m.value() or b"{}").get("events", [])) for m in messages)


def anchored_heads(bus: Bus, source: AnchorSource) -> dict[int, set[int]]:
    """Per audit partition, the offsets the auditor's anchors name as its head."""
    records = [
        (m.offset() or 0, m.key(), m.value()) for m in read_topic(bus.access, source.topic, isolation="read_committed")
    ]
    anchors, bad = open_anchors(source.verifier, source.topic, bus.topics.audit, records)
    assert bad == []
    heads: dict[int, set[int]] = defaultdict(set)
    for anchor in anchors:
        assert anchor.retention_hours == 1  # the auditor signs its setting
        for head in anchor.heads:
            heads[head.partition].add(head.offset)
    return heads


def all_anchored(bus: Bus, source: AnchorSource) -> bool:
    """Whether an anchor names every partition's newest block."""
    heads = anchored_heads(bus, source)
    return all(offsets[-1] in heads[p] for p, offsets in committed_offsets(bus).items())


def test_a_head_removed_within_the_signed_retention_is_deleted_and_past_it_expired(
    bus: Bus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"SHAREBUS_AUDITOR_ANCHOR_INTERVAL_S": "1", "SHAREBUS_AUDITOR_RETENTION_HOURS": "1"}
    source = AnchorSource(bus.topics.audit_anchors, Verifier.from_file(keys_for_tests().audit_public))
    auditor = start_auditor(bus.services["auditor"], bus.namespace, tmp_path, extra_env=env)
    try:
        # Three rounds, each chained and anchored before the next: several anchored heads per partition.
        for round_ in range(3):
            publish_enterprises(bus.settings, range(10 * round_, 10 * round_ + 10))
            want = 20 * (round_ + 1)
            assert eventually(lambda: events(bus), partial(operator.le, want), timeout_s=60) == want
            assert eventually(lambda: all_anchored(bus, source), bool, timeout_s=30)
    finally:
        auditor.stop()
    offsets, heads = committed_offsets(bus), anchored_heads(bus, source)
    # A partition with an anchored head before its last two blocks: cutting all but its last block removes
    # records written after that anchor.
    chosen = [p for p in sorted(offsets) if len(offsets[p]) >= 3 and min(heads[p]) < offsets[p][-2]]
    assert chosen, (offsets, heads)
    busiest = chosen[0]
    cut = offsets[busiest][-1]
    admin = bus.access.admin()
    [done] = admin.delete_records([TopicPartition(bus.topics.audit, busiest, cut)]).values()
    done.result(timeout=30)

    # Now: those blocks were anchored seconds ago, far younger than the hour the auditor signed.
    now = verify_read(bus.access, bus.topics.audit, source, partitions(bus.access, bus.topics.audit))
    assert now.broken is not None, str(now)
    assert (now.broken.partition, now.broken.offset) == (busiest, cut)
    assert "deleted, not expired" in now.broken.problem
    bus.use_in_env(monkeypatch)
    keys_in_env(monkeypatch)
    assert cli(["audit", "verify"]) == 5
    assert "deleted, not expired" in capsys.readouterr().out

    # Two hours on, retention could have removed them: the partition is checked from its first kept block.
    later = verify_read(
        bus.access,
        bus.topics.audit,
        source,
        partitions(bus.access, bus.topics.audit),
        clock=lambda: time.time() + 2 * HOUR,
    )
    assert later.intact, str(later)
    assert later.expired == ((busiest, cut),)
    assert f"partition {busiest} starts at offset {cut} (earlier events removed by retention" in str(later)
