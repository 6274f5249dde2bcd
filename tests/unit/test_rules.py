"""The routing decision as a pure function of (catalogue entry, subscription)."""

from __future__ import annotations

import pytest

from sharebus_core.catalogue import Catalogue, DataClass, ShareType, Subscription, UpdateMode, load_catalogue
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
from sharebus_rules import Deliver, Deny, DenyReason, decide, plan_routes


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(DEFAULT_CATALOGUE_DIR)


def _first(catalogue: Catalogue, share: ShareType, mode: UpdateMode) -> DataClass:
    return next(c for c in catalogue.data_classes.values() if c.share_type is share and c.mode is mode)


def _sub(entry: DataClass, system: str = "some-system") -> Subscription:
    return Subscription(system=system, data_class=entry.code)


def test_unconditional_realtime_is_delivered_whole(catalogue: Catalogue) -> None:
    entry = _first(catalogue, ShareType.UNCONDITIONAL, UpdateMode.REALTIME)
    assert decide(entry, _sub(entry)) == Deliver("some-system", None)


def test_conditional_without_grant_is_denied(catalogue: Catalogue) -> None:
    entry = _first(catalogue, ShareType.CONDITIONAL, UpdateMode.REALTIME)
    assert decide(entry, _sub(entry)) == Deny("some-system", DenyReason.NO_GRANT)


def test_not_shared_is_denied_whatever_the_mode(catalogue: Catalogue) -> None:
    for entry in catalogue.data_classes.values():
        if entry.share_type is ShareType.NONE:
            assert decide(entry, _sub(entry)) == Deny("some-system", DenyReason.CLASS_NOT_SHARED)


def test_periodic_unconditional_is_held_back(catalogue: Catalogue) -> None:
    entry = _first(catalogue, ShareType.UNCONDITIONAL, UpdateMode.PERIODIC)
    assert decide(entry, _sub(entry)) == Deny("some-system", DenyReason.PERIODIC_RELEASE_PENDING)


def test_subscription_to_another_class_is_not_a_subscription(catalogue: Catalogue) -> None:
    entry = _first(catalogue, ShareType.UNCONDITIONAL, UpdateMode.REALTIME)
    other = next(c for c in catalogue.data_classes.values() if c.code != entry.code)
    assert decide(entry, _sub(other)) == Deny("some-system", DenyReason.CONSUMER_NOT_SUBSCRIBED)


def test_route_plan_covers_every_subscriber_once(catalogue: Catalogue) -> None:
    for code in catalogue.data_classes:
        plan = plan_routes(catalogue, code)
        consumers = [d.consumer for d in plan.deliveries] + [d.consumer for d in plan.denials]
        assert sorted(consumers) == sorted(s.system for s in catalogue.subscriptions_of(code))
    enterprise = plan_routes(catalogue, "301001001/000001")
    assert {d.consumer for d in enterprise.deliveries} >= {"tax-levy", "psb-case"}
    assert enterprise.denials == ()
