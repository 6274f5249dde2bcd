"""The ACLs as a pure function of the catalogue: what systems and services may do, and what the
reconciler owns. No broker."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharebus_access.acls import (
    AclRule,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    anchors_topic,
    desired_acls,
    service_acls,
)
from sharebus_access.plan import Scope, make_plan
from sharebus_access.reconcile import from_binding, to_binding
from sharebus_access.table import TABLE_END, TABLE_START, service_table_markdown
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.principals import SERVICES, Principals
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR, REPO_ROOT
from sharebus_core.topics import TopicNames
from tests.unit.fixtures import FIXTURE_CATALOGUE

NS = "t-ns"
T, P = TopicNames(NS), Principals(NS)
CATALOGUES = {"fixture": FIXTURE_CATALOGUE, "demo": DEFAULT_CATALOGUE_DIR}


@pytest.fixture(params=sorted(CATALOGUES), scope="module")
def catalogue(request: pytest.FixtureRequest) -> Catalogue:
    return load_catalogue(CATALOGUES[request.param])


def control_topics(topics: TopicNames) -> set[str]:
    return {
        topics.grants,
        topics.api_keys,
        topics.handover,
        topics.backfill,
        topics.held,
        topics.audit_facts,
        topics.audit,
        anchors_topic(topics),
        topics.schemas,
        topics.dead_letter,
    }


def rules_of(rules: frozenset[AclRule], username: str) -> set[AclRule]:
    return {r for r in rules if r.principal == f"User:{username}"}


def test_no_system_has_any_rule_on_a_control_topic_or_outside_its_own_names(catalogue: Catalogue) -> None:
    rules = desired_acls(catalogue, NS)
    controls = control_topics(T) | control_topics(TopicNames("reg"))
    for system in catalogue.systems:
        mine = rules_of(rules, P.system(system))
        assert mine, system
        assert not {r for r in mine if r.resource_name in controls}
        # Only its sources (literal), its delivery topic (literal) and its own group prefix.
        allowed = {T.source(code) for code, c in catalogue.data_classes.items() if c.system == system}
        allowed |= {T.delivery(system), P.consumer_group_prefix(system)}
        assert {r.resource_name for r in mine} <= allowed
        assert {r.resource_type for r in mine} <= {ResourceType.TOPIC, ResourceType.GROUP}


def test_each_provider_writes_exactly_the_sources_of_its_classes(catalogue: Catalogue) -> None:
    rules = desired_acls(catalogue, NS)
    for system in catalogue.systems:
        writes = {r for r in rules_of(rules, P.system(system)) if r.operation is Operation.WRITE}
        provided = {T.source(code) for code, c in catalogue.data_classes.items() if c.system == system}
        assert {r.resource_name for r in writes} == provided
        assert all(r.pattern is PatternType.LITERAL and r.resource_type is ResourceType.TOPIC for r in writes)
        described = {
            r.resource_name
            for r in rules_of(rules, P.system(system))
            if r.operation is Operation.DESCRIBE and r.resource_name.startswith(T.source(""))
        }
        assert described == provided


def test_each_system_reads_only_its_own_delivery_topic_and_groups(catalogue: Catalogue) -> None:
    rules = desired_acls(catalogue, NS)
    for system in catalogue.systems:
        reads = {r for r in rules_of(rules, P.system(system)) if r.operation is Operation.READ}
        principal = f"User:{P.system(system)}"
        assert reads == {
            AclRule(principal, ResourceType.TOPIC, T.delivery(system), PatternType.LITERAL, Operation.READ),
            AclRule(principal, ResourceType.GROUP, f"{NS}.{system}.", PatternType.PREFIXED, Operation.READ),
        }


def test_every_rule_allows_from_any_host_and_names_a_known_principal(catalogue: Catalogue) -> None:
    rules = desired_acls(catalogue, NS, "reg")
    assert all(r.permission is Permission.ALLOW and r.host == "*" for r in rules)
    services = {P.service(s) for s in SERVICES if s != "registry"} | {Principals("reg").service("registry")}
    systems = {P.system(s) for s in catalogue.systems}
    assert {r.username for r in rules} == services | systems
    assert not any(r.resource_type is ResourceType.CLUSTER for r in rules)


def test_the_rules_are_deterministic() -> None:
    first = desired_acls(load_catalogue(FIXTURE_CATALOGUE), NS)
    second = desired_acls(load_catalogue(FIXTURE_CATALOGUE), NS)
    assert first == second
    assert sorted(first) == sorted(second)
    assert len({hash(r) for r in first}) == len(first)


def test_only_the_bus_writes_control_topics_and_reads_sources_held_and_dead_letters() -> None:
    rules = desired_acls(load_catalogue(FIXTURE_CATALOGUE), NS)
    services = {f"User:{P.service(s)}" for s in SERVICES}

    def who(operation: Operation, name: str) -> set[str]:
        return {
            r.principal
            for r in rules
            if r.operation is operation
            and (r.resource_name == name or (r.pattern is PatternType.PREFIXED and name.startswith(r.resource_name)))
        }

    for topic in control_topics(T) - {T.schemas}:
        assert who(Operation.WRITE, topic) <= services, topic
    for topic in (T.source("301001001/000001"), T.held, T.dead_letter):
        assert who(Operation.READ, topic) <= services, topic
    assert who(Operation.WRITE, T.audit) == {f"User:{P.service('auditor')}"}
    assert who(Operation.WRITE, T.delivery("tax-levy")) == {f"User:{P.service('router')}"}
    # The control plane: the gateway, the operator's CLI and the portal sign and write grant events.
    assert who(Operation.WRITE, T.grants) == {f"User:{P.service(s)}" for s in ("gateway", "operator", "portal")}
    assert who(Operation.READ, T.held) == {f"User:{P.service('router')}"}
    monitor = rules_of(rules, P.service("monitor"))
    assert {r.operation for r in monitor} - {Operation.READ} == {Operation.DESCRIBE}
    assert {r.resource_name for r in monitor if r.operation is Operation.READ} == {f"{P.service('monitor')}."}


def test_the_registry_of_another_namespace_gets_its_own_log_only() -> None:
    rules = service_acls(NS, "reg")
    registry = rules_of(rules, Principals("reg").service("registry"))
    assert {r.resource_name for r in registry} == {"reg._schemas", "reg-registry."}
    assert not rules_of(rules, P.service("registry"))
    assert rules_of(service_acls(NS), P.service("registry"))


def _catalogue_copy(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    directory = tmp_path / "catalogue"
    shutil.copytree(FIXTURE_CATALOGUE, directory)
    # Each class has a schema file of its own.
    shutil.copy(directory / "avro" / "enterprise.avsc", directory / "avro" / "rating.avsc")
    return directory, yaml.safe_load((directory / "catalogue.yaml").read_text())


def _changed(tmp_path: Path, change: dict[str, Any]) -> set[AclRule]:
    directory, document = _catalogue_copy(tmp_path)
    for key, entries in change.items():
        if key == "systems":
            document["departments"][1]["systems"] += entries
        else:
            document[key] += entries
    (directory / "catalogue.yaml").write_text(yaml.safe_dump(document, allow_unicode=True))
    before = desired_acls(load_catalogue(FIXTURE_CATALOGUE), NS)
    after = desired_acls(load_catalogue(directory), NS)
    assert before <= after or after <= before
    return set(after ^ before)


NEW_CLASS = {
    "code": "101001001/000009",
    "name": "Tax credit ratings",
    "provider": "TAX",
    "system": "tax-levy",
    "schema": "avro/rating.avsc",
    "key_field": "uscc",
    "share_type": "unconditional",
    "update": {"mode": "realtime"},
    "open_type": "open",
}


def test_a_new_class_lets_exactly_its_system_write_exactly_its_source(tmp_path: Path) -> None:
    source = T.source("101001001/000009")
    assert _changed(tmp_path, {"data_classes": [NEW_CLASS]}) == {
        AclRule(f"User:{P.system('tax-levy')}", ResourceType.TOPIC, source, PatternType.LITERAL, op)
        for op in (Operation.WRITE, Operation.DESCRIBE)
    }


def test_a_new_subscription_changes_no_rule(tmp_path: Path) -> None:
    # Every system already reads its delivery topic (a grant can make any system a consumer); what
    # reaches that topic is the router's decision, not an ACL.
    assert _changed(tmp_path, {"subscriptions": [{"system": "hrss-si", "data_class": "301001001/000001"}]}) == set()


def test_a_new_system_gets_its_delivery_topic_and_groups_and_nothing_else(tmp_path: Path) -> None:
    changed = _changed(tmp_path, {"systems": [{"code": "tax-audit", "name": "Tax audit system"}]})
    principal = f"User:{P.system('tax-audit')}"
    assert changed == {
        AclRule(principal, ResourceType.TOPIC, T.delivery("tax-audit"), PatternType.LITERAL, op)
        for op in (Operation.READ, Operation.DESCRIBE)
    } | {
        AclRule(principal, ResourceType.GROUP, f"{NS}.tax-audit.", PatternType.PREFIXED, op)
        for op in (Operation.READ, Operation.DESCRIBE)
    }


def test_the_scope_owns_every_desired_rule_and_nothing_of_neighbouring_namespaces(catalogue: Catalogue) -> None:
    scope = Scope(NS, "reg")
    assert all(scope.owns(r) for r in desired_acls(catalogue, NS, "reg"))
    for neighbour in ("t-ns2", "t-n", "t-nsx", "t", "t-ns-2"):
        assert not any(scope.owns(r) for r in desired_acls(catalogue, neighbour, f"{neighbour}-reg")), neighbour
    # A registry of its own namespace is not a shared one's.
    assert not any(Scope("t-other").owns(r) for r in service_acls(NS, "reg"))


def test_the_plan_is_the_difference_within_the_namespace_only() -> None:
    desired = desired_acls(load_catalogue(FIXTURE_CATALOGUE), NS)
    dropped = sorted(desired)[0]
    tampered = AclRule("User:intruder", ResourceType.TOPIC, T.grants, PatternType.LITERAL, Operation.WRITE)
    tax = f"User:{P.system('tax-levy')}"
    widened = AclRule(tax, ResourceType.TOPIC, f"{NS}.", PatternType.PREFIXED, Operation.READ)
    foreign = AclRule("User:t-other.tax-levy", ResourceType.TOPIC, "t-other.dlv.x", PatternType.LITERAL, Operation.READ)
    plan = make_plan(desired, (desired - {dropped}) | {tampered, widened, foreign}, Scope(NS))
    assert plan.missing == {dropped}
    assert plan.extra == {tampered, widened}
    assert plan.lines()[0] == f"+ {dropped}"
    assert plan.summary() == "1 missing, 2 extra"
    assert make_plan(desired, desired | {foreign}, Scope(NS)).in_step


def test_rules_convert_to_bindings_and_back(catalogue: Catalogue) -> None:
    rules = desired_acls(catalogue, NS, "reg")
    assert {from_binding(to_binding(r)) for r in rules} == rules
    cluster = AclRule("User:x", ResourceType.CLUSTER, "kafka-cluster", PatternType.LITERAL, Operation.IDEMPOTENT_WRITE)
    assert from_binding(to_binding(cluster)) == cluster


def test_docs_security_holds_the_generated_table() -> None:
    text = (REPO_ROOT / "docs" / "security.md").read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    assert text[start:end].strip() == service_table_markdown(), "regenerate it: python -m sharebus_access.table"
