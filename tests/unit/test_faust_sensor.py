"""The router's Faust sensor: the families the dashboards read, and no series per topic or partition."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest

from sharebus_router.faust_sensor import RouterSensor

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy"


def _series(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if line and not line.startswith("#")]


def _message(tp: TP, offset: int) -> Any:
    return SimpleNamespace(tp=tp, offset=offset, time_in=None, time_out=None, time_total=None, stream_meta={})


def test_traffic_over_many_topics_and_partitions_adds_no_series() -> None:
    registry = CollectorRegistry()
    sensor = RouterSensor(registry)
    sensor.on_message_in(TP("ns.src.a", 0), 0, _message(TP("ns.src.a", 0), 0))
    before = len(_series(registry))
    for topic in range(300):
        for partition in range(3):
            tp = TP(f"ns.src.c{topic}", partition)
            sensor.on_message_in(tp, 5, _message(tp, 5))
            sensor.on_tp_commit({tp: 6})
            sensor.track_tp_end_offset(tp, 9)
    assert len(_series(registry)) == before
    received = [s for s in _series(registry) if s.startswith("faust_router_messages_received_total ")]
    assert received == ["faust_router_messages_received_total 901.0"]
    assert not [s for s in _series(registry) if "topic=" in s or "partition=" in s]


def test_every_faust_family_the_dashboards_and_alerts_query_exists() -> None:
    registry = CollectorRegistry()
    sensor = RouterSensor(registry)
    sensor.on_commit_completed(SimpleNamespace(), sensor.time())  # type: ignore[arg-type]
    state = sensor.on_rebalance_start(SimpleNamespace(rebalancing_count=1))  # type: ignore[arg-type]
    sensor.on_rebalance_return(SimpleNamespace(), state)  # type: ignore[arg-type]
    sensor.on_rebalance_end(SimpleNamespace(), state)  # type: ignore[arg-type]
    exposed = {line.split("{")[0].split(" ")[0] for line in _series(registry)}
    queried = {
        name
        for path in DASHBOARDS.rglob("*")
        if path.suffix in (".json", ".yml", ".yaml") and path.is_file()
        for name in re.findall(r"faust_router_[a-z_]+", path.read_text(encoding="utf-8"))
    }
    assert queried
    assert queried <= exposed
    assert "faust_router_rebalance_done_latency_count 1.0" in _series(registry)
