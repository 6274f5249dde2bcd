"""``make run``: what it prints once the bus is up (every address the README's table promises), how it stops."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from sharebus_cli import run
from sharebus_cli.run import _doors, _raise_stop, _stop_on_signals, run_ports
from sharebus_cli.run_settings import RunSettings


def test_the_summary_names_the_gateway_portal_reconciler_and_landing_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ACL reconciler's address (6069) was printed nowhere, and the summary left out gateway and portal."""
    for name in ("GATEWAY_PORT", "PORTAL_PORT", "ACCESS_PORT", "LAND_PORT", "LAND_SYSTEM"):
        monkeypatch.delenv(f"SHAREBUS_RUN_{name}", raising=False)
    monkeypatch.delenv("SHAREBUS_SCRAPE_TOKEN_FILE", raising=False)  # the run's own, beside its state file
    settings = RunSettings()
    text = "\n".join(_doors(settings, landing=True))
    assert f"Authorization: Bearer $(cat {settings.state_file.parent / 'scrape-token'})" in text
    assert "http://127.0.0.1:8080" in text
    assert "http://127.0.0.1:8090" in text
    assert "http://127.0.0.1:6069/metrics" in text
    assert "http://127.0.0.1:6070/metrics" in text
    assert "drc-credit.db" in text
    assert "6070" not in "\n".join(_doors(settings, landing=False))


def test_sigint_stops_the_bus_even_when_started_as_a_background_job() -> None:
    """``make run > run.log &`` inherits SIGINT ignored; ``kill -INT`` then left the whole bus running."""
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.getsignal(signal.SIGTERM)
    try:
        _stop_on_signals()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is _raise_stop
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def test_the_port_check_covers_every_process_the_run_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked before the broker starts, in the order the processes start: a busy one stops the run early."""
    for name in ("ROUTERS", "REGISTRY_PORT", "ROUTER_PORT", "ROUTER_MORE_PORT", "PORTAL_PORT", "LAND_SYSTEM"):
        monkeypatch.delenv(f"SHAREBUS_RUN_{name}", raising=False)
    monkeypatch.setenv("SHAREBUS_RUN_ROUTERS", "3")
    settings = RunSettings()
    monkeypatch.setattr(run, "find_prometheus", lambda: None)
    names = [name for name, _port in run_ports(settings, demo=False, district=None)]
    assert names == [
        "registry",
        "router",
        "router",
        "router",
        "auditor",
        "monitor",
        "gateway",
        "portal",
        "ACL reconciler",
    ]
    assert [port for name, port in run_ports(settings, False, None) if name == "router"] == [6066, 6071, 6072]
    monkeypatch.setattr(run, "find_prometheus", lambda: Path("/usr/bin/prometheus"))
    with_demo = dict(run_ports(settings, demo=True, district=None))
    assert with_demo["prometheus"] == settings.prometheus_port
    assert with_demo["landing sink"] == settings.land_port


def test_a_busy_port_stops_the_run_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SHAREBUS_RUN_PORTAL_PORT", raising=False)
    portal_port = RunSettings().portal_port
    asked: list[int] = []

    def in_use(_host: str, port: int) -> bool:
        asked.append(port)
        return port == portal_port

    def no_broker(*_args: object) -> None:
        raise AssertionError("the broker started despite a busy port")

    monkeypatch.setattr(run, "port_in_use", in_use)
    monkeypatch.setattr(run, "KafkaBroker", no_broker)
    assert run.run_bus(demo=False) == 1
    assert asked[-1] == portal_port
    assert f"port {portal_port} for the portal is in use" in capsys.readouterr().err
