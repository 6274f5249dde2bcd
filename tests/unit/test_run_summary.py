"""What ``make run`` prints once the bus is up: every address the README's table promises."""

from __future__ import annotations

import pytest

from sharebus_cli.run import RunSettings, _doors


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
