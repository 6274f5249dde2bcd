"""The probe server answers /metrics from its registry to the scrape token's holders only (401 and one
line to anyone else), each probe with its own status and JSON body (reduced to its status without the
token), and anything else with 404."""

from __future__ import annotations

import socket
from collections.abc import Mapping

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from sharebus_core.probe_server import serve_probes
from sharebus_core.scrape_auth import UNAUTHORIZED_BODY, ScrapeToken

TOKEN = ScrapeToken(SecretStr("t" * 43))
AUTH = TOKEN.headers


def test_metrics_probes_and_unknown_paths() -> None:
    registry = CollectorRegistry()
    Counter("probe_test_things", "things", registry=registry).inc(3)
    healthy = {"now": False}

    def ready() -> tuple[int, Mapping[str, object]]:
        return (200 if healthy["now"] else 503), {"ready": healthy["now"]}

    server = serve_probes("127.0.0.1", 0, registry, {"/readyz": ready}, "probe-test", TOKEN)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        metrics = httpx.get(f"{base}/metrics", headers=AUTH, timeout=10)
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
    server = serve_probes("127.0.0.1", 0, registry, {}, "probe-shard-test", TOKEN)
    base = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        parts = [httpx.get(base, params={"shard": k, "shards": 2}, headers=AUTH, timeout=10) for k in range(2)]
        assert [part.status_code for part in parts] == [200, 200]
        lines = [
            line for part in parts for line in part.text.splitlines() if line.startswith("probe_test_classes_total{")
        ]
        assert len(lines) == 4
        zipped = httpx.get(
            base, params={"shard": 0, "shards": 2}, headers={"Accept-Encoding": "gzip", **AUTH}, timeout=10
        )
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert zipped.text == parts[0].text
        refused = httpx.get(base, params={"shard": 2, "shards": 2}, headers=AUTH, timeout=10)
        assert refused.status_code == 400
        assert "shard 2 of 2" in refused.text
        assert httpx.get(f"{base}?shard=&shards=", headers=AUTH, timeout=10).status_code == 400
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
    server = serve_probes("::1", 0, registry, {}, "probe-ipv6-test", TOKEN)
    base = f"http://[::1]:{server.server_address[1]}/metrics"
    try:
        answer = httpx.get(
            base, params={"name[]": "probe_test_two_total"}, headers={"Accept": "application/openmetrics-text", **AUTH}
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
    server = serve_probes("", 0, registry, {}, "probe-blank-host-test", TOKEN)
    try:
        assert server.socket.family == socket.AF_INET
        answer = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/metrics", headers=AUTH, timeout=10)
        assert "probe_test_blank_total 1.0" in answer.text
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong-token-of-the-same-length-as-the-real-one",
        f"Basic {'t' * 43}",
        "t" * 43,
        f"Bearer {'t' * 42}",
        f"Bearer {'t' * 44}",
        f"Bearer {'t' * 42}\u00e9",
    ],
)
def test_metrics_without_the_token_is_401_and_one_line(authorization: str | None) -> None:
    registry = CollectorRegistry()
    Counter("probe_test_secret", "labels name classes", ["data_class"], registry=registry).labels("a/1").inc()
    server = serve_probes("127.0.0.1", 0, registry, {}, "probe-auth-test", TOKEN)
    base = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    headers: dict[bytes, bytes] = {} if authorization is None else {b"Authorization": authorization.encode("utf-8")}
    try:
        for params in ({}, {"shard": 0, "shards": 2}, {"name[]": "probe_test_secret_total"}):
            refused = httpx.get(base, params=params, headers={**headers, b"Accept-Encoding": b"gzip"}, timeout=10)
            assert refused.status_code == 401
            assert refused.content == UNAUTHORIZED_BODY
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert "Content-Encoding" not in refused.headers
    finally:
        server.shutdown()


def test_the_scheme_is_case_insensitive_and_the_right_token_is_served() -> None:
    registry = CollectorRegistry()
    Counter("probe_test_ok", "ok", registry=registry).inc()
    server = serve_probes("127.0.0.1", 0, registry, {}, "probe-auth-ok-test", TOKEN)
    base = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        for scheme in ("Bearer", "bearer", "BEARER"):
            answer = httpx.get(base, headers={"Authorization": f"{scheme} {'t' * 43}"}, timeout=10)
            assert answer.status_code == 200
            assert "probe_test_ok_total 1.0" in answer.text
    finally:
        server.shutdown()


def test_a_probe_tells_only_its_status_without_the_token() -> None:
    detail = {"ready": False, "removed_system_credentials": ["amr-lic"], "routes_closed": ["301001001/000001"]}

    def ready() -> tuple[int, Mapping[str, object]]:
        return 503, detail

    def alive() -> tuple[int, Mapping[str, object]]:
        return 200, {"status": "ok"}

    def healthy() -> tuple[int, Mapping[str, object]]:
        return 200, {"healthy": True, "district": "yubei", "schema_error": None}

    probes = {"/readyz": ready, "/healthz": alive, "/federation": healthy}
    server = serve_probes("127.0.0.1", 0, CollectorRegistry(), probes, "probe-body-test", TOKEN)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        anonymous = httpx.get(f"{base}/readyz", timeout=10)
        assert (anonymous.status_code, anonymous.json()) == (503, {"ready": False})
        trusted = httpx.get(f"{base}/readyz", headers=AUTH, timeout=10)
        assert (trusted.status_code, trusted.json()) == (503, detail)
        assert httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
        assert httpx.get(f"{base}/federation", timeout=10).json() == {"healthy": True}
        assert httpx.get(f"{base}/federation", headers=AUTH, timeout=10).json()["district"] == "yubei"
        # Unknown paths are 404 either way: there is nothing behind them.
        assert httpx.get(f"{base}/nothing", timeout=10).status_code == 404
    finally:
        server.shutdown()
