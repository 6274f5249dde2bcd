"""Benchmark: records/s and publish->deliver latency of sharebus against bare Faust and raw confluent-kafka.

Run with ``make bench-forward`` (or ``python -m bench.forward --records 100000``). One broker, the same records
for all, each forwarder measured alone so they do not share the two cores:

- raw:      confluent-kafka consume -> produce (the broker's and client's ceiling)
- faust:    a bare Faust agent with the router's app settings and send path (Faust's ceiling)
- sharebus: the real router: wire-format check, schema lookup, Avro decode, rules, headers, counters,
            with the auditor running beside it (its lag on the facts is reported: does it keep up?); the
            bench class's sensitive field is projected out
- sharebus-pass: the same router and records in a class without a sensitive field: passed whole, after
            the same checks and full decode (issue 14's pass-through target is a ratio to raw)

Throughput: N records are preloaded, then the forwarder drains them; the rate comes from the producer
timestamps of the output. Latency: a publisher sends at a steady rate, then flat out, while a sink
measures publish->deliver for each record.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

from bench.auditor_probe import AuditorFigures, AuditorProbe
from bench.rig import (
    BENCH_DIR,
    CLASS,
    CONSUMER,
    WHOLE_CLASS,
    Forwarder,
    Result,
    Rig,
    add_load_arguments,
    faust_forwarder,
    median_run,
    open_rig,
    print_table,
    ratio_line,
    raw_forwarder,
    router_forwarder,
    run_round,
    start_broker,
    warn_if_saturated,
    write_results,
)
from sharebus_broker import BrokerSettings
from sharebus_broker.settings import user_cache_dir
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_provision import TopicSpec, ensure_topics


def foundation_checkout(ref: str) -> Path:
    """A worktree of ``ref`` under the user's cache, reused across runs; returns its services directory."""
    repo = BENCH_DIR.parent
    sha = subprocess.run(["git", "rev-parse", ref], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    path = user_cache_dir() / "bench-worktrees" / sha[:12]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), sha], cwd=repo, check=True, capture_output=True
        )
    return path / "services"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forward")
    add_load_arguments(parser, records=100_000, rounds=1)
    parser.add_argument("--only", default="raw,faust,sharebus,sharebus-pass")
    parser.add_argument(
        "--foundation",
        metavar="GIT_REF",
        help="also measure the router at this commit (e.g. the foundation's), in the same run",
    )
    parser.add_argument(
        "--router-workers",
        type=int,
        default=1,
        help="router processes in one group for the sharebus rounds, started before each backlog",
    )
    parser.add_argument(
        "--warmup-rounds",
        type=int,
        default=1,
        help="unmeasured rounds of every forwarder first (docs/benchmarks.md: the first router round after a "
        "fresh broker measured up to 1.6 times slower than the next, whichever class it routed)",
    )
    parser.add_argument(
        "--security",
        choices=("sasl_ssl", "plaintext"),
        default="sasl_ssl",
        help="the broker this starts; a --foundation from before the secured broker needs plaintext",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sharebus-bench-"))
    with ExitStack() as stack:
        if os.environ.get("SHAREBUS_BOOTSTRAP"):
            access = BusSettings().kafka
        else:
            settings = BrokerSettings(port=0, controller_port=0, data_dir=work / "kafka", security=args.security)
            access = start_broker(stack, settings)
        rig = open_rig(stack, work, access, args.records)
        forwarders = {
            "raw": raw_forwarder(rig),
            "faust": faust_forwarder(rig),
            "sharebus": router_forwarder("sharebus", rig.router_env, work, rig.topics, {}, workers=args.router_workers),
            # The same router on the class without a sensitive field: the records pass whole.
            "sharebus-pass": router_forwarder(
                "sharebus-pass", rig.router_env, work, rig.topics, {}, WHOLE_CLASS, args.router_workers
            ),
        }
        if args.foundation:
            forwarders["foundation"] = foundation_forwarder(args.foundation, rig)
        names = args.only.split(",") + (["foundation"] if args.foundation else [])
        runs: dict[str, list[Result]] = {name: [] for name in names}
        # The auditor runs beside the router, as in production, and is measured with it.
        auditor = AuditorProbe(rig).start()
        stack.callback(auditor.stop)
        # Interleaved rounds: a slow spell of the machine hits every forwarder, not just one. Rounds up to 0
        # warm the broker up (its JVM compiles the paths each forwarder uses) and are not counted.
        for round_no in range(1 - args.warmup_rounds, args.rounds + 1):
            measured = round_no >= 1
            for name in names:
                probe = auditor if name == "sharebus" and measured else None
                label = f"round {round_no}" if measured else "warm-up"
                result = run_round(name, forwarders[name], rig, args, label, probe)
                if measured:
                    runs[name].append(result)
                if name == "sharebus":
                    auditor.catch_up(record=measured)
        results = [median_run(runs[name]) for name in names]
    report(results, rig.record_bytes, args, runs, auditor.figures)
    return 0


def foundation_forwarder(ref: str, rig: Rig) -> Forwarder:
    """The same router at an earlier commit, in a namespace of its own (so its own consumer group)."""
    services = foundation_checkout(ref)
    f_topics = TopicNames(f"{rig.topics.namespace}-f")
    ensure_topics(rig.access, [TopicSpec(f_topics.source(CLASS), 3), TopicSpec(f_topics.delivery(CONSUMER), 3)])
    return router_forwarder(
        "foundation",
        {**rig.env, "SHAREBUS_NAMESPACE": f_topics.namespace},
        rig.work,
        f_topics,
        {"PYTHONPATH": str(services)},
    )


def report(
    results: list[Result],
    size: float,
    args: argparse.Namespace,
    runs: dict[str, list[Result]],
    auditor: AuditorFigures,
) -> None:
    by_name = {r.name: r for r in results}
    print(
        f"\nsharebus forward benchmark: {results[0].records} records of ~{size:.0f} bytes, one broker, "
        f"steady {args.steady_rate:.0f}/s for {args.steady_seconds:.0f}s, flat-out burst {args.flat_records}, "
        f"{args.router_workers} router worker(s)"
    )
    rows = [(r.name, r) for r in results]
    print_table(rows, "forwarder")
    warn_if_saturated(rows, args.steady_rate)
    for name, rs in runs.items():
        print(f"  {name}: records/s per round {', '.join(f'{r.throughput_rps:.0f}' for r in rs)}")
    ratios = {}
    pairs = [
        ("sharebus", "faust"),
        ("sharebus", "raw"),
        ("sharebus-pass", "raw"),
        ("sharebus", "foundation"),
        ("foundation", "faust"),
    ]
    for name, base in pairs:
        if name in by_name and base in by_name:
            ratios[f"{name}/{base}"] = ratio_line(f"{name}/{base}", by_name[name], by_name[base])[0]
    print(
        f"auditor beside sharebus, per round: lag when the backlog was drained {auditor.lag_when_drained}; "
        f"over the steady phase {auditor.steady_lag_start} -> {auditor.steady_lag_end}; "
        f"caught up {', '.join(f'{s:.1f}' for s in auditor.catch_up_s)} s after the round "
        f"(facts messages on the topic by then: {auditor.facts_messages})"
    )
    write_results(
        "forward",
        {
            "auditor": asdict(auditor),
            "results": [asdict(r) for r in results],
            "runs": {name: [asdict(r) for r in rs] for name, rs in runs.items()},
            "ratios": ratios,
            "record_bytes": size,
            "args": vars(args),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
