"""The audit chain: sealing, and that altering, removing or reordering one event is found."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sharebus_audit.chain import GENESIS, event_hash, seal, verify_partition


def chain(n: int) -> list[dict[str, Any]]:
    events, prev = [], GENESIS
    for i in range(n):
        event = seal({"seq": i, "consumer": "tax-levy", "decision": "deliver"}, prev)
        events.append(event)
        prev = event["hash"]
    return events


def walk(events: list[dict[str, Any] | None]) -> str | None:
    broken = verify_partition(0, enumerate(events))
    return str(broken) if broken else None


def test_an_intact_chain_verifies() -> None:
    events = chain(5)
    assert events[0]["prev_hash"] == GENESIS
    assert all(e["hash"] == event_hash(e) for e in events)
    assert walk(list(chain(5))) is None
    assert walk([]) is None


def test_altering_an_event_is_found_at_that_event() -> None:
    events: list[dict[str, Any] | None] = list(chain(5))
    events[2] = {**chain(5)[2], "consumer": "psb-case"}
    assert walk(events) == "partition 0, offset 2: its content does not match its hash (the event was altered)"


def test_altering_and_rehashing_is_found_at_the_next_event() -> None:
    events: list[dict[str, Any] | None] = list(chain(5))
    forged = {**chain(5)[2], "consumer": "psb-case"}
    forged.pop("hash")
    events[2] = seal({k: v for k, v in forged.items() if k != "prev_hash"}, forged["prev_hash"])
    assert walk(events) is not None
    assert "offset 3: its prev_hash does not match the event at offset 2" in (walk(events) or "")


def test_removing_an_event_is_found() -> None:
    events: list[dict[str, Any] | None] = list(chain(5))
    del events[1]
    assert "offset 1: its prev_hash does not match the event at offset 0" in (walk(events) or "")
    first_removed: list[dict[str, Any] | None] = [*chain(3)[1:]]
    assert "offset 0: its prev_hash does not match the event at the start" in (walk(first_removed) or "")


def test_reordering_is_found() -> None:
    events: list[dict[str, Any] | None] = list(chain(5))
    events[1], events[2] = events[2], events[1]
    assert "offset 1: its prev_hash" in (walk(events) or "")


def test_a_foreign_record_is_found() -> None:
    events: list[dict[str, Any] | None] = [*chain(2), None]
    assert walk(events) == "partition 0, offset 2: the record is not an audit event (not JSON, or empty)"


def test_router_batches_expand_into_one_event_per_decision() -> None:
    from sharebus_audit.auditor import audit_events
    from sharebus_router.audit_facts import decision, encode_batch, record_fact

    facts = [
        record_fact(
            "AMR",
            "c1",
            "realtime",
            "t",
            p,
            o,
            b"k",
            [],
            [decision("a", None, True, None, b"x"), decision("b", "g", False, "no_grant")],
        )
        for p, o in ((0, 1), (1, 5), (0, 2))
    ]
    batches = dict(encode_batch(facts))
    assert sorted(batches) == [b"t:0", b"t:1"]
    events = audit_events(json.loads(batches[b"t:0"]), partition=2)
    assert [(e["source"]["offset"], e["consumer"], e["decision"]) for e in events] == [
        (1, "a", "deliver"),
        (1, "b", "deny"),
        (2, "a", "deliver"),
        (2, "b", "deny"),
    ]
    assert all(e["partition"] == 2 and e["time"].endswith("+00:00") for e in events)
    assert events[0]["payload_sha256"] == hashlib.sha256(b"x").hexdigest()
