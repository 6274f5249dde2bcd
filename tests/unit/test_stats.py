"""``sharebus stats`` from the router's own counters (the fallback when Prometheus does not answer)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, generate_latest

from sharebus_cli.stats_cmd import COLUMNS, from_router, render
from sharebus_core.catalogue import load_catalogue

CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue")


def _router_metrics() -> str:
    registry = CollectorRegistry()
    share = ["provider", "consumer", "data_class", "mode"]
    received = Counter("sharebus_records_received", "", ["provider", "data_class", "mode"], registry=registry)
    records = Counter("sharebus_records", "", share, registry=registry)
    calls = Counter("sharebus_calls", "", share, registry=registry)
    denials = Counter("sharebus_denials", "", ["provider", "consumer", "data_class", "reason"], registry=registry)
    received.labels("AMR", "301001001/000001", "realtime").inc(10)
    received.labels("AMR", "301001002/000001", "realtime").inc(5)
    records.labels("AMR", "tax-levy", "301001001/000001", "realtime").inc(10)
    calls.labels("AMR", "tax-levy", "301001001/000001", "realtime").inc(10)
    records.labels("AMR", "hrss-si", "301001002/000001", "realtime").inc(4)
    denials.labels("AMR", "psb-case", "301001001/000001", "no_grant").inc(7)
    return generate_latest(registry).decode()


def test_router_counters_become_one_row_per_department() -> None:
    table = from_router(_router_metrics(), CATALOGUE.department_of_system)
    assert table["AMR"] == {"provided": 15}
    assert table["TAX"] == {"consumed": 10, "calls": 10}
    assert table["HRSS"] == {"consumed": 4}
    assert table["PSB"] == {"denials": 7}


def test_the_table_lists_every_department_of_the_catalogue() -> None:
    text = render(from_router(_router_metrics(), CATALOGUE.department_of_system), CATALOGUE, "source")
    lines = text.splitlines()
    assert lines[0] == "source"
    assert lines[1].split() == ["department", *COLUMNS]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert set(rows) == set(CATALOGUE.departments)
    assert rows["AMR"] == ["15", "0", "0", "0", "0"]
    assert rows["TAX"] == ["0", "10", "10", "0", "0"]
