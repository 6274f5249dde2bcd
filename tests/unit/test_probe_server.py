"""The probe server answers /metrics from its registry, each probe with its own status and JSON body,
and anything else with 404."""

from __future__ import annotations

import socket
from collections.abc import Mapping

import httpx
import pytest
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


def test_metrics_in_shards_and_a_bad_shard_refused() -> None:
    registry = CollectorRegistry()
    things = Counter("probe_test_classes", "per class", ["data_class"], registry=registry)
    for code in ("a/1", "b/2", "c/3", "d/4"):
        things.labels(code).inc()
    server = serve_probes("127.0.0.1", 0, registry, {}, "probe-shard-test")
    base = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        parts = [httpx.get(base, params={"shard": k, "shards": 2}, timeout=10) for k in range(2)]
        assert [part.status_code for part in parts] == [200, 200]
        lines = [
            line for part in parts for line in part.text.splitlines() if line.startswith("probe_test_classes_total{")
        ]
        assert len(lines) == 4
        zipped = httpx.get(base, params={"shard": 0, "shards": 2}, headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert zipped.text == parts[0].text
        refused = httpx.get(base, params={"shard": 2, "shards": 2}, timeout=10)
        assert refused.status_code == 400
        assert "shard 2 of 2" in refused.text
        assert httpx.get(f"{base}?shard=&shards=", timeout=10).status_code == 400
    finally:
        server.shutdown()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this host has no IPv6 loopback to bind")
def test_an_ipv6_host_is_served_with_openmetrics_and_named_samples() -> None:
    registry = CollectorRegistry()
    Counter("probe_test_one", "one", registry=registry).inc()
    Counter("probe_test_two", "two", registry=registry).inc(2)
    server = serve_probes("::1", 0, registry, {}, "probe-ipv6-test")
    base = f"http://[::1]:{server.server_address[1]}/metrics"
    try:
        answer = httpx.get(
            base, params={"name[]": "probe_test_two_total"}, headers={"Accept": "application/openmetrics-text"}
        )
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("application/openmetrics-text")
        assert "probe_test_two_total 2.0" in answer.text
        assert "probe_test_one" not in answer.text
        assert answer.text.endswith("# EOF\n")
    finally:
        server.shutdown()


def test_a_blank_host_binds_every_ipv4_address() -> None:
    registry = CollectorRegistry()
    Counter("probe_test_blank", "blank host", registry=registry).inc()
    server = serve_probes("", 0, registry, {}, "probe-blank-host-test")
    try:
        assert server.socket.family == socket.AF_INET
        answer = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=10)
        assert "probe_test_blank_total 1.0" in answer.text
    finally:
        server.shutdown()
