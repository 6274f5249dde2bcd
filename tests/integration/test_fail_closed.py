"""Failing closed on the real broker: unreadable control events deny, malformed ones never stop the router,
and a log follower that fails is restarted and reported down meanwhile."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from confluent_kafka import Message

from sharebus_core.compacted_log import LogFollower, append, ensure_compacted_topic
from sharebus_core.control_log import append_signed
from sharebus_core.kafka import KafkaAccess
from sharebus_core.produce import produce_confirmed
from sharebus_grants import GrantService
from tests.integration.conftest import FIXTURE_CATALOGUE, Bus
from tests.support.kafka import end_offsets, eventually, metric
from tests.support.keys import control_keys
from tests.support.names import unique
from tests.support.records import PENALTY, penalty, publish_records
from tests.support.router import start_router, wait_routed


def test_a_follower_that_fails_is_down_until_it_restarts_from_the_record_that_failed(
    kafka_admin: KafkaAccess, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = unique("follow")
    # How the follower's thread ends below is the point of the test: recorded here, not left to pytest's
    # hook (which would report it as an unhandled thread exception).
    thread_ends: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_ends.append(args.exc_value))
    ensure_compacted_topic(kafka_admin, topic)
    append(kafka_admin, topic, "a", b"1")
    seen: list[bytes] = []
    failing = threading.Event()
    dying = threading.Event()

    def on_record(msg: Message) -> None:
        if dying.is_set():
            dying.clear()
            raise SystemExit("the thread ends")  # not an Exception: only ensure_running brings it back
        if failing.is_set():
            raise RuntimeError("cannot apply the entry")
        seen.append(msg.value() or b"")

    follower = LogFollower(kafka_admin, topic, on_record, unique("follower"), restart_backoff_s=0.2, max_backoff_s=0.5)
    follower.start()
    try:
        assert eventually(lambda: follower.up, bool, timeout_s=30)
        failing.set()
        append(kafka_admin, topic, "b", b"2")
        assert eventually(lambda: follower.up, lambda up: not up, timeout_s=30) is False
        assert eventually(lambda: follower.restarts, lambda n: n >= 2, timeout_s=30) >= 2
        assert not follower.up  # still failing on the same record: still down
        failing.clear()
        assert eventually(lambda: follower.up, bool, timeout_s=30)
        assert seen == [b"1", b"2"]  # nothing skipped, nothing twice

        dying.set()
        append(kafka_admin, topic, "c", b"3")
        assert eventually(lambda: follower.up, lambda up: not up, timeout_s=30) is False
        # The thread clears caught_up on its way out and stays alive a moment longer: a supervisor asks again.
        assert eventually(follower.ensure_running, bool, timeout_s=30)
        assert [repr(end) for end in thread_ends] == [repr(SystemExit("the thread ends"))]
        assert eventually(lambda: follower.up, bool, timeout_s=30)
        assert seen == [b"1", b"2", b"3"]
    finally:
        follower.stop()


def delivered_to_tax(bus: Bus) -> int:
    return end_offsets(bus.access, bus.topics.delivery("tax-levy"))


def test_an_unreadable_revocation_denies_and_malformed_control_records_do_not_stop_the_router(
    bus: Bus, tmp_path: Path
) -> None:
    service = GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())
    grant = service.apply(
        department="TAX",
        requester="officer Li",
        consumer="tax-levy",
        data_class=PENALTY,
        purpose="tax credit rating",
        scenario="annual rating",
        fields=["uscc", "seq"],
    )
    approved = service.approve(grant.grant_id, department="AMR")
    wait_routed(bus.router, 2)
    publish_records(bus.settings, PENALTY, (penalty(seq) for seq in range(3)))
    assert eventually(lambda: delivered_to_tax(bus), lambda n: n >= 3, timeout_s=30) == 3

    # The control plane's next event of the grant cannot be read by this router (a newer format).
    unreadable = approved.model_dump_json().replace('"state"', '"state_v2"').encode()
    append_signed(bus.access, bus.topics.grants, grant.grant_id, unreadable, control_keys().signing())
    wait_routed(bus.router, 3)
    url = bus.router.metrics_url
    assert metric(url, "sharebus_grants_unreadable") == 1
    publish_records(bus.settings, PENALTY, (penalty(seq) for seq in range(3, 6)))
    denied = eventually(
        lambda: metric(url, "sharebus_denials_total", consumer="tax-levy", data_class=PENALTY),
        lambda n: n >= 3,
        timeout_s=30,
    )
    assert denied == 3
    assert delivered_to_tax(bus) == 3

    # A grant whose times have no zone, and a hand-over record that is not JSON: a router starting
    # now still becomes ready (start_router waits for /readyz), and the grant is closed, not applied.
    doc = json.loads(approved.model_dump_json())
    doc.update(grant_id="g-naive", applied_at=dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat())
    append_signed(bus.access, bus.topics.grants, "g-naive", json.dumps(doc).encode(), control_keys().signing())
    produce_confirmed(bus.access, bus.topics.handover, b"tax-levy|x|y", b"not json")
    bus.router.stop()
    bus.router = start_router(
        bus.services["router"], bus.namespace, bus.registry_url, FIXTURE_CATALOGUE, tmp_path / "second"
    )
    assert metric(bus.router.metrics_url, "sharebus_grants_unreadable") == 2
    up = eventually(
        lambda: metric(bus.router.metrics_url, "sharebus_follower_up", follower="grant-follower"),
        lambda n: n == 1,
        timeout_s=10,
    )
    assert up == 1
    publish_records(bus.settings, PENALTY, (penalty(seq) for seq in range(6, 9)))
    assert (
        eventually(
            lambda: metric(bus.router.metrics_url, "sharebus_denials_total", consumer="tax-levy", data_class=PENALTY),
            lambda n: n >= 3,
            timeout_s=30,
        )
        == 3
    )
    assert delivered_to_tax(bus) == 3
