"""sharebus land on the real broker, into SQLite and a real PostgreSQL: exactly once through SIGKILLs."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from sharebus_broker.launcher import free_port
from sharebus_cli.run_access import RunIdentities
from sharebus_cli.run_services import start_land
from sharebus_cli.run_settings import RunSettings
from sharebus_core import headers as h
from sharebus_grants import GrantService
from sharebus_land.layout import class_table
from tests.integration.conftest import FIXTURE_CATALOGUE, Bus, ClockedBus, GatewayBus
from tests.support import kafka
from tests.support.kafka import eventually, metric
from tests.support.keys import control_keys
from tests.support.land import Landed, database_url, sink_env, start_sink, system_access
from tests.support.postgres import postgres  # noqa: F401  (the session's PostgreSQL server fixture)
from tests.support.records import (
    ENTERPRISE,
    PENALTY,
    STATS,
    enterprise,
    penalty,
    publish_enterprises,
    publish_records,
)
from tests.support.router import wait_routed

TABLE = class_table(ENTERPRISE)
COUNT = 10_000


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url(request.param, request, tmp_path)


@pytest.fixture
def landed(db_url: str) -> Iterator[Landed]:
    reader = Landed(db_url)
    yield reader
    reader.dispose()


def end_offsets(bus: Bus, topic: str) -> dict[int, int]:
    consumer = bus.access.consumer({"group.id": f"{bus.namespace}-probe"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def _more_than(before: int) -> Callable[[int], bool]:
    return lambda n: n > before or n == COUNT


def test_ten_thousand_records_through_three_sigkills_land_exactly_once(
    bus: Bus, db_url: str, landed: Landed, tmp_path: Path
) -> None:
    env = sink_env(bus, system_access(bus, "tax-levy"), "tax-levy", db_url, {"SHAREBUS_LAND_MAX_RECORDS": "250"})
    publisher = threading.Thread(target=publish_enterprises, args=(bus.settings, range(COUNT)))
    publisher.start()
    sink = start_sink(env, tmp_path / "land-0.log")
    rng = random.Random()
    try:
        for kill in range(1, 4):
            before = landed.count(TABLE)
            grew = eventually(lambda: landed.count(TABLE), _more_than(before), 90)
            assert grew > before or grew == COUNT, f"the sink landed nothing new before kill {kill}:\n{sink.tail()}"
            # A random moment inside the run, not a wait for a condition: where the kill lands is the test.
            time.sleep(rng.uniform(0.0, 0.8))
            sink.kill()  # SIGKILL: no commit, no close, no goodbye
            sink = start_sink(env, tmp_path / f"land-{kill}.log")
        publisher.join(120)
        rows = eventually(lambda: landed.rows(TABLE), lambda r: len(r) >= COUNT, 120)
    finally:
        sink.stop()
        publisher.join(120)

    keys = sorted(int(r["uscc"][1:]) for r in rows)
    assert keys == list(range(COUNT)), f"{len(rows)} rows: missing {sorted(set(range(COUNT)) - set(keys))[:10]}"
    for row in rows:
        assert row["seq"] == int(row["uscc"][1:])
        assert row["_provider"] == "AMR"
        assert row["_record_id"]
        assert row["_landed_at"] is not None
    # The database's own offsets cover the whole topic: nothing left to read, nothing read twice.
    stored = {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in landed.rows("sharebus_offsets")}
    topic = bus.topics.delivery("tax-levy")
    assert {p: stored.get((topic, p), 0) for p in end_offsets(bus, topic)} == end_offsets(bus, topic)


def stats_record(seq: int) -> dict[str, Any]:
    """A daily licence statistics record of a district of its own (the key), so every record is a row."""
    return {"district_code": f"D{seq:05d}", "issued": seq, "seq": seq}


def held(bus: Bus, expected: int) -> int:
    """Distinct records (not release markers) on the held topic, once at least ``expected`` are there."""

    def count() -> int:
        total = kafka.end_offsets(bus.access, bus.topics.held)
        metas = [h.header_map(m.headers()) for m in kafka.read_all(bus.access, bus.topics.held, total, timeout_s=10)]
        return len({meta[h.RECORD_ID] for meta in metas if h.MARKER not in meta})

    return eventually(count, lambda n: n >= expected, timeout_s=90)


def test_a_periodic_batch_killed_half_way_is_absent_or_whole(
    clocked: ClockedBus, db_url: str, landed: Landed, tmp_path: Path
) -> None:
    bus, batch_size = clocked.bus, 3000
    table = class_table(STATS)
    window = clocked.window(STATS)
    publish_records(bus.settings, STATS, [stats_record(seq) for seq in range(batch_size)])
    assert held(bus, batch_size) == batch_size  # all held before the window ends, so the batch is all of them
    env = sink_env(bus, system_access(bus, "hrss-si"), "hrss-si", db_url, {"SHAREBUS_LAND_MAX_RECORDS": "100"})
    sink = start_sink(env, tmp_path / "land-0.log")
    seen: list[int] = []
    try:
        # Held until the window ends: the router releases it once its clock has passed.
        eventually(lambda: landed.has("sharebus_offsets"), bool, 60)
        clocked.move_clock_past(window.end)
        topic = bus.topics.delivery("hrss-si")
        eventually(lambda: sum(end_offsets(bus, topic).values()), lambda n: n > 0, 90)
        deadline = time.monotonic() + random.uniform(0.0, 1.5)
        while time.monotonic() < deadline:  # a reader watching while the batch lands
            seen.append(landed.count(table))
        sink.kill()
        seen.append(landed.count(table))
        sink = start_sink(env, tmp_path / "land-1.log")
        seen.append(eventually(lambda: landed.count(table), lambda n: n >= batch_size, 120))
    finally:
        sink.stop()
    assert set(seen) <= {0, batch_size}, f"a reader saw part of a batch: {sorted(set(seen))}"
    assert seen[-1] == batch_size
    batches = landed.rows("sharebus_batches")
    assert [(b["data_class"], b["records"]) for b in batches] == [(STATS, batch_size)]
    rows = landed.rows(table)
    assert sorted(r["seq"] for r in rows) == list(range(batch_size))


@pytest.mark.parametrize("policy", ["keep", "purge"])
def test_a_revoked_grant_stops_new_rows_and_keeps_or_purges_the_landed_ones(
    gateway_bus: GatewayBus, policy: str, tmp_path: Path
) -> None:
    bus = gateway_bus.bus
    url = f"sqlite:///{tmp_path / 'land.db'}"
    landed = Landed(url)
    table = class_table(PENALTY)
    grants = GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())
    grant = grants.apply(
        department="TAX",
        requester="officer Li",
        consumer="tax-levy",
        data_class=PENALTY,
        purpose="tax credit rating",
        scenario="annual rating",
        fields=["uscc", "person_id_number", "seq"],
        masked_fields=["person_id_number"],
    )
    grants.approve(grant.grant_id, department="AMR")
    wait_routed(bus.router, 2)
    extra = {
        "SHAREBUS_LAND_ON_REVOKE": policy,
        "SHAREBUS_LAND_GATEWAY_URL": gateway_bus.gateway.base_url,
        "SHAREBUS_LAND_API_KEY": gateway_bus.tokens["tax-levy"],
        "SHAREBUS_LAND_GRANT_POLL_S": "0.5",
    }
    sink = start_sink(sink_env(bus, system_access(bus, "tax-levy"), "tax-levy", url, extra), tmp_path / "land.log")
    try:
        publish_records(bus.settings, PENALTY, [penalty(seq) for seq in range(5)])
        assert eventually(lambda: landed.count(table), lambda n: n >= 5, 60) == 5, sink.tail()
        assert {r["person_id_number"] for r in landed.rows(table)} == {"110105********002X"}  # masked as delivered
        assert "amount" not in landed.columns(table)  # not granted, so no column

        grants.revoke(grant.grant_id, department="AMR", reason="rating finished")
        wait_routed(bus.router, 3)
        states = eventually(lambda: landed.rows("sharebus_classes"), lambda rows: bool(rows), 30)
        assert [(s["data_class"], s["state"]) for s in states] == [(PENALTY, "revoked")]
        publish_records(bus.settings, PENALTY, [penalty(seq) for seq in range(5, 8)])
        labels = {"consumer": "tax-levy", "data_class": PENALTY, "reason": "grant_revoked"}
        denied = eventually(
            lambda: metric(bus.router.metrics_url, "sharebus_denials_total", **labels), lambda v: v >= 3
        )
        assert denied == 3
        expected = 5 if policy == "keep" else 0
        assert landed.count(table) == expected
        assert sorted(r["seq"] for r in landed.rows(table)) == list(range(expected))
    finally:
        sink.stop()
        landed.dispose()


def _grant_penalty(grants: GrantService, fields: list[str], masked: list[str] | None = None) -> str:
    grant = grants.apply(
        department="TAX",
        requester="officer Li",
        consumer="tax-levy",
        data_class=PENALTY,
        purpose="tax credit rating",
        scenario="annual rating",
        fields=fields,
        masked_fields=masked or [],
    )
    grants.approve(grant.grant_id, department="AMR")
    return grant.grant_id


def test_a_compatible_schema_change_adds_a_column_live_and_an_incompatible_one_stops_only_its_class(
    bus: Bus, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'land.db'}"
    landed, table = Landed(url), class_table(PENALTY)
    grants = GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())
    first = _grant_penalty(grants, ["uscc", "seq"])
    wait_routed(bus.router, 2)
    sink = start_sink(sink_env(bus, system_access(bus, "tax-levy"), "tax-levy", url), tmp_path / "land.log")
    try:
        publish_records(bus.settings, PENALTY, [penalty(seq) for seq in range(3)])
        assert eventually(lambda: landed.count(table), lambda n: n >= 3, 60) == 3, sink.tail()
        assert "amount" not in landed.columns(table)

        # A wider grant: the delivered schema gains "amount", and so does the table, while the sink runs.
        grants.revoke(first, department="AMR", reason="widened")
        wider = _grant_penalty(grants, ["uscc", "seq", "amount"])
        wait_routed(bus.router, 5)
        publish_records(bus.settings, PENALTY, [penalty(seq) for seq in range(3, 6)])
        rows = eventually(lambda: landed.rows(table), lambda r: len(r) >= 6, 60)
        amounts = {r["seq"]: r["amount"] for r in rows}
        assert amounts == {0: None, 1: None, 2: None, 3: 103.0, 4: 104.0, 5: 105.0}

        # The same field now masked: a double becomes text. That class stops; the others go on.
        grants.revoke(wider, department="AMR", reason="masking")
        _grant_penalty(grants, ["uscc", "seq", "amount"], ["amount"])
        wait_routed(bus.router, 8)
        publish_records(bus.settings, PENALTY, [penalty(seq) for seq in range(6, 9)])
        states = eventually(lambda: landed.rows("sharebus_classes"), bool, 60)
        assert [(s["data_class"], s["state"]) for s in states] == [(PENALTY, "stopped")]
        assert "'amount' holds double values" in states[0]["reason"]
        publish_enterprises(bus.settings, range(20))
        enterprise_table = class_table(ENTERPRISE)
        assert eventually(lambda: landed.count(enterprise_table), lambda n: n >= 20, 60) == 20
        assert landed.count(table) == 6
    finally:
        sink.stop()
        landed.dispose()


def test_a_theme_table_merges_two_classes_by_key(bus: Bus, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'land.db'}"
    landed = Landed(url)
    grants = GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())
    _grant_penalty(grants, ["uscc", "seq", "amount"])
    wait_routed(bus.router, 2)
    theme = {"SHAREBUS_LAND_THEMES": json.dumps({"enterprise": [ENTERPRISE, PENALTY]})}
    env = sink_env(bus, system_access(bus, "tax-levy"), "tax-levy", url, theme)
    sink = start_sink(env, tmp_path / "land.log")
    try:
        # Both classes keyed by the same unified social credit codes; penalties for the even ones only.
        publish_records(
            bus.settings, ENTERPRISE, [{**enterprise(seq), "uscc": penalty(seq)["uscc"]} for seq in range(6)]
        )
        publish_records(bus.settings, PENALTY, [penalty(seq) for seq in range(0, 6, 2)])
        rows = eventually(lambda: landed.rows("enterprise"), _theme_complete, 60)
    finally:
        sink.stop()
        landed.dispose()
    by_key = {r["uscc"]: r for r in rows}
    assert sorted(by_key) == sorted(penalty(seq)["uscc"] for seq in range(6))
    for seq in range(6):
        row = by_key[penalty(seq)["uscc"]]
        assert row["name"] == "n"  # the enterprise class's own field, unprefixed
        assert row["c301001001_000001_seq"] == seq  # both classes have "seq": prefixed by class
        assert row["c301001002_000001_seq"] == (seq if seq % 2 == 0 else None)
        assert row["amount"] == (100.0 + seq if seq % 2 == 0 else None)
        assert row["c301001001_000001_provider"] == "AMR"


def _theme_complete(rows: list[dict[str, Any]]) -> bool:
    return len(rows) >= 6 and sum(r.get("c301001002_000001_seq") is not None for r in rows) >= 3


def test_make_run_starts_the_demo_sink_with_the_systems_credential(gateway_bus: GatewayBus, tmp_path: Path) -> None:
    """``sharebus run --demo`` starts the sink this way (``start_land``); the whole demo is tests/e2e's."""
    bus = gateway_bus.bus
    settings = RunSettings(
        gateway_port=int(gateway_bus.gateway.base_url.rsplit(":", 1)[1]),
        land_system="tax-levy",
        land_dir=tmp_path / "land",
        land_port=free_port(),
        log_dir=tmp_path / "logs",
        catalogue_dir=FIXTURE_CATALOGUE,
        namespace=bus.namespace,
        registry_url=bus.registry_url,
    )
    who = RunIdentities(bus.access, bus.services, {"tax-levy": system_access(bus, "tax-levy")}, tmp_path / "creds")
    env = {
        "SHAREBUS_NAMESPACE": bus.namespace,
        "SHAREBUS_REGISTRY_URL": bus.registry_url,
        "SHAREBUS_CATALOGUE_DIR": str(FIXTURE_CATALOGUE),
    }
    landed = Landed(f"sqlite:///{tmp_path / 'land' / 'tax-levy.db'}")
    with ExitStack() as stack:
        child = start_land(stack, settings, who, env, gateway_bus.tokens["tax-levy"])
        publish_enterprises(bus.settings, range(5))
        assert eventually(lambda: landed.count(TABLE), lambda n: n >= 5, 60) == 5, child.tail()
    assert not child.alive()
    landed.dispose()
