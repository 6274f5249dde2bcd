"""The gateway's limits, without a broker: token buckets, feed caps and revocation signals, body size."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from sharebus_gateway.body_limit import BodyLimit
from sharebus_gateway.limits import OpenFeeds, TokenBuckets, TooManyFeeds, client_bucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate_per_key() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate_per_s=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes every half second
    assert buckets.take("b") == 0.0  # another key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.now += 60
    assert [buckets.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refilled to the burst, no more


def test_feeds_are_capped_per_key_and_in_all() -> None:
    async def scenario() -> None:
        feeds = OpenFeeds(per_key=2, total=3)
        first, _second = feeds.open("k1"), feeds.open("k1")
        with pytest.raises(TooManyFeeds) as per_key:
            feeds.open("k1")
        assert per_key.value.per_key
        assert "already has 2 open feeds" in str(per_key.value)
        feeds.open("k2")
        with pytest.raises(TooManyFeeds) as total:
            feeds.open("k3")
        assert not total.value.per_key
        feeds.close(first)
        feeds.close(first)  # twice is harmless
        assert feeds.count("k1") == 1
        assert feeds.count() == 2
        feeds.open("k1")

    asyncio.run(scenario())


def test_ending_a_key_signals_its_feeds_from_another_thread() -> None:
    async def scenario() -> None:
        feeds = OpenFeeds(per_key=4, total=10)
        revoked, other = [feeds.open("k1"), feeds.open("k1")], feeds.open("k2")
        signalled: list[int] = []
        thread = threading.Thread(target=lambda: signalled.append(feeds.end_key("k1")))
        thread.start()
        await asyncio.wait_for(asyncio.gather(*(t.ended.wait() for t in revoked)), 5)
        thread.join()
        assert signalled == [2]
        assert not other.ended.is_set()

    asyncio.run(scenario())


# --- the body limit ------------------------------------------------------------------------------


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that reads the whole body and answers its length."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def call(chunks: list[bytes], content_length: int | None) -> tuple[int, bytes, int]:
    """Runs a request through ``BodyLimit(echo_length, 100)``; returns the status, body and chunks read."""
    headers = [(b"content-length", str(content_length).encode())] if content_length is not None else []
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    read = 0

    async def receive() -> Message:
        nonlocal read
        read += 1
        if read > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(BodyLimit(echo_length, max_bytes=100)(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), read


def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    assert call([b"x" * 60, b"y" * 40], None)[:2] == (200, b"100")
    assert call([b"x" * 100], 100)[:2] == (200, b"100")


def test_a_declared_oversize_body_is_refused_before_any_of_it_is_read() -> None:
    status, body, read = call([b"x" * 101], 101)
    assert (status, read) == (413, 0)
    assert b"larger than 100 bytes" in body


def test_a_chunked_oversize_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    status, _body, read = call([b"x" * 60, b"x" * 60, b"x" * 60], None)
    assert (status, read) == (413, 2)
    # A body that lies about its length is counted too.
    assert call([b"x" * 60, b"x" * 60], 10)[0] == 413


def test_buckets_are_a_bounded_lru_forgetting_the_oldest() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate_per_s=1.0, burst=2, clock=clock, max_keys=100)
    assert [buckets.take("hot") for _ in range(2)] == [0.0, 0.0]
    for n in range(5_000):
        buckets.take(f"10.0.{n // 256}.{n % 256}")
        if n % 50 == 0:
            assert buckets.take("hot") > 0  # recently used: kept, and still empty
    assert len(buckets) == 100
    # The oldest newcomer is forgotten (at worst it gets a fresh burst), the bucket in use is not.
    assert buckets.take("10.0.0.0") == 0.0
    assert buckets.take("hot") > 0


def test_ipv6_callers_are_counted_by_their_64() -> None:
    assert client_bucket("2001:db8:1:2:aaaa::1") == client_bucket("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:3::1") != client_bucket("2001:db8:1:2::1")
    assert client_bucket("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_bucket("192.0.2.7") == "192.0.2.7"
    assert client_bucket("testclient") == "testclient"


def test_feeds_are_capped_per_address_whatever_key_opens_them() -> None:
    async def scenario() -> None:
        feeds = OpenFeeds(per_key=2, total=10)
        first = feeds.open("k1", address="192.0.2.7")
        feeds.open("k2", address="192.0.2.7")
        with pytest.raises(TooManyFeeds) as refused:
            feeds.open("k3", address="192.0.2.7")
        assert refused.value.per_key
        assert "your address" in str(refused.value)
        assert feeds.count("k3") == 0
        feeds.open("k3", address="192.0.2.8")
        feeds.close(first)
        feeds.open("k4", address="192.0.2.7")
        assert feeds.count() == 3

    asyncio.run(scenario())
