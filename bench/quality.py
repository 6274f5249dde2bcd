"""The cost per record of the quality rules, against the cost of decoding the record, in the same run.

``python -m bench.quality [--records 20000] [--rounds 5]``. No Kafka: the per-record work the router
adds is pure (``sharebus_rules.quality``), so it is measured in-process. For each demo class with rules
(and one without, where only completeness is counted, and a penalty class with a reference rule added),
the same framed records produced by the demo's faker, one in 25 with a broken rule as ``make run``
sends them, go through:

- ``decode``: the router's own ``decode`` (fastavro, the writer schema; every record pays it);
- ``rules``: the class's compiled rules (``ClassRules.evaluate``: the verdict, failed rules, filled fields);
- ``gate``: the router's ``QualityGate.judge`` plus ``count`` (the verdict, and the counts that the
  metrics export at scrape time).

It prints the median round in microseconds per record and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.catalogue.quality import QualityPolicy
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
from sharebus_demo.fake import RecordFaker
from sharebus_demo.flaws import break_one_rule
from sharebus_router.decoding import decode
from sharebus_router.quality_gate import QualityGate
from sharebus_router.schema_cache import WriterSchema
from sharebus_rules.quality import ClassRules

ENTERPRISE = "301001001/000001"  # six rules: two check digits, required, enum, range, not_future
PENALTY = "301001002/000001"  # five rules; the "+reference" case adds a reference to ENTERPRISE
PLAIN = "301001003/000001"  # no rules: completeness only
FLAW_EVERY = 25


class _Keys:
    """A ready key view of ``count`` keys, as the router's follower holds them."""

    def __init__(self, keys: set[str]) -> None:
        self.keys = keys
        self.ready = True

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def __len__(self) -> int:
        return len(self.keys)


def bodies(catalogue: Catalogue, code: str, count: int, faker: RecordFaker) -> list[bytes]:
    schema = catalogue.schema(code)
    policy = catalogue.data_class(code).quality
    out = []
    for n in range(count):
        record = faker.record(schema)
        if policy is not None and n % FLAW_EVERY == FLAW_EVERY - 1:
            break_one_rule(record, policy.rules, faker.rng)
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, schema.parsed, record)
        out.append(buffer.getvalue())
    return out


def judge_and_count(gate: QualityGate, code: str, records: list[dict[str, Any]]) -> None:
    for record in records:
        gate.count(code, gate.judge(code, record))


def per_record_us(run: Callable[[], object], count: int) -> float:
    started = time.perf_counter_ns()
    run()
    return (time.perf_counter_ns() - started) / count / 1000


def with_reference(policy: QualityPolicy | None) -> QualityPolicy:
    assert policy is not None
    rules = [*(r.model_dump() for r in policy.rules), {"field": "uscc", "kind": "reference", "data_class": ENTERPRISE}]
    return QualityPolicy.model_validate({"on_failure": policy.on_failure, "rules": rules})


def measure(catalogue: Catalogue, code: str, policy: QualityPolicy | None, count: int, rounds: int) -> dict[str, Any]:
    faker = RecordFaker(seed=11)
    schema = catalogue.schema(code)
    writer = WriterSchema(1, schema.parsed, frozenset({code}))
    framed = bodies(catalogue, code, count, faker)
    views = {ENTERPRISE: _Keys({faker.uscc() for _ in range(100_000)})}
    now = dt.datetime.now(dt.UTC)
    rules = ClassRules.compile(policy, schema.field_names, lambda: now, views)
    gate = QualityGate(catalogue, lambda: now, views)
    gate.rules[code] = rules
    decoded = [decode(writer, memoryview(body)) for body in framed]
    timings: dict[str, list[float]] = {"decode_us": [], "evaluate_us": [], "gate_us": []}
    for _ in range(rounds):  # interleaved, so a slow moment of the machine hits all three
        timings["decode_us"].append(per_record_us(lambda: [decode(writer, memoryview(b)) for b in framed], count))
        timings["evaluate_us"].append(per_record_us(lambda: [rules.evaluate(r) for r in decoded], count))
        timings["gate_us"].append(per_record_us(lambda: judge_and_count(gate, code, decoded), count))
    failed = sum(1 for r in decoded if rules.evaluate(r).failed)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    return {"rules": len(rules.rules), "fields": len(rules.fields), "failing": failed, **medians}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    random.seed(1)
    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    cases = {
        f"{ENTERPRISE} enterprise": (ENTERPRISE, catalogue.data_class(ENTERPRISE).quality),
        f"{PENALTY} penalty": (PENALTY, catalogue.data_class(PENALTY).quality),
        f"{PENALTY} +reference": (PENALTY, with_reference(catalogue.data_class(PENALTY).quality)),
        f"{PLAIN} no rules": (PLAIN, None),
    }
    results = {
        name: measure(catalogue, code, policy, args.records, args.rounds) for name, (code, policy) in cases.items()
    }
    print(f"{args.records} records per class, median of {args.rounds} rounds, microseconds per record")
    for name, r in results.items():
        share = r["gate_us"] / r["decode_us"] * 100
        print(
            f"{name:28s} rules {r['rules']} fields {r['fields']:2d} failing {r['failing']:5d}"
            f" | decode {r['decode_us']:6.2f} | evaluate {r['evaluate_us']:6.2f}"
            f" | gate {r['gate_us']:6.2f} ({share:.0f}% of decode)"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"quality-{stamp}.json").write_text(json.dumps({"records": args.records, "results": results}, indent=2))


if __name__ == "__main__":
    main()
