"""A district bus and the city bus, two real clusters, joined by MirrorMaker 2 (docs/federation.md)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.cimpl import NewTopic
from prometheus_client import CollectorRegistry

from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_federation.access import provision_mirror, revoke_mirror
from sharebus_federation.follower import SchemaFollower
from sharebus_federation.metrics import FederationCollector
from sharebus_federation.mirror import MirrorMaker
from sharebus_federation.plan import CITY, Federation, plan_for, schema_subjects
from sharebus_federation.schemas import RegistryEnd
from sharebus_federation.settings import FederationSettings
from sharebus_grants import GrantService
from sharebus_grants.service import GrantNotFound
from sharebus_registry.state import ID_SPAN
from sharebus_sdk import Publisher, PublisherSettings
from tests.support.identities import provision_bus, provision_registry
from tests.support.kafka import end_offsets, eventually, metric, read_all
from tests.support.keys import control_keys
from tests.support.names import unique
from tests.support.records import PENALTY, penalty
from tests.support.registry import RegistryProcess, start_registry
from tests.support.router import RouterProcess, start_router, wait_routed
from tests.support.subscribe import collect

# Two clusters, two registries, two routers and MirrorMaker 2 (whose start alone took 2.5 min on this
# loaded two-core machine): far beyond the suite's default 300 s.
pytestmark = pytest.mark.timeout(1200)

DISTRICT = "yubei"


def _create(admin: KafkaAccess, *topics: str, partitions: int = 2) -> None:
    client = admin.admin()  # held: futures of a collected client never resolve
    futures = client.create_topics([NewTopic(t, partitions, 1) for t in topics])
    for future in futures.values():
        future.result(30)


def _produce(admin: KafkaAccess, topic: str, seqs: range) -> None:
    producer = admin.producer()
    for seq in seqs:
        producer.produce(topic, key=str(seq).encode(), value=f"v{seq}".encode(), headers=[("h", str(seq).encode())])
        producer.poll(0)
    assert producer.flush(30) == 0


@pytest.fixture
def mirror_topics(kafka_admin: KafkaAccess, district_admin: KafkaAccess) -> tuple[Federation, str, str]:
    ns = unique("fed")
    up, down, private = f"{ns}.src.d1", f"{ns}.dlv.yb-sys", f"{ns}.src.private"
    _create(district_admin, up, private)
    _create(kafka_admin, down)
    return Federation(ns, DISTRICT, up=(up,), down=(down,)), up, private


@pytest.fixture
def mirror(
    kafka_admin: KafkaAccess,
    district_admin: KafkaAccess,
    mirror_topics: tuple[Federation, str, str],
    tmp_path: Path,
) -> Iterator[MirrorMaker]:
    plan = mirror_topics[0]
    accesses = provision_mirror(plan, kafka_admin, district_admin)
    settings = FederationSettings(namespace=plan.namespace, district=DISTRICT, data_dir=tmp_path / "mm2")
    maker = MirrorMaker(settings, plan, accesses[CITY], accesses[DISTRICT])
    try:
        yield maker.start()
    finally:
        maker.stop()
        revoke_mirror(plan, kafka_admin, district_admin)


def test_mirror_copies_only_federated_topics_and_loses_nothing_on_restart(
    kafka_admin: KafkaAccess,
    district_admin: KafkaAccess,
    mirror_topics: tuple[Federation, str, str],
    mirror: MirrorMaker,
) -> None:
    plan, up, private = mirror_topics
    down = plan.down[0]
    assert mirror.health().mirroring
    _produce(district_admin, up, range(0, 500))
    _produce(district_admin, private, range(0, 50))
    _produce(kafka_admin, down, range(0, 100))
    assert eventually(lambda: end_offsets(kafka_admin, up), lambda n: n >= 500, timeout_s=180) == 500
    assert eventually(lambda: end_offsets(district_admin, down), lambda n: n >= 100, timeout_s=180) == 100

    # Restarted mid-stream: what was produced while it was down arrives, once.
    _produce(district_admin, up, range(500, 700))
    mirror.restart()
    _produce(district_admin, up, range(700, 1000))
    assert eventually(lambda: end_offsets(kafka_admin, up), lambda n: n >= 1000, timeout_s=240) == 1000
    seqs = sorted(int(m.key() or b"-1") for m in read_all(kafka_admin, up, 1000))
    assert seqs == list(range(1000))
    headers = {int(m.key() or b"-1"): dict(m.headers() or []) for m in read_all(kafka_admin, up, 1000)}
    assert headers[999]["h"] == b"999"

    # The topic not federated never crossed, and MirrorMaker's principal cannot even read it.
    city_topics = kafka_admin.admin().list_topics(timeout=10).topics
    assert private not in city_topics
    seen = mirror.accesses[DISTRICT].admin().list_topics(timeout=10).topics
    assert up in seen
    assert private not in seen  # not even described to it
    described = mirror.accesses[DISTRICT].admin().list_topics(private, timeout=10).topics[private]
    assert described.error is not None
    assert described.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


# --- two buses, each with its own cluster, registry and router, joined by MirrorMaker 2 -------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "federation"
CITY_CATALOGUE, DISTRICT_CATALOGUE = FIXTURES / "city", FIXTURES / "yubei"
UP_CLASS = "301002001/000001"  # Yubei's penalties, federate: city
CITY_CLASS = PENALTY  # the city's own penalties (AMR)
GRANTED = ["uscc", "person_id_number", "seq"]
MASKED_ID = "110105********002X"


@dataclass
class Side:
    """One bus of the federation: the admin's access to its cluster and its running services."""

    admin: KafkaAccess
    namespace: str
    catalogue_dir: Path
    registry: RegistryProcess
    router: RouterProcess

    @property
    def settings(self) -> BusSettings:
        return BusSettings(
            **self.admin.settings_fields(),
            namespace=self.namespace,
            registry_url=self.registry.url,
            catalogue_dir=self.catalogue_dir,
        )

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.namespace)

    def grants(self) -> GrantService:
        return GrantService(load_catalogue(self.catalogue_dir), self.admin, self.topics.grants, control=control_keys())


@dataclass
class Federated:
    city: Side
    district: Side
    mirror: MirrorMaker
    follower: SchemaFollower


def _start_side(
    admin: KafkaAccess, namespace: str, catalogue_dir: Path, work: Path, registry_env: dict[str, str]
) -> Side:
    catalogue = load_catalogue(catalogue_dir)
    services = provision_bus(admin, catalogue, namespace, namespace)
    registry_access = provision_registry(admin, catalogue, namespace)
    registry = start_registry(registry_access, namespace, work, extra_env=registry_env)
    try:
        router = start_router(services["router"], namespace, registry.url, catalogue_dir, work)
    except Exception:
        registry.stop()
        raise
    return Side(admin, namespace, catalogue_dir, registry, router)


@pytest.fixture
def federated(kafka_admin: KafkaAccess, district_admin: KafkaAccess, tmp_path: Path) -> Iterator[Federated]:
    """The city bus on the session's cluster, Yubei's on the second, in one namespace name (each its own)."""
    ns = unique("fed")
    first_id = {"SHAREBUS_REGISTRY_FIRST_ID": str(1 + ID_SPAN)}  # Yubei's ids never collide with the city's
    district = _start_side(district_admin, ns, DISTRICT_CATALOGUE, tmp_path / "yubei", first_id)
    stack = [district.router.stop, district.registry.stop]
    try:
        city = _start_side(kafka_admin, ns, CITY_CATALOGUE, tmp_path / "city", {})
        stack += [city.router.stop, city.registry.stop]
        plan = plan_for(ns, DISTRICT, load_catalogue(DISTRICT_CATALOGUE))
        accesses = provision_mirror(plan, kafka_admin, district_admin)
        stack.append(lambda: revoke_mirror(plan, kafka_admin, district_admin))
        settings = FederationSettings(namespace=ns, district=DISTRICT, data_dir=tmp_path / "mm2")
        mirror = MirrorMaker(settings, plan, accesses[CITY], accesses[DISTRICT])
        city_reg = RegistryEnd(city.registry.url, city.registry.auth)
        district_reg = RegistryEnd(district.registry.url, district.registry.auth)
        follower = SchemaFollower(
            city_reg, district_reg, schema_subjects(plan, "up"), schema_subjects(plan, "down"), district_code=DISTRICT
        )
        follower.run_once()
        assert follower.state.ranges is not None, follower.last_error  # the two registries' id ranges are disjoint
        stack.append(follower.start().stop)
        mirror.start()
        stack.append(mirror.stop)
        yield Federated(city, district, mirror, follower)
    finally:
        for stop in reversed(stack):
            stop()


def _publish(side: Side, department: str, class_code: str, seqs: range) -> None:
    catalogue = load_catalogue(side.catalogue_dir)
    settings = PublisherSettings.model_validate(side.settings.model_dump())
    with Publisher(department, settings, catalogue) as pub:
        for seq in seqs:
            pub.publish(class_code, penalty(seq))


def _denied(side: Side, consumer: str, class_code: str, reason: str, at_least: int) -> float:
    labels = {"consumer": consumer, "data_class": class_code, "reason": reason}
    url = side.router.metrics_url
    return eventually(lambda: metric(url, "sharebus_denials_total", **labels), lambda v: v >= at_least, 240)


def _has_subject(side: Side, subject: str) -> bool:
    with RegistryEnd(side.registry.url, side.registry.auth).client() as client:
        return client.get(f"/subjects/{subject}/versions").status_code == 200


def _facts(side: Side, class_code: str) -> list[dict[str, Any]]:
    """The audit facts the side's router wrote for a class, as the auditor reads them."""
    topic = side.topics.audit_facts
    messages = read_all(side.admin, topic, end_offsets(side.admin, topic))
    return [f for m in messages for f in json.loads(m.value() or b"{}")["records"] if f["data_class"] == class_code]


def _cross_level(side: Side, direction: str, at_least: int) -> float:
    labels = {"direction": direction, "district": DISTRICT}
    url = side.router.metrics_url
    return eventually(lambda: metric(url, "sharebus_cross_level_records_total", **labels), lambda v: v >= at_least, 60)


def _granted_view(seq: int) -> dict[str, object]:
    return {"uscc": penalty(seq)["uscc"], "person_id_number": MASKED_ID, "seq": seq}


def test_a_district_class_flows_up_to_a_city_subscriber_under_the_districts_grant(federated: Federated) -> None:
    city, district = federated.city, federated.district
    # The class is in the city's catalogue as Yubei's: code, owner and schema carried over.
    entry = load_catalogue(CITY_CATALOGUE).data_class(UP_CLASS)
    assert entry.provider == "YBAMR"
    grants = city.grants()
    grant = grants.apply(
        department="TAX",
        requester="officer Li",
        consumer="tax-levy",
        data_class=UP_CLASS,
        purpose="tax credit rating",
        scenario="district penalties in the city's rating",
        fields=GRANTED,
        masked_fields=["person_id_number"],
    )
    with pytest.raises(GrantNotFound):  # the city's own regulator does not even see Yubei's grants
        grants.approve(grant.grant_id, department="AMR", valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    grants.approve(grant.grant_id, department="YBAMR", valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    wait_routed(city.router, 2)

    # Published on the district's bus; MirrorMaker 2 restarted mid-stream loses nothing.
    _publish(district, "YBAMR", UP_CLASS, range(0, 40))
    federated.mirror.restart()
    _publish(district, "YBAMR", UP_CLASS, range(40, 80))
    received = collect(city.settings, "tax-levy", 80, idle_timeout_s=120)
    assert sorted(d.value["seq"] for d in received.deliveries) == list(range(80))
    assert all(d.value == _granted_view(d.value["seq"]) for d in received.deliveries)
    assert {d.provider for d in received.deliveries} == {"YBAMR"}
    # The district's schema id resolved in the city's registry: imported with its id, not re-numbered.
    assert federated.follower.imported >= 1
    assert metric(city.router.metrics_url, "sharebus_dead_letters_total") == 0
    registry = CollectorRegistry()
    registry.register(FederationCollector(load_catalogue(CITY_CATALOGUE), federated.mirror, federated.follower))
    assert registry.get_sample_value("sharebus_federation_mirroring", {"district": DISTRICT}) == 1
    flow_up = {"district": DISTRICT, "direction": "up"}
    assert registry.get_sample_value("sharebus_federation_flow_running", flow_up) == 1
    assert (registry.get_sample_value("sharebus_federation_schemas_imported_total", {"district": DISTRICT}) or 0) >= 1
    level = {"department": "YBAMR", "level": "district", "district": DISTRICT}
    assert registry.get_sample_value("sharebus_department_level_info", level) == 1
    # The city's router counts and audits the flow as Yubei's, up.
    assert _cross_level(city, "up", 80) == 80
    assert _cross_level(city, "down", 0) == 0
    delivered = [f for f in _facts(city, UP_CLASS) if any(d["decision"] == "deliver" for d in f["decisions"])]
    assert len(delivered) >= 80
    assert all((f["provider_level"], f["provider_district"]) == ("district", DISTRICT) for f in delivered)

    grants.revoke(grant.grant_id, department="YBAMR", reason="rating finished")
    wait_routed(city.router, 3)
    _publish(district, "YBAMR", UP_CLASS, range(80, 85))
    assert _denied(city, "tax-levy", UP_CLASS, "grant_revoked", 5) >= 5
    assert end_offsets(city.admin, city.topics.delivery("tax-levy")) == 80

    # Fail closed: a record carrying an id that no registry imported is dead-lettered by the city's
    # router after crossing, never decoded by a guess.
    unknown = 1 + ID_SPAN + 999_999
    producer = district.admin.producer()
    producer.produce(district.topics.source(UP_CLASS), key=b"k", value=b"\x00" + unknown.to_bytes(4, "big") + b"x")
    assert producer.flush(30) == 0
    labels = {"data_class": UP_CLASS, "reason": "unknown_schema_id"}
    url = city.router.metrics_url
    assert eventually(lambda: metric(url, "sharebus_dead_letters_total", **labels), lambda v: v >= 1, 240) == 1


def test_a_city_class_granted_down_reaches_the_district_with_the_grants_fields_only(federated: Federated) -> None:
    city, district = federated.city, federated.district
    grants = city.grants()
    grant = grants.apply(
        department="YBTAX",
        requester="district officer Wang",
        consumer="yb-tax",
        data_class=CITY_CLASS,
        purpose="district tax audit",
        scenario="returning city penalties to the district (回流)",
        fields=GRANTED,
        masked_fields=["person_id_number"],
    )
    grants.approve(grant.grant_id, department="AMR", valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    wait_routed(city.router, 2)
    # The grant's projection schema is registered in the city's registry when the route is built; the
    # follower imports it into Yubei's a moment later. The records go at once: a district subscriber that
    # meets one before its schema asks its registry again (bounded) rather than skipping it.
    _publish(city, "AMR", CITY_CLASS, range(0, 20))

    # Served by the district's own bus: its cluster, its registry (the projection's id imported).
    received = collect(district.settings, "yb-tax", 20, idle_timeout_s=120)
    assert sorted(d.value["seq"] for d in received.deliveries) == list(range(20))
    assert all(d.value == _granted_view(d.value["seq"]) for d in received.deliveries)  # no "amount"
    assert all(d.consumer == "yb-tax" and d.provider == "AMR" for d in received.deliveries)
    assert _has_subject(district, city.topics.projection_subject("yb-tax", CITY_CLASS))
    assert _cross_level(city, "down", 20) == 20
    to_district = [d for f in _facts(city, CITY_CLASS) for d in f["decisions"] if d["consumer"] == "yb-tax"]
    assert len(to_district) >= 20
    assert all((d["consumer_level"], d["consumer_district"]) == ("district", DISTRICT) for d in to_district)
    assert all("provider_level" not in f for f in _facts(city, CITY_CLASS))  # AMR is the city's

    grants.revoke(grant.grant_id, department="AMR", reason="audit finished")
    wait_routed(city.router, 3)
    _publish(city, "AMR", CITY_CLASS, range(20, 25))
    assert _denied(city, "yb-tax", CITY_CLASS, "grant_revoked", 5) >= 5
    delivered_down = district.topics.delivery("yb-tax")
    assert end_offsets(city.admin, city.topics.delivery("yb-tax")) == 20
    assert eventually(lambda: end_offsets(district.admin, delivered_down), lambda n: n >= 20, 60) == 20
