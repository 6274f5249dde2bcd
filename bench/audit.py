"""The auditor's cost per audit event, in CPU time (no Kafka).

``python -m bench.audit [--events 20000] [--rounds 5]``. The events are the router's delivery events:
planted record facts of two decisions each, sent as the router sends them (``{"records": [...]}``,
200 facts a message). Per event:

- ``step_before_us``: the auditor's whole step as it was before issue 14's speed-up: the message read
  by ``json``, one dict per event (``audit_events``), each serialised by ``json.dumps(sort_keys=True)``
  (``reference_canonical``), cut into blocks, and each block sealed with the recursive RFC 6962 root
  (``merkle_root_by_split``);
- ``step_us``: the same step as the auditor takes it now: ``fact_bodies`` (the message read by orjson
  once, each event written by orjson with sorted keys, the same bytes), ``_Pending.add_bodies`` and
  ``encode_block`` (a level-at-a-time root). One ``produce()`` per block of up to 1,000 events is left
  out of both (about 6 us each, issue 14: well under 0.01 us per event); ``events_per_core_s`` is
  what one core sustains of this step;
- ``per_event_us``: the trail's format before blocks: seal each event after the previous one (its own
  hash over its canonical JSON) and serialise it as its record, from events already built (the auditor
  then made one ``produce()`` per event as well, left out);
- ``blocks_us``: sealing alone, from events already built: the ``_Pending`` cut and ``encode_block``;
- ``verify_us``: ``verify_links`` over the blocks (what ``sharebus audit verify`` costs per event).

Times are CPU time of this process (``time.process_time``), so that other work on a shared machine
slows the figures less than wall time would; rounds interleave the measures, and the
median round is printed and written as JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sharebus_audit.auditor import _Pending
from sharebus_audit.facts import audit_events, fact_bodies
from sharebus_audit.settings import AuditorSettings
from sharebus_core.audit_trail import (
    BLOCK,
    GENESIS,
    encode_block,
    event_hash,
    link_hash,
    merkle_root_by_split,
    reference_canonical,
    verify_links,
)

FACTS_PER_MESSAGE = 200  # the router's audit_batch_records default


def facts(count: int) -> list[dict[str, Any]]:
    return [
        {
            "records": [
                {
                    "time": time.time(),
                    "provider": "AMR",
                    "data_class": "301001001/000001",
                    "mode": "realtime",
                    "key": f"E{seq}",
                    "trace_id": f"trace-{seq}",
                    "record_id": f"0f3c2a1b-1234-5678-9abc-{seq:012d}",
                    "source": {"topic": "sharebus.src.amr-enterprise", "partition": 0, "offset": seq},
                    "quality": {"failed": [], "filled": 11, "fields": 12},
                    "decisions": [
                        {
                            "consumer": c,
                            "grant_id": None,
                            "decision": "deliver",
                            "reason": None,
                            "payload_sha256": "0" * 64,
                        }
                        for c in ("tax-levy", "psb-case")
                    ],
                }
            ]
        }
        for seq in range(count)
    ]


def messages(count: int) -> list[bytes]:
    """``count`` record facts as the router sends them: compact JSON, ``FACTS_PER_MESSAGE`` a message."""
    records = [batch["records"][0] for batch in facts(count)]
    return [
        json.dumps({"records": records[i : i + FACTS_PER_MESSAGE]}, ensure_ascii=False, separators=(",", ":")).encode()
        for i in range(0, len(records), FACTS_PER_MESSAGE)
    ]


def encode_block_before(bodies: list[bytes], prev_hash: str) -> tuple[str, bytes]:
    """``encode_block`` as it was before: the same bytes, the root by the recursive split."""
    root = merkle_root_by_split([hashlib.sha256(b"\x00" + body).digest() for body in bodies]).hex()
    link: dict[str, Any] = {"kind": BLOCK, "prev_hash": prev_hash, "root": root, "count": len(bodies)}
    link["hash"] = link_hash(link)
    head = json.dumps(link, sort_keys=True, separators=(",", ":")).encode()
    return link["hash"], head[:-1] + b',"events":[' + b",".join(bodies) + b"]}"


def step_before(values: list[bytes], max_events: int, max_bytes: int) -> list[bytes]:
    """The auditor's step before: ``json`` read, a dict per event, ``json.dumps(sort_keys=True)`` each."""
    pending = _Pending(max_events, max_bytes)
    counts: dict[Any, int] = {}
    for value in values:
        for event in audit_events(json.loads(value), 0):
            counts[event["decision"]] = counts.get(event["decision"], 0) + 1
            pending.add_bodies(0, b"t:0", [reference_canonical(event)])
    prev, blocks = GENESIS, []
    for _partition, _key, bodies in pending.blocks():
        prev, block = encode_block_before(bodies, prev)
        blocks.append(block)
    return blocks


def step(values: list[bytes], max_events: int, max_bytes: int) -> list[bytes]:
    """The auditor's step now (``Auditor._events`` and ``_chain_some`` without Kafka)."""
    pending = _Pending(max_events, max_bytes)
    counts: dict[Any, int] = {}
    for value in values:
        bodies, made = fact_bodies(value, 0)
        for decision, n in made.items():
            counts[decision] = counts.get(decision, 0) + n
        pending.add_bodies(0, b"t:0", bodies)
    prev, blocks = GENESIS, []
    for _partition, _key, bodies in pending.blocks():
        prev, block = encode_block(bodies, prev)
        blocks.append(block)
    return blocks


def per_event(events: list[dict[str, Any]]) -> None:
    prev = GENESIS
    for event in events:
        linked = {**event, "prev_hash": prev}
        linked["hash"] = prev = event_hash(linked)
        json.dumps(linked, ensure_ascii=False, separators=(",", ":")).encode()


def blocks(events: list[dict[str, Any]], max_events: int, max_bytes: int) -> list[bytes]:
    pending = _Pending(max_events, max_bytes)
    for event in events:
        pending.add(0, None, event)
    prev, values = GENESIS, []
    for _partition, _key, bodies in pending.blocks():
        prev, value = encode_block(bodies, prev)
        values.append(value)
    return values


def per_event_us(run: Callable[[], object], count: int) -> float:
    started = time.process_time_ns()
    run()
    return (time.process_time_ns() - started) / count / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = AuditorSettings.model_fields
    max_events, max_bytes = settings["block_max_events"].default, settings["block_max_bytes"].default
    values = messages(args.events // 2)
    events = [e for value in values for e in audit_events(json.loads(value), 0)]
    # Before and now seal the very same blocks: the speed-up changes no byte of the trail.
    sealed = step(values, max_events, max_bytes)
    assert sealed == step_before(values, max_events, max_bytes) == blocks(events, max_events, max_bytes)
    records = [json.loads(v) for v in sealed]
    assert verify_links(0, enumerate(records)) == (len(events), None)
    runs: dict[str, Callable[[], object]] = {
        "step_before_us": lambda: step_before(values, max_events, max_bytes),
        "step_us": lambda: step(values, max_events, max_bytes),
        "per_event_us": lambda: per_event(events),
        "blocks_us": lambda: blocks(events, max_events, max_bytes),
        "verify_us": lambda: verify_links(0, enumerate(records)),
    }
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):  # interleaved, so a slow moment of the machine hits all of them
        for name, run in runs.items():
            timings[name].append(per_event_us(run, len(events)))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    per_core = 1e6 / medians["step_us"]
    print(f"{len(events)} events, blocks of up to {max_events}, median of {args.rounds} rounds, CPU us per event")
    print(
        f"auditor step (fact message -> events -> blocks -> encoded): before {medians['step_before_us']:.2f}, "
        f"now {medians['step_us']:.2f} (= {medians['step_us'] / medians['step_before_us']:.2f} of it); "
        f"one core sustains {per_core:,.0f} events/s (before {1e6 / medians['step_before_us']:,.0f})"
    )
    print(
        f"sealing built events: one record per event {medians['per_event_us']:.2f} (+1 produce each) | "
        f"blocks {medians['blocks_us']:.2f} (+1 produce per {len(events) // len(records)}) | "
        f"verify {medians['verify_us']:.2f}"
    )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    body = {"events": len(events), "blocks": len(records), **medians, "events_per_core_s": per_core}
    (out / f"audit-{stamp}.json").write_text(json.dumps(body, indent=2))


if __name__ == "__main__":
    main()
