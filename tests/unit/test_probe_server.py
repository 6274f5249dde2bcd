"""The probe server answers /metrics from its registry, each probe with its own status and JSON body,
and anything else with 404."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client import CollectorRegistry, Counter

from sharebus_core.probe_server import serve_probes


def test_metrics_probes_and_unknown_paths() -> None:
    registry = CollectorRegistry()
    Counter("probe_test_things", "things", registry=registry).inc(3)
    healthy = {"now": False}

    def ready() -> tuple[int, Mapping[str, object]]:
        return (200 if healthy["now"] else 503), {"ready": healthy["now"]}

    server = serve_probes("127.0.0.1", 0, registry, {"/readyz": ready}, "probe-test")
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        metrics = httpx.get(f"{base}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert "probe_test_things_total 3.0" in metrics.text
        refused = httpx.get(f"{base}/readyz", timeout=10)
        assert (refused.status_code, refused.json()) == (503, {"ready": False})
        healthy["now"] = True
        answered = httpx.get(f"{base}/readyz", timeout=10)
        assert (answered.status_code, answered.json()) == (200, {"ready": True})
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 404
    finally:
        server.shutdown()
