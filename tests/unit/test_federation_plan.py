"""What MirrorMaker 2 mirrors and may touch, as a pure function of the federation (sharebus_federation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from sharebus_access.acls import Operation, PatternType, ResourceType
from sharebus_core.kafka import KafkaAccess
from sharebus_federation.mirror import mirror_properties, write_properties
from sharebus_federation.plan import CITY, Federation, topics_regex

PLAN = Federation("ns", "yubei", up=("ns.src.301002001.000001",), down=("ns.dlv.yb-tax",))


def test_a_topic_cannot_be_mirrored_both_ways() -> None:
    with pytest.raises(ValueError, match="loop"):
        Federation("ns", "yubei", up=("ns.x",), down=("ns.x",))
    with pytest.raises(ValueError, match="city"):
        Federation("ns", "city", up=("ns.x",), down=())


def test_the_principal_reads_only_what_leaves_and_writes_only_what_arrives() -> None:
    on_district = PLAN.acl_rules("yubei")
    assert {r.principal for r in on_district} == {"User:ns-mm2-city"}
    topics = {(r.resource_name, r.operation) for r in on_district if r.pattern is PatternType.LITERAL}
    assert ("ns.src.301002001.000001", Operation.READ) in topics
    assert ("ns.src.301002001.000001", Operation.WRITE) not in topics
    assert ("ns.dlv.yb-tax", Operation.WRITE) in topics
    assert ("ns.dlv.yb-tax", Operation.READ) not in topics
    prefixed = {r.resource_name for r in on_district if r.pattern is PatternType.PREFIXED}
    assert prefixed == {"ns-mm2-city."}  # its Connect state and its own groups, nothing of the bus
    on_city = PLAN.acl_rules(CITY)
    assert {r.principal for r in on_city} == {"User:ns-mm2-yubei"}
    assert ("ns.src.301002001.000001", Operation.WRITE) in {
        (r.resource_name, r.operation) for r in on_city if r.resource_type is ResourceType.TOPIC
    }
    assert not any(r.resource_type is ResourceType.CLUSTER for r in on_city | on_district)


def test_properties_secure_both_sides_and_keep_names(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    city = KafkaAccess(bootstrap="c:1", username="ns-mm2-yubei", password=SecretStr('p"w'), ca_file=ca)
    district = KafkaAccess(bootstrap="d:1", username="ns-mm2-city", password=SecretStr("q"), ca_file=ca)
    props = mirror_properties(PLAN, city, district, 5)
    assert props["replication.policy.class"].endswith("IdentityReplicationPolicy")
    assert props["yubei->city.topics"] == r"^ns\.src\.301002001\.000001$"
    assert props["city->yubei.topics"] == r"^ns\.dlv\.yb\-tax$"
    assert props["city.security.protocol"] == props["yubei.security.protocol"] == "SASL_SSL"
    assert 'password="p\\"w"' in props["city.sasl.jaas.config"]
    assert props["city.group.id"] == "ns-mm2-yubei"
    assert props["yubei.status.storage.topic"] == "ns-mm2-city.status"
    path = tmp_path / "mm2.properties"
    write_properties(path, props)
    assert path.stat().st_mode & 0o777 == 0o600
    assert r"yubei->city.topics=^ns\\.src\\.301002001\\.000001$" in path.read_text()


def test_a_direction_with_nothing_to_mirror_is_not_started() -> None:
    plan = Federation("ns", "yubei", up=("ns.src.a",), down=())
    assert plan.flows() == [("yubei", CITY)]
    assert topics_regex(()) == ""
