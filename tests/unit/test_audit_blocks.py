"""The auditor cuts a transaction's events into blocks: per partition, in order, bounded in events and bytes."""

from __future__ import annotations

import json
from typing import Any

from sharebus_audit.auditor import _Pending
from sharebus_core.audit_trail import GENESIS, encode_block, events_of, verify_links


def event(partition: int, seq: int, note: str = "") -> dict[str, Any]:
    return {"partition": partition, "seq": seq, "decision": "deliver", "note": note}


def sealed(pending: _Pending) -> dict[int, list[dict[str, Any]]]:
    heads: dict[int, str] = {}
    out: dict[int, list[dict[str, Any]]] = {}
    for partition, _key, bodies in pending.blocks():
        heads[partition], value = encode_block(bodies, heads.get(partition, GENESIS))
        out.setdefault(partition, []).append(json.loads(value))
    return out


def test_blocks_hold_at_most_the_events_set_and_keep_each_partitions_order() -> None:
    pending = _Pending(max_events=3, max_bytes=1_000_000)
    for seq in range(8):
        pending.add(seq % 2, f"k{seq}".encode(), event(seq % 2, seq))
    blocks = sealed(pending)
    assert {p: [b["count"] for b in bs] for p, bs in blocks.items()} == {0: [3, 1], 1: [3, 1]}
    assert [e["seq"] for b in blocks[1] for e in events_of(b)] == [1, 3, 5, 7]
    assert [key for p, key, _ in pending.blocks() if p == 0] == [b"k0", b"k6"]
    for partition, records in blocks.items():
        assert verify_links(partition, enumerate(records)) == (4, None)


def test_blocks_stay_under_the_byte_bound_and_an_oversized_event_gets_a_block_of_its_own() -> None:
    pending = _Pending(max_events=1000, max_bytes=4096)
    for seq in range(40):
        pending.add(0, None, event(0, seq, "x" * 300))
    pending.add(0, None, event(0, 40, "y" * 6000))
    pending.add(0, None, event(0, 41))
    records = sealed(pending)[0]
    sizes = [sum(len(json.dumps(e, separators=(",", ":"))) for e in events_of(r)) for r in records]
    assert all(size <= 4096 for size in sizes[:-2])
    assert [r["count"] for r in records][-2:] == [1, 1]
    assert events_of(records[-2])[0]["seq"] == 40
    assert sum(r["count"] for r in records) == 42
    assert verify_links(0, enumerate(records)) == (42, None)
