"""The namespace's reconciler judges MirrorMaker 2's rules by the catalogue (``sharebus_access.mirrors``).

The federation grants ``<ns>-mm2-<peer>`` its rules when it starts and checks them only then. Before,
the reconciler skipped every rule of such a principal, whatever it granted: a right the federation
never gives (WRITE on the grants) or one a catalogue change took away (a system no longer the
district's) stayed for good. Now it keeps exactly what the federation would grant from today's
catalogue and deletes the rest as drift; it never creates a mirror's rule. Pure: a fake broker.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sharebus_access.acls import AclRule, Operation, PatternType, ResourceType, desired_acls
from sharebus_access.mirrors import mirror_rights
from sharebus_access.plan import Scope, make_plan
from sharebus_access.reconcile import Reconciler
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
from sharebus_core.topics import TopicNames
from sharebus_federation.plan import CITY, Federation, check_accepted, plan_for
from tests.unit.test_access_reconciler import FakeAdmin, FakeUsers

NS = "t-mirror"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "federation"
T = TopicNames(NS)
TOPIC, GROUP, LITERAL, PREFIXED = ResourceType.TOPIC, ResourceType.GROUP, PatternType.LITERAL, PatternType.PREFIXED
READ, WRITE, CREATE, DESCRIBE = Operation.READ, Operation.WRITE, Operation.CREATE, Operation.DESCRIBE
ON_CITY, ON_DISTRICT = f"User:{NS}-mm2-yubei", f"User:{NS}-mm2-city"
UP, KEPT_IN_DISTRICT, CITY_CLASS = "301002001/000001", "301002002/000001", "301001002/000001"


@pytest.fixture(scope="module")
def city() -> Catalogue:
    return load_catalogue(FIXTURES / "city")


@pytest.fixture(scope="module")
def district() -> Catalogue:
    return load_catalogue(FIXTURES / "yubei")


@pytest.fixture(scope="module")
def federation(city: Catalogue, district: Catalogue) -> Federation:
    """What the federation service grants MirrorMaker 2 (service.py: plan_for, then check_accepted)."""
    return check_accepted(plan_for(NS, "yubei", district), city)


def reconciler(catalogue: list[Catalogue], admin: FakeAdmin, registry: CollectorRegistry) -> Reconciler:
    """A reconciler over a fake broker, reading ``catalogue[0]`` at each run (replace it to change it)."""
    access = KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT")  # never contacted
    made = Reconciler(access, lambda: catalogue[0], NS, interval_s=3600, registry=registry)
    made.admin = admin  # type: ignore[assignment]
    made.credentials.users = FakeUsers(NS)  # type: ignore[assignment]
    return made


def test_the_reconciler_keeps_exactly_what_the_federation_grants_on_either_cluster(
    city: Catalogue, district: Catalogue, federation: Federation
) -> None:
    assert mirror_rights(city, NS) == federation.acl_rules(CITY)
    assert mirror_rights(district, NS) == federation.acl_rules("yubei")
    for catalogue, cluster in ((city, CITY), (district, "yubei")):
        desired = desired_acls(catalogue, NS)
        granted = federation.acl_rules(cluster)
        admin = FakeAdmin(desired | granted)
        assert reconciler([catalogue], admin, CollectorRegistry()).run_once().in_step
        assert admin.rules == desired | granted
        # Without them (no federation yet, or revoked) nothing of a mirror's is created.
        assert make_plan(desired, desired, Scope(NS), mirror_rights(catalogue, NS)).in_step


def test_a_right_the_federation_never_gives_is_removed_on_the_citys_cluster(
    city: Catalogue, federation: Federation
) -> None:
    never = {
        AclRule(ON_CITY, TOPIC, T.grants, LITERAL, WRITE),
        AclRule(ON_CITY, TOPIC, T.delivery("tax-levy"), LITERAL, READ),  # the city's own system
        AclRule(ON_CITY, TOPIC, T.source(CITY_CLASS), LITERAL, WRITE),  # the city's own class
        AclRule(ON_CITY, TOPIC, T.source(UP), LITERAL, READ),  # comes up: written here, never read
        AclRule(ON_CITY, TOPIC, T.delivery("yb-tax"), LITERAL, WRITE),  # goes down: read here, never written
        AclRule(ON_CITY, TOPIC, f"{NS}.", PREFIXED, READ),
        AclRule(ON_CITY, GROUP, f"{NS}.", PREFIXED, READ),
        AclRule(ON_CITY, ResourceType.CLUSTER, "kafka-cluster", LITERAL, Operation.ALTER),
        AclRule(ON_DISTRICT, TOPIC, T.delivery("yb-tax"), LITERAL, WRITE),  # the city's mirror is not here
        AclRule(f"User:{NS}-mm2-nowhere", TOPIC, f"{NS}-mm2-nowhere.", PREFIXED, READ),  # no such district
    }
    desired, granted = desired_acls(city, NS), federation.acl_rules(CITY)
    admin = FakeAdmin(desired | granted | never)
    registry = CollectorRegistry()
    plan = reconciler([city], admin, registry).run_once()
    assert plan.extra == never
    assert not plan.missing
    assert admin.rules == desired | granted
    assert registry.get_sample_value("sharebus_acl_drift", {"kind": "extra"}) == len(never)


def test_a_right_the_catalogue_no_longer_backs_is_removed_at_the_next_run(
    city: Catalogue, federation: Federation
) -> None:
    current = [city]
    granted = federation.acl_rules(CITY)
    admin = FakeAdmin(desired_acls(city, NS) | granted)
    r = reconciler(current, admin, CollectorRegistry())
    assert r.run_once().in_step
    # yb-tax's department becomes the city's: its deliveries are no longer mirrored down to Yubei.
    current[0] = replace(
        city, district_of_department={d: v for d, v in city.district_of_department.items() if d != "YBTAX"}
    )
    plan = r.run_once()
    gone = {rule for rule in granted if rule.resource_name == T.delivery("yb-tax")}
    assert {rule.operation for rule in gone} == {READ, DESCRIBE, Operation.DESCRIBE_CONFIGS}
    assert plan.extra == gone
    assert admin.rules == desired_acls(current[0], NS) | (granted - gone)


def test_a_right_the_federation_never_gives_is_removed_on_a_districts_cluster(
    district: Catalogue, federation: Federation
) -> None:
    never = {
        AclRule(ON_DISTRICT, TOPIC, T.source(KEPT_IN_DISTRICT), LITERAL, READ),  # not federated
        AclRule(ON_DISTRICT, TOPIC, T.source(UP), LITERAL, WRITE),  # goes up: read here, never written
        AclRule(ON_DISTRICT, TOPIC, T.delivery("yb-tax"), LITERAL, READ),  # comes down: never read
        AclRule(ON_DISTRICT, TOPIC, T.api_keys, LITERAL, READ),
        AclRule(ON_CITY, TOPIC, f"{NS}-mm2-yubei.", PREFIXED, READ),  # the district's mirror is on the city's
    }
    desired, granted = desired_acls(district, NS), federation.acl_rules("yubei")
    admin = FakeAdmin(desired | granted | never)
    plan = reconciler([district], admin, CollectorRegistry()).run_once()
    assert plan.extra == never
    assert admin.rules == desired | granted


def test_the_reviewers_case_a_city_system_read_and_a_grants_write_are_removed() -> None:
    """The review's reproduction: the city catalogue of the repository, which names no district."""
    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    assert "tax-levy" in catalogue.systems
    desired = desired_acls(catalogue, "ns")
    stale = {
        AclRule("User:ns-mm2-yubei", TOPIC, "ns.dlv.tax-levy", LITERAL, READ),
        AclRule("User:ns-mm2-yubei", TOPIC, "ns.grants", LITERAL, WRITE),
    }
    plan = make_plan(desired, desired | stale, Scope("ns"), mirror_rights(catalogue, "ns"))
    assert plan.extra == stale
