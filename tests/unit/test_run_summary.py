"""``make run``: what it prints once the bus is up (every address the README's table promises), how it stops."""

from __future__ import annotations

import signal

import pytest

from sharebus_cli.run import _doors, _raise_stop, _stop_on_signals
from sharebus_cli.run_settings import RunSettings


def test_the_summary_names_the_gateway_portal_reconciler_and_landing_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ACL reconciler's address (6069) was printed nowhere, and the summary left out gateway and portal."""
    for name in ("GATEWAY_PORT", "PORTAL_PORT", "ACCESS_PORT", "LAND_PORT", "LAND_SYSTEM"):
        monkeypatch.delenv(f"SHAREBUS_RUN_{name}", raising=False)
    settings = RunSettings()
    text = "\n".join(_doors(settings, landing=True))
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
