"""Benchmark: the cost of security, the router on a SASL_SSL broker against the same router on plaintext.

Run with ``make bench-security`` (or ``python -m bench.security --records 25000 --rounds 3``). Each
round starts one broker of each kind in turn (never two at once, so they do not share the two
cores), sets up the bench bus on it and measures, on the same records:

- raw:      confluent-kafka consume -> produce on that broker (the ceiling of that kind of broker)
- sharebus: the real router

On a secured broker the router and the registry run as their own principals under the catalogue's
ACLs, as ``sharebus run`` does; raw runs as the admin, whose requests skip the ACL check (super user).

Broker kinds:

- sasl_ssl:          as the launcher runs it: SCRAM-SHA-512 over TLS, StandardAuthorizer, librdkafka
                     clients re-authenticated every ``BrokerSettings.max_reauth_ms`` on CLIENTS, the
                     router's Faust worker on STREAM (aiokafka cannot re-authenticate)
- sasl_ssl-reauth1h: the same with re-authentication once an hour, i.e. never within a run: what
                     the frequent re-authentication costs, apart from TLS + SCRAM
- plaintext:         the debug opt-in, no TLS, no authentication, no authorizer

The steady phase runs at 300 records/s by default, well under the router's capacity here, so that its
latency is the path's and not a queue's (the report says when a forwarder drained under twice that).
The rounds alternate the order of the kinds, so a slow spell of the machine does not always hit the
same one. Each figure is reported as its median over the rounds (taken figure by figure), with the ratios
secured/plaintext and sharebus/raw on the same broker, and those ratios round by round (the noise).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.rig import (
    Forwarder,
    Result,
    Rig,
    add_load_arguments,
    faust_forwarder,
    median_each,
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

BASELINE = "plaintext"
KINDS: dict[str, dict[str, Any]] = {
    "sasl_ssl": {"security": "sasl_ssl"},
    "sasl_ssl-reauth1h": {"security": "sasl_ssl", "max_reauth_ms": 3_600_000},
    BASELINE: {"security": "plaintext"},
}
FORWARDERS = ("raw", "faust", "sharebus")

Runs = dict[tuple[str, str], list[Result]]


def broker_settings(kind: str, work: Path) -> BrokerSettings:
    return BrokerSettings(port=0, controller_port=0, data_dir=work / "kafka", **KINDS[kind])


def make_forwarder(name: str, rig: Rig) -> Forwarder:
    if name == "raw":
        return raw_forwarder(rig)
    if name == "faust":
        return faust_forwarder(rig)
    return router_forwarder(name, rig.router_env, rig.work, rig.topics, {})


def measure_kind(
    kind: str, names: list[str], args: argparse.Namespace, work: Path, label: str
) -> tuple[list[Result], float]:
    """One broker of ``kind``, the bench bus on it, each forwarder measured once; the broker is removed after.

    Returns the results and the mean record size.
    """
    print(f"bench: {label}: starting a {kind} broker", flush=True)
    with ExitStack() as stack:
        # Registered first so it runs last, after the broker stopped; the logs beside it stay.
        stack.callback(shutil.rmtree, work / "kafka", True)
        access = start_broker(stack, broker_settings(kind, work))
        rig = open_rig(stack, work, access, args.records)
        results = [run_round(name, make_forwarder(name, rig), rig, args, f"{label} {kind}") for name in names]
        return results, rig.record_bytes


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.security")
    # The steady phase stays well under the router's capacity on a busy 2-core machine (~1,000/s
    # seen), so its latency is the path's, not a queue's.
    add_load_arguments(parser, records=25_000, rounds=2, steady_rate=300.0)
    parser.add_argument("--kinds", default=f"sasl_ssl,{BASELINE}", help=f"broker kinds, of {', '.join(KINDS)}")
    parser.add_argument("--only", default="raw,sharebus", help=f"forwarders, of {', '.join(FORWARDERS)}")
    args = parser.parse_args()
    kinds, names = args.kinds.split(","), args.only.split(",")
    unknown = [k for k in kinds if k not in KINDS] + [n for n in names if n not in FORWARDERS]
    if unknown:
        parser.error(f"unknown broker kind or forwarder: {', '.join(unknown)}")
    work = Path(tempfile.mkdtemp(prefix="sharebus-bench-security-"))
    runs: Runs = {(kind, name): [] for kind in kinds for name in names}
    record_bytes = 0.0
    for round_no in range(1, args.rounds + 1):
        order = kinds if round_no % 2 else kinds[::-1]
        for kind in order:
            kind_work = work / f"round{round_no}-{kind}"
            kind_work.mkdir()
            results, record_bytes = measure_kind(kind, names, args, kind_work, f"round {round_no}")
            for result in results:
                runs[(kind, result.name)].append(result)
    report(runs, record_bytes, args)
    return 0


def report(runs: Runs, size: float, args: argparse.Namespace) -> None:
    medians = {key: median_each(rs) for key, rs in runs.items()}
    print(
        f"\nsharebus cost of security: {args.records} records of ~{size:.0f} bytes, one broker at a time, steady "
        f"{args.steady_rate:.0f}/s for {args.steady_seconds:.0f}s, flat-out burst {args.flat_records}, "
        f"each figure the median of {args.rounds} rounds"
    )
    rows = [(f"{kind} {name}", r) for (kind, name), r in medians.items()]
    print_table(rows, "broker forwarder")
    warn_if_saturated(rows, args.steady_rate)
    for (kind, name), rs in runs.items():
        print(
            f"  {kind} {name} per round: records/s {', '.join(f'{r.throughput_rps:.0f}' for r in rs)}; "
            f"steady p99 {', '.join(f'{r.steady_p99_ms:.0f}' for r in rs)} ms"
        )
    ratios: dict[str, dict[str, Any]] = {}
    for kind, name in medians:
        pairs = [(f"{name} {kind}/{BASELINE}", (BASELINE, name)), (f"{name}/raw on {kind}", (kind, "raw"))]
        for label, base in pairs:
            if base in medians and base != (kind, name):
                throughput, p99 = ratio_line(label, medians[(kind, name)], medians[base])
                per_round = paired_ratios(runs[(kind, name)], runs[base])
                print(f"  per round: throughput {per_round['throughput']}, steady p99 {per_round['steady_p99']}")
                ratios[label] = {"throughput": throughput, "steady_p99": p99, "per_round": per_round}
    write_results(
        "security",
        {
            "results": {f"{kind} {name}": asdict(r) for (kind, name), r in medians.items()},
            "runs": {f"{kind} {name}": [asdict(r) for r in rs] for (kind, name), rs in runs.items()},
            "ratios": ratios,
            "record_bytes": size,
            "args": vars(args),
        },
    )


def paired_ratios(runs: list[Result], bases: list[Result]) -> dict[str, list[float]]:
    """The ratios round by round (both measured in the same round): their spread is the noise."""
    return {
        "throughput": [round(r.throughput_rps / b.throughput_rps, 2) for r, b in zip(runs, bases, strict=True)],
        "steady_p99": [round(r.steady_p99_ms / b.steady_p99_ms, 2) for r, b in zip(runs, bases, strict=True)],
    }


if __name__ == "__main__":
    sys.exit(main())
