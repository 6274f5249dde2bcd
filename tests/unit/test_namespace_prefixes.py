"""One namespace's prefixed rules must never reach another namespace's names (``sharebus_access.namespaces``).

A namespace called ``<other>-router-x`` would put its topics under ``<other>-router-``, the prefix
of ``<other>``'s router (Faust's internal topics), and its groups under ``<other>-router.``. Such
names are refused by ``desired_acls``, by ``Scope`` and by the reconciler's settings. Pure: no broker.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import sharebus_access.__main__ as access_main
from sharebus_access.acls import AclRule, PatternType, ResourceType, desired_acls
from sharebus_access.errors import NamespaceClash
from sharebus_access.namespaces import namespace_problem
from sharebus_access.plan import Scope
from sharebus_access.settings import AccessSettings
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.principals import SERVICES
from sharebus_core.topics import TopicNames
from tests.unit.fixtures import FIXTURE_CATALOGUE

CLASHING = ["sharebus-router-x", "sharebus-router", "sharebus-gateway", "t-ns-auditor-2", "a-b-portal", "x-registry"]
APART = ["sharebus", "sharebus-routers", "sharebus-router_x", "router", "router-sharebus", "t-ns", "sharebus-x"]


@cache
def catalogue() -> Catalogue:
    return load_catalogue(FIXTURE_CATALOGUE)


def covers(rule: AclRule, resource_type: ResourceType, name: str) -> bool:
    if rule.resource_type is not resource_type:
        return False
    return name.startswith(rule.resource_name) if rule.pattern is PatternType.PREFIXED else name == rule.resource_name


def names_of(namespace: str) -> set[tuple[ResourceType, str]]:
    """Concrete names in the namespace: every literal name its rules give, and one under each prefix."""
    names = {
        (rule.resource_type, rule.resource_name + ("z" if rule.pattern is PatternType.PREFIXED else ""))
        for rule in desired_acls(catalogue(), namespace)
    }
    t = TopicNames(namespace)
    return names | {(ResourceType.TOPIC, t.source(code)) for code in catalogue().data_classes}


@pytest.mark.parametrize("other", CLASHING)
def test_a_namespace_with_a_service_name_as_a_part_is_refused_everywhere_the_acls_are_made(other: str) -> None:
    with pytest.raises(NamespaceClash, match="has the bus service name"):
        desired_acls(catalogue(), other)
    with pytest.raises(NamespaceClash):
        desired_acls(catalogue(), "sharebus", registry_namespace=other)
    with pytest.raises(NamespaceClash):
        Scope(other)
    with pytest.raises(ValidationError, match="has the bus service name"):
        AccessSettings(namespace=other)
    with pytest.raises(ValidationError, match="has the bus service name"):
        AccessSettings(registry_namespace=other)


def test_the_refusal_names_the_namespace_whose_prefixes_would_cover_it() -> None:
    assert "of namespace 'sharebus' (sharebus-router...)" in (namespace_problem("sharebus-router-x") or "")
    assert "of namespace 'a-b' (a-b-portal...)" in (namespace_problem("a-b-portal") or "")


@pytest.mark.parametrize("namespace", APART)
def test_near_misses_are_accepted(namespace: str) -> None:
    assert namespace_problem(namespace) is None
    assert desired_acls(catalogue(), namespace)
    assert AccessSettings(namespace=namespace).namespace == namespace


def assert_apart(mine: str, other: str) -> None:
    """No rule of ``mine`` covers a name of ``other``, and ``mine``'s reconciler owns none of its rules."""
    theirs = names_of(other)
    reaching = [
        (str(rule), name)
        for rule in desired_acls(catalogue(), mine)
        for kind, name in theirs
        if covers(rule, kind, name)
    ]
    assert reaching == []
    assert [str(r) for r in desired_acls(catalogue(), other) if Scope(mine).owns(r)] == []


@pytest.mark.parametrize("mine", APART)
def test_accepted_namespaces_side_by_side_keep_apart(mine: str) -> None:
    for other in APART:
        if other != mine:
            assert_apart(mine, other)


PARTS = st.sampled_from(["sharebus", "t", "x", "a1", "routers", "router_x", *SERVICES])
NAMESPACES = st.builds("-".join, st.lists(PARTS, min_size=1, max_size=4)).filter(lambda n: len(n) <= 49)


@settings(max_examples=150, deadline=None)
@given(NAMESPACES, NAMESPACES)
def test_any_two_accepted_namespaces_keep_apart(mine: str, other: str) -> None:
    assume(mine != other and namespace_problem(mine) is None and namespace_problem(other) is None)
    assert_apart(mine, other)


@settings(max_examples=100, deadline=None)
@given(NAMESPACES)
def test_every_refused_namespace_would_really_fall_under_another_ones_prefixes(refused: str) -> None:
    problem = namespace_problem(refused)
    assume(problem is not None)
    assert problem is not None  # for the type checker
    owner = problem.split("of namespace '")[1].split("'")[0]
    assume(namespace_problem(owner) is None)
    t = TopicNames(refused)
    reaching = [
        rule for rule in desired_acls(catalogue(), owner) if covers(rule, ResourceType.TOPIC, t.source("x"))
    ] + [rule for rule in desired_acls(catalogue(), owner) if covers(rule, ResourceType.GROUP, f"{refused}.sys.g")]
    owned = Scope(owner).owns_resource(ResourceType.TOPIC, t.source("x"))
    assert reaching or owned


def test_the_reconciler_service_refuses_such_a_namespace_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(access_main, "lean_exposition", lambda: None)  # a process-wide switch; not in tests
    monkeypatch.setenv("SHAREBUS_NAMESPACE", "sharebus-router-x")
    assert access_main.main() == 2
    err = capsys.readouterr().err
    assert err.startswith("sharebus-access: namespace: Value error, namespace 'sharebus-router-x' has the bus")
    assert len(err.strip().splitlines()) == 1
