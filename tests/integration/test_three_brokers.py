"""Three brokers, replicated: one is SIGKILLed mid-stream, then restarted. Nothing is lost, the audit
verifies, and the router keeps delivering while the broker is down.

The module starts its own three-node cluster (the session's shared broker is a single node), with
the bus over it as ``make run`` starts it: registry, router and auditor, each as its own principal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._resource import ResourceType

from sharebus_broker import BrokerSettings, KafkaBroker
from sharebus_cli.children import Child
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_ops.audit import verify
from sharebus_provision.replication import topic_replicas
from sharebus_sdk import Delivery, Subscriber, SubscriberSettings
from tests.integration.conftest import FIXTURE_CATALOGUE, Bus
from tests.support.audit_trail import trail_events
from tests.support.auditor import start_auditor
from tests.support.identities import provision_bus, provision_registry, registry_env
from tests.support.kafka import end_offsets, eventually
from tests.support.names import unique
from tests.support.records import ENTERPRISE, publish_enterprises
from tests.support.registry import RegistryProcess, start_registry
from tests.support.router import start_router

# Starting three JVMs, a registry, a router and an auditor, and waiting out a broker's session on a
# loaded two-core machine takes minutes, not seconds.
pytestmark = pytest.mark.timeout(900)

PER_PHASE = 400
COUNT = 3 * PER_PHASE
SYSTEM = "tax-levy"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    data_dir = tmp_path_factory.mktemp("three-brokers") / "data"
    settings = BrokerSettings(port=0, controller_port=0, data_dir=data_dir, heap="512m", brokers=3)
    with KafkaBroker(settings) as broker:
        yield broker


@dataclass
class ReplicatedBus:
    bus: Bus
    registry: RegistryProcess
    auditor: Child


@pytest.fixture(scope="module")
def replicated(cluster: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedBus]:
    admin = cluster.admin_access
    work = tmp_path_factory.mktemp("replicated-bus")
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    registry_namespace, namespace = unique("reg3"), unique("t")
    registry_access = provision_registry(admin, catalogue, registry_namespace)
    with start_registry(registry_access, registry_namespace, work, timeout_s=120, extra_env=registry_env()) as registry:
        services = provision_bus(admin, catalogue, namespace, registry_namespace)
        router = start_router(
            services["router"],
            namespace,
            registry.url,
            FIXTURE_CATALOGUE,
            work,
            # No SHAREBUS_ROUTER_TOPIC_REPLICATION_FACTOR: the router counts the brokers itself, so its
            # own topics (leader, periods changelog) get three copies like the rest.
            timeout_s=180,
        )
        auditor = start_auditor(services["auditor"], namespace, work, timeout_s=120)
        try:
            yield ReplicatedBus(Bus(admin, namespace, registry.url, catalogue, router, services), registry, auditor)
        finally:
            auditor.stop()
            router.stop()


@dataclass
class Receiver:
    """The system's SDK subscriber, reading the whole time in a thread: seq -> when it first arrived."""

    bus: Bus
    arrived: dict[int, float] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        settings = SubscriberSettings.model_validate(self.bus.settings.model_dump())
        try:
            with Subscriber(SYSTEM, settings) as subscriber:
                while not self._stop.is_set():
                    delivery = subscriber.poll(0.5)
                    if isinstance(delivery, Delivery):
                        seq = int(delivery.value["seq"])
                        with self._lock:
                            self.arrived.setdefault(seq, time.monotonic())
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            self.errors.append(exc)

    def seqs(self) -> set[int]:
        with self._lock:
            return set(self.arrived)

    def stop(self) -> None:
        self._stop.set()


def _leader(access: KafkaAccess, topic: str) -> int:
    return int(access.admin().list_topics(timeout=10).topics[topic].partitions[0].leader)


def _min_insync(access: KafkaAccess, topic: str) -> str:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = access.admin()  # kept alive until the answer: a collected client cancels its requests
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    return str(configs["min.insync.replicas"].value)


def _audited_seqs(bus: Bus) -> set[int]:
    seqs = set()
    for event in trail_events(bus.access, bus.topics.audit):
        if event.get("decision") == "deliver" and event.get("consumer") == SYSTEM:
            seqs.add(int(str(event["key"])[1:]))
    return seqs


def test_a_broker_lost_mid_stream_loses_nothing(
    cluster: KafkaBroker, replicated: ReplicatedBus, tmp_path: Path
) -> None:
    bus = replicated.bus
    topics = bus.topics
    source, delivery = topics.source(ENTERPRISE), topics.delivery(SYSTEM)
    # Every bus topic is on all three brokers, and a write needs two of them; so are the committed
    # offsets and the topic Faust made for itself.
    replicated_topics = [source, delivery, topics.audit_facts, topics.audit, topics.dead_letter]
    replicated_topics += ["__consumer_offsets", f"{topics.router_faust_id}-__assignor-__leader"]
    replicas = topic_replicas(bus.access, replicated_topics)
    assert len(replicas) == len(replicated_topics), replicas
    assert {r.replicas for r in replicas.values()} == {3}, replicas
    assert _min_insync(bus.access, source) == "2"
    assert _min_insync(bus.access, topics.audit) == "2"

    receiver = Receiver(bus)
    reader = threading.Thread(target=receiver.run, name="receiver", daemon=True)
    reader.start()
    try:
        publish_enterprises(bus.settings, range(PER_PHASE))
        seen = eventually(receiver.seqs, lambda s: len(s) >= PER_PHASE // 2, timeout_s=180)
        assert len(seen) >= PER_PHASE // 2, f"nothing routed before the kill: {len(seen)}; {receiver.errors}"

        # SIGKILL the broker that leads the source's first partition: its partitions move to the others.
        victim = _leader(bus.access, source)
        cluster.kill_node(victim - 1)
        publish_enterprises(bus.settings, range(PER_PHASE, 2 * PER_PHASE))
        # The router keeps serving with one broker down: what was published meanwhile arrives.
        during = set(range(2 * PER_PHASE))
        seen = eventually(receiver.seqs, lambda s: during <= s, timeout_s=240)
        assert not cluster.nodes[victim - 1].is_running()
        assert during <= seen, (
            f"{len(during - seen)} records published with broker {victim} down never arrived while it was "
            f"down (first {sorted(during - seen)[:10]}); delivery topic holds {end_offsets(bus.access, delivery)}; "
            f"subscriber errors {receiver.errors}; router log ends:\n{bus.router.service.tail(60)}"
        )
        assert bus.router.service.alive()

        cluster.restart_node(victim - 1)
        publish_enterprises(bus.settings, range(2 * PER_PHASE, COUNT))
        everything = set(range(COUNT))
        seen = eventually(receiver.seqs, lambda s: everything <= s, timeout_s=180)
        assert everything <= seen, (
            f"{len(everything - seen)} records never arrived (first {sorted(everything - seen)[:10]}); "
            f"subscriber errors {receiver.errors}; router log ends:\n{bus.router.service.tail(60)}"
        )
        assert bus.router.service.alive()
    finally:
        receiver.stop()
        reader.join(timeout=30)
    assert not receiver.errors

    # The restarted broker catches up: every partition is back on three in-sync replicas.
    in_sync = eventually(
        lambda: topic_replicas(bus.access, [source, delivery, topics.audit]),
        lambda found: all(r.in_sync == 3 for r in found.values()),
        timeout_s=180,
    )
    assert all(r.in_sync == 3 for r in in_sync.values()), in_sync

    # Every delivery is in the audit trail, and the chain is whole.
    audited = eventually(lambda: _audited_seqs(bus), lambda s: everything <= s, timeout_s=180)
    auditor = replicated.auditor
    assert everything <= audited, (
        f"{len(everything - audited)} deliveries not audited; auditor alive: {auditor.alive()}; its log ends:\n"
        f"{auditor.tail(40)}"
    )
    # The auditor lived through the broker's death (it waits for heads it cannot read, never exits).
    assert auditor.alive(), auditor.tail(40)
    result = verify(bus.access, topics.audit)
    assert result.broken is None, str(result)
    assert result.events >= 2 * COUNT
