"""The local cluster's layout and configuration (no broker is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from sharebus_broker import BrokerSettings, BrokerStartError, KafkaBroker
from sharebus_broker.config import ClusterShape, NodeAddress, node_properties
from sharebus_broker.saved_ports import save_ports
from sharebus_broker.tls import ensure_broker_tls
from sharebus_core.kafka import KafkaAccess, is_credential_refusal
from sharebus_provision.replication import Replication


@pytest.mark.parametrize(("brokers", "factor", "min_insync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)])
def test_replication_is_min_of_three_and_the_brokers(brokers: int, factor: int, min_insync: int) -> None:
    assert Replication.for_brokers(brokers) == Replication(factor, min_insync)


def test_a_cluster_needs_a_broker() -> None:
    with pytest.raises(ValueError, match="at least one broker"):
        Replication.for_brokers(0)


def _shape(count: int, secured: bool = True) -> ClusterShape:
    nodes = tuple(NodeAddress(i + 1, f"kafka-{i + 1}", 9092, 9094, 9093) for i in range(count))
    return ClusterShape(nodes, secured, default_partitions=3, max_reauth_ms=10_000)


def test_three_nodes_share_one_quorum_and_replicate_everything(tmp_path: Path) -> None:
    shape = _shape(3)
    tls = ensure_broker_tls(tmp_path / "tls", ["kafka-1", "kafka-2", "kafka-3"])
    props = [node_properties(shape, node, tmp_path / f"n{node.node_id}", tls, "pw") for node in shape.nodes]
    assert {p["controller.quorum.voters"] for p in props} == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert props[1]["advertised.listeners"] == "CLIENTS://kafka-2:9092,STREAM://kafka-2:9094"
    for p in props:
        assert p["default.replication.factor"] == "3"
        assert p["min.insync.replicas"] == "2"
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["transaction.state.log.replication.factor"] == "3"
        assert p["transaction.state.log.min.isr"] == "2"
        assert p["unclean.leader.election.enable"] == "false"
        assert p["listener.security.protocol.map"] == "CLIENTS:SASL_SSL,STREAM:SASL_SSL,CONTROLLER:SSL"
        assert p["allow.everyone.if.no.acl.found"] == "false"


def test_one_node_keeps_one_copy(tmp_path: Path) -> None:
    shape = _shape(1, secured=False)
    props = node_properties(shape, shape.nodes[0], tmp_path, None, None)
    assert props["default.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"


def test_a_secured_node_needs_its_keys(tmp_path: Path) -> None:
    shape = _shape(3)
    with pytest.raises(ValueError, match="TLS keystore"):
        node_properties(shape, shape.nodes[0], tmp_path, None, None)


def test_every_node_has_its_own_ports_dir_and_log(tmp_path: Path) -> None:
    broker = KafkaBroker(BrokerSettings(port=0, controller_port=0, data_dir=tmp_path / "data", brokers=3))
    addresses = [node.address for node in broker.nodes]
    ports = [p for a in addresses for p in (a.client_port, a.stream_port, a.controller_port)]
    assert len(set(ports)) == 9
    assert len({node.node_dir for node in broker.nodes}) == 3
    assert len(set(broker.log_paths)) == 3
    assert broker.bootstrap.count(",") == 2
    assert broker.replication == Replication(3, 2)


def test_a_data_dir_keeps_its_cluster_size(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "logs" / "meta.properties").write_text("cluster.id=abc\nnode.id=1\n")
    broker = KafkaBroker(BrokerSettings(port=0, controller_port=0, data_dir=data, brokers=3))
    with pytest.raises(BrokerStartError, match="holds a cluster of 1 broker"):
        broker.start()


def test_brokers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREBUS_BROKERS", "3")
    assert BrokerSettings().brokers == 3


def test_producers_always_wait_for_every_in_sync_replica() -> None:
    access = KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT")
    assert access.producer_config()["acks"] == "all"
    assert access.producer_config({"acks": "1", "linger.ms": 5}) == {
        "bootstrap.servers": "127.0.0.1:1",
        "acks": "all",
        "linger.ms": 5,
    }


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (
            KafkaError(
                KafkaError._AUTHENTICATION,
                "sasl_ssl://127.0.0.1:1/bootstrap: SASL authentication error: Authentication failed during "
                "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
            ),
            True,
        ),
        (KafkaError(KafkaError.SASL_AUTHENTICATION_FAILED, "bad"), True),
        # What librdkafka says when one of several brokers stops during the handshake (seen in
        # test_three_brokers.py): an outage, not a refused credential.
        (
            KafkaError(
                KafkaError._AUTHENTICATION,
                "sasl_ssl://127.0.0.1:2/2: SASL SCRAM-SHA-512 mechanism handshake failed: Local: Broker transport "
                "failure: broker's supported mechanisms: (n/a) (after 0ms in state DOWN)",
            ),
            False,
        ),
        (KafkaError(KafkaError._ALL_BROKERS_DOWN, "3/3 brokers are down"), False),
        (KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed"), False),
    ],
)
def test_credential_refusals_are_told_from_outages(error: KafkaError, refused: bool) -> None:
    assert is_credential_refusal(error) is refused


def test_a_restarted_cluster_listens_on_the_ports_it_chose_first(tmp_path: Path) -> None:
    # The credential files written at the first start name every node's port (issue 13 §3, finding 13).
    settings = BrokerSettings(port=0, stream_port=0, controller_port=0, data_dir=tmp_path / "data", brokers=3)
    first = KafkaBroker(settings)
    save_ports(first.data_dir, first.shape.nodes)  # as start() does before formatting
    again = KafkaBroker(settings)
    assert again.shape.nodes == first.shape.nodes
    assert again.bootstrap == first.bootstrap
    # A port set in the settings still wins for node 1; the others keep theirs.
    pinned = KafkaBroker(settings.model_copy(update={"port": 29092}))
    assert pinned.shape.nodes[0].client_port == 29092
    assert pinned.shape.nodes[1:] == first.shape.nodes[1:]


def test_saved_ports_of_another_host_are_not_reused(tmp_path: Path) -> None:
    settings = BrokerSettings(port=0, stream_port=0, controller_port=0, data_dir=tmp_path / "data", brokers=3)
    first = KafkaBroker(settings)
    save_ports(first.data_dir, first.shape.nodes)
    moved = KafkaBroker(settings.model_copy(update={"host": "localhost"}))
    assert {n.client_port for n in moved.shape.nodes}.isdisjoint({n.client_port for n in first.shape.nodes})


def test_damaged_saved_ports_are_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ports.json").write_text("{")
    with pytest.raises(BrokerStartError, match=r"ports\.json"):
        KafkaBroker(BrokerSettings(port=0, data_dir=tmp_path / "data", brokers=3))
