"""The gateway's limits on the real broker: body size (413), per-key rate (429), per-key open feeds,
and a revoked key's open feeds closed within seconds.

One router and gateway serve the module, with small limits; each test issues keys of its own, so the
per-key limits of one test never touch another's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_gateway.keys import KeyStore
from tests.integration.conftest import FIXTURE_CATALOGUE
from tests.support.gateway import GatewayProcess, parse_sse, start_gateway
from tests.support.identities import provision_bus
from tests.support.kafka import end_offsets, eventually, metric
from tests.support.keys import control_keys
from tests.support.names import unique
from tests.support.records import ENTERPRISE
from tests.support.registry import RegistryProcess
from tests.support.router import RouterProcess, start_router

pytestmark = pytest.mark.broker

MAX_BODY = 4096
RATE_PER_S, BURST = 2, 6
FEEDS_PER_KEY = 2


@dataclass
class Limited:
    access: KafkaAccess
    topics: TopicNames
    catalogue: Catalogue
    router: RouterProcess
    gateway: GatewayProcess

    def key(self, system: str) -> tuple[str, str]:
        """A fresh key of ``system`` (its own buckets and feeds), once the gateway knows it: (key id, token)."""
        issued = KeyStore(self.catalogue, self.access, self.topics.api_keys, control=control_keys()).issue(system)
        token = issued.token.get_secret_value()
        with self.gateway.client(token) as client:
            status = eventually(lambda: client.get("/v1/whoami").status_code, lambda code: code == 200, 20)
        assert status == 200
        return issued.key.key_id, token

    def ws_url(self, system: str) -> str:
        return self.gateway.base_url.replace("http://", "ws://") + f"/v1/systems/{system}/feed/ws"


@pytest.fixture(scope="module")
def limited(
    kafka_admin: KafkaAccess, shared_registry: RegistryProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Limited]:
    work = tmp_path_factory.mktemp("limits")
    namespace = unique("lim")
    services = provision_bus(kafka_admin, load_catalogue(FIXTURE_CATALOGUE), namespace, shared_registry.namespace)
    router = start_router(services["router"], namespace, shared_registry.url, FIXTURE_CATALOGUE, work)
    env = {
        "SHAREBUS_GATEWAY_MAX_BODY_BYTES": str(MAX_BODY),
        "SHAREBUS_GATEWAY_RATE_PER_S": str(RATE_PER_S),
        "SHAREBUS_GATEWAY_RATE_BURST": str(BURST),
        "SHAREBUS_GATEWAY_FEED_MAX_PER_KEY": str(FEEDS_PER_KEY),
        "SHAREBUS_GATEWAY_FEED_KEEPALIVE_S": "1",
    }
    try:
        gateway = start_gateway(
            services["gateway"], namespace, shared_registry.url, FIXTURE_CATALOGUE, work, extra_env=env
        )
    except BaseException:
        router.stop()
        raise
    try:
        yield Limited(kafka_admin, TopicNames(namespace), load_catalogue(FIXTURE_CATALOGUE), router, gateway)
    finally:
        gateway.stop()
        router.stop()


def test_an_oversize_body_is_413_before_it_is_parsed_declared_or_chunked(limited: Limited) -> None:
    _key_id, token = limited.key("amr-reg")
    path = f"/v1/classes/{ENTERPRISE}/records"
    oversize = b'{"uscc": "' + b"9" * MAX_BODY + b'"}'
    with limited.gateway.client(token) as amr:
        declared = amr.post(path, content=oversize, headers={"Content-Type": "application/json"})
        chunked = amr.post(
            path,
            content=iter([oversize[:3000], oversize[3000:]]),  # no Content-Length: Transfer-Encoding chunked
            headers={"Content-Type": "application/json"},
        )
        assert "content-length" not in chunked.request.headers
        # Under the limit, the same kind of body is read and parsed (an invalid record: 422).
        small = amr.post(path, json={"uscc": "9" * 100})
    assert (declared.status_code, chunked.status_code, small.status_code) == (413, 413, 422)
    assert f"larger than {MAX_BODY} bytes" in declared.json()["detail"]
    with limited.gateway.client() as anonymous:  # refused before authentication, too
        assert anonymous.post(path, content=oversize).status_code == 413
    assert end_offsets(limited.access, limited.topics.source(ENTERPRISE)) == 0
    metrics_url = f"{limited.gateway.base_url}/metrics"
    assert metric(metrics_url, "sharebus_gateway_throttled_total", reason="body_too_large") >= 3


def test_past_its_rate_a_key_gets_429_with_retry_after_and_other_keys_do_not(limited: Limited) -> None:
    _key_id, token = limited.key("tax-levy")
    _other_id, other = limited.key("psb-case")
    with limited.gateway.client(token) as tax:
        statuses = [tax.get("/v1/whoami") for _ in range(3 * BURST)]
        codes = [r.status_code for r in statuses]
        # The burst (less what waiting for the key took), then refusals; a token or two may refill meanwhile.
        assert codes.count(200) <= BURST + 1
        assert codes.count(429) >= BURST
        assert set(codes) == {200, 429}
        refused = next(r for r in statuses if r.status_code == 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert "too many requests for this API key" in refused.json()["detail"]
        with limited.gateway.client(other) as psb:
            assert psb.get("/v1/whoami").status_code == 200
        # The bucket refills at its rate: the key works again.
        assert eventually(lambda: tax.get("/v1/whoami").status_code, lambda code: code == 200, 10) == 200


def read_until_open(response: httpx.Response) -> Iterator[str]:
    lines = response.iter_lines()
    assert next(lines) == ": sharebus feed"  # the gateway's first line: the feed is open
    return lines


def test_a_key_may_hold_only_so_many_open_feeds(limited: Limited) -> None:
    _key_id, token = limited.key("tax-levy")
    feed = "/v1/systems/tax-levy/feed"
    timeout = httpx.Timeout(10.0, read=5.0)
    with (
        limited.gateway.client(token) as first_client,
        first_client.stream("GET", feed, timeout=timeout) as first,
        limited.gateway.client(token) as second_client,
        second_client.stream("GET", feed, timeout=timeout) as second,
    ):
        read_until_open(first)
        read_until_open(second)
        with limited.gateway.client(token) as third:
            refused = third.get(feed)
        assert refused.status_code == 429
        assert f"already has {FEEDS_PER_KEY} open feeds" in refused.json()["detail"]
        with pytest.raises(InvalidStatus) as ws_refused:  # WebSocket feeds count against the same cap
            connect(limited.ws_url("tax-levy"), additional_headers={"Authorization": f"Bearer {token}"}).close()
        assert ws_refused.value.response.status_code == 429
        _other_id, other = limited.key("hrss-si")  # another key is not held back
        with limited.gateway.client(other) as hrss, hrss.stream("GET", "/v1/systems/hrss-si/feed") as own:
            read_until_open(own)

    def reopened() -> int:
        with limited.gateway.client(token) as again, again.stream("GET", feed, timeout=timeout) as stream:
            return stream.status_code

    # Closed feeds free their places, once the gateway has seen the clients go.
    assert eventually(reopened, lambda status: status == 200, 20) == 200


def test_a_revoked_gateway_keys_open_feeds_are_closed(limited: Limited) -> None:
    key_id, token = limited.key("tax-levy")
    store = KeyStore(limited.catalogue, limited.access, limited.topics.api_keys, control=control_keys())
    headers = {"Authorization": f"Bearer {token}"}
    with (
        limited.gateway.client(token) as client,
        client.stream("GET", "/v1/systems/tax-levy/feed", timeout=httpx.Timeout(10.0, read=5.0)) as sse,
        connect(limited.ws_url("tax-levy"), additional_headers=headers) as ws,
    ):
        lines = read_until_open(sse)
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)  # open, and nothing to deliver yet
        store.revoke("tax-levy", key_id)
        revoked_at = time.monotonic()

        block: list[str] = []
        last = None
        for line in lines:  # keep-alives until the gateway ends the stream
            assert time.monotonic() - revoked_at < 15, "the revoked key's SSE feed is still open"
            if line:
                block.append(line)
                continue
            last = parse_sse(block) or last
            block = []
        sse_closed_after = time.monotonic() - revoked_at
        assert last is not None
        assert (last.event, last.data["reason"]) == ("error", "key_revoked")

        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        ws_closed_after = time.monotonic() - revoked_at
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason.startswith("key_revoked")
    assert sse_closed_after < 10
    assert ws_closed_after < 10
    metrics_url = f"{limited.gateway.base_url}/metrics"
    assert metric(metrics_url, "sharebus_gateway_feed_disconnects_total", reason="key_revoked") == 2
    assert eventually(lambda: metric(metrics_url, "sharebus_gateway_feed_connections"), lambda n: n == 0) == 0
