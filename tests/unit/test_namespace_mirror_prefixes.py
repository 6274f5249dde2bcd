"""A namespace may not fall under another namespace's MirrorMaker 2 names (``sharebus_access.namespaces``).

MirrorMaker 2 of namespace ``<ns>`` is the principal ``<ns>-mm2-<peer>`` with PREFIXED rules on the
topics and groups ``<ns>-mm2-<peer>.`` (sharebus_federation.plan). A namespace called
``<ns>-mm2-yubei`` would have every topic under that prefix (the mirror could read and write its
grants), and its own reconciler would delete the mirror's rules, under its names; the reconciler of
``<ns>`` judges every ``<ns>-mm2-*`` principal's rules, so ``<ns>-mm2``'s services would lose theirs.
Such names are refused, as a service name as a part is (test_namespace_prefixes.py). Pure: no broker.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sharebus_access.acls import AclRule, PatternType, ResourceType, desired_acls
from sharebus_access.errors import NamespaceClash
from sharebus_access.namespaces import namespace_problem
from sharebus_access.plan import Scope
from sharebus_access.settings import AccessSettings
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.principals import SERVICES
from sharebus_core.topics import TopicNames
from sharebus_federation.plan import CITY, Federation
from tests.unit.fixtures import FIXTURE_CATALOGUE

# The city's mirror of district yubei, and the district's mirror of the city.
CLASHING = ["sharebus-mm2-yubei", "sharebus-mm2-city", "sharebus-mm2", "t-ns-mm2-x", "a-mm2-router"]
APART = ["sharebus-mm2x", "sharebus-mm2_yubei", "mm2", "mm2-sharebus", "sharebus-xmm2", "sharebus-yubei"]


@cache
def catalogue() -> Catalogue:
    return load_catalogue(FIXTURE_CATALOGUE)


def mirror_rules(namespace: str) -> frozenset[AclRule]:
    """MirrorMaker 2's rules of ``namespace`` on the city's cluster and on a district's."""
    federation = Federation(namespace, "yubei", up=(TopicNames(namespace).source("x"),), down=())
    return federation.acl_rules(CITY) | federation.acl_rules("yubei")


def covers(rule: AclRule, resource_type: ResourceType, name: str) -> bool:
    if rule.resource_type is not resource_type:
        return False
    return name.startswith(rule.resource_name) if rule.pattern is PatternType.PREFIXED else name == rule.resource_name


@pytest.mark.parametrize("other", CLASHING)
def test_a_namespace_with_mm2_as_a_part_is_refused_everywhere_the_acls_are_made(other: str) -> None:
    with pytest.raises(NamespaceClash, match="MirrorMaker 2"):
        desired_acls(catalogue(), other)
    with pytest.raises(NamespaceClash, match="MirrorMaker 2"):
        desired_acls(catalogue(), "sharebus", registry_namespace=other)
    with pytest.raises(NamespaceClash, match="MirrorMaker 2"):
        Scope(other)
    with pytest.raises(ValidationError, match="MirrorMaker 2"):
        AccessSettings(namespace=other)
    with pytest.raises(ValidationError, match="MirrorMaker 2"):
        AccessSettings(registry_namespace=other)


def test_the_refusal_says_whose_mirror_names_it_would_fall_under_and_what_follows() -> None:
    problem = namespace_problem("sharebus-mm2-yubei") or ""
    assert "MirrorMaker 2 principals of namespace 'sharebus' (sharebus-mm2-<peer>.)" in problem
    assert "could read and write its topics" in problem
    assert "delete them" in problem
    assert "-mm2 parts" in problem


def test_the_refused_name_really_falls_under_the_mirrors_prefixes_both_ways() -> None:
    """Why: the mirror could read and write the other's topics and groups, and the other's names
    (which its reconciler owns) cover the mirror's Connect state."""
    other = TopicNames("sharebus-mm2-yubei")
    rules = mirror_rules("sharebus")
    assert any(covers(r, ResourceType.TOPIC, other.grants) and r.operation.value == "WRITE" for r in rules)
    assert any(covers(r, ResourceType.GROUP, "sharebus-mm2-yubei.tax-levy.g") for r in rules)
    assert any(r.resource_name.startswith("sharebus-mm2-yubei.") for r in rules)


@pytest.mark.parametrize("namespace", APART)
def test_near_misses_are_accepted(namespace: str) -> None:
    assert namespace_problem(namespace) is None
    assert AccessSettings(namespace=namespace).namespace == namespace


PARTS = st.sampled_from(["sharebus", "t", "mm2", "mm2x", "yubei", "city", *SERVICES])
NAMESPACES = st.builds("-".join, st.lists(PARTS, min_size=1, max_size=4)).filter(lambda n: len(n) <= 49)


@settings(max_examples=200, deadline=None)
@given(NAMESPACES, NAMESPACES)
def test_no_accepted_namespace_meets_another_ones_mirrors(mine: str, other: str) -> None:
    """No mirror rule of one covers a name of the other, and neither's reconciler owns the other's
    mirrors' rules nor takes the other's rules for its own mirrors'."""
    assume(mine != other and namespace_problem(mine) is None and namespace_problem(other) is None)
    theirs = {
        (r.resource_type, r.resource_name + ("z" if r.pattern is PatternType.PREFIXED else ""))
        for r in desired_acls(catalogue(), other)
    }
    assert [str(r) for r in mirror_rules(mine) for kind, name in theirs if covers(r, kind, name)] == []
    assert [str(r) for r in mirror_rules(other) if Scope(mine).owns(r)] == []
    assert [str(r) for r in desired_acls(catalogue(), other) if Scope(mine).is_mirror(r.username)] == []
