"""The auditor's sealing cost per audit event: one record per event (the trail's format before blocks)
against blocks over a Merkle root (``sharebus_core.audit_trail``), in the same run. No Kafka.

``python -m bench.audit [--events 20000] [--rounds 5]``. The events are the router's delivery events
as the auditor builds them (``audit_events`` over planted facts of two decisions each). Per event:

- ``per_event``: seal each event after the previous one (its own hash over its canonical JSON) and
  serialise it as its record, as the auditor did before blocks; the auditor then made one
  ``produce()`` per event as well, which this leaves out (measured at about 5.8 us each on this
  machine kind, issue 14);
- ``blocks``: the auditor's ``_Pending`` cut (one canonical serialisation per event) and
  ``encode_block`` (one leaf hash per event, the tree, the link); one ``produce()`` per block of up
  to 1,000 events, also left out;
- ``verify``: ``verify_links`` over the blocks (what ``sharebus audit verify`` costs per event).

It prints the median round in microseconds per event and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sharebus_audit.auditor import _Pending, audit_events
from sharebus_audit.settings import AuditorSettings
from sharebus_core.audit_trail import GENESIS, encode_block, event_hash, verify_links


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
    started = time.perf_counter_ns()
    run()
    return (time.perf_counter_ns() - started) / count / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = AuditorSettings.model_fields
    max_events, max_bytes = settings["block_max_events"].default, settings["block_max_bytes"].default
    events = [e for batch in facts(args.events // 2) for e in audit_events(batch, 0)]
    records = [json.loads(v) for v in blocks(events, max_events, max_bytes)]
    assert verify_links(0, enumerate(records)) == (len(events), None)
    timings: dict[str, list[float]] = {"per_event_us": [], "blocks_us": [], "verify_us": []}
    for _ in range(args.rounds):  # interleaved, so a slow moment of the machine hits all three
        timings["per_event_us"].append(per_event_us(lambda: per_event(events), len(events)))
        timings["blocks_us"].append(per_event_us(lambda: blocks(events, max_events, max_bytes), len(events)))
        timings["verify_us"].append(per_event_us(lambda: verify_links(0, enumerate(records)), len(events)))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(f"{len(events)} events, blocks of up to {max_events}, median of {args.rounds} rounds, us per event")
    print(
        f"one record per event {medians['per_event_us']:.2f} (+1 produce each) | "
        f"blocks {medians['blocks_us']:.2f} (+1 produce per {len(events) // len(records)}) "
        f"= {medians['blocks_us'] / medians['per_event_us']:.2f} of it | verify {medians['verify_us']:.2f}"
    )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    body = {"events": len(events), "blocks": len(records), **medians}
    (out / f"audit-{stamp}.json").write_text(json.dumps(body, indent=2))


if __name__ == "__main__":
    main()
