"""The sharing decision as a pure function of (catalogue entry, subscription, grant, time)."""

from __future__ import annotations

import datetime as dt

import pytest

from sharebus_core.catalogue import Catalogue, DataClass, ShareType, Subscription, UpdateMode, load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
from sharebus_rules import Deliver, Deny, DenyReason, decide, plan_routes, select_grant
from tests.unit.fixtures import FIXTURE_CATALOGUE

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
PENALTY = "301001002/000001"


@pytest.fixture(scope="module")
def demo() -> Catalogue:
    return load_catalogue(DEFAULT_CATALOGUE_DIR)


@pytest.fixture(scope="module")
def small() -> Catalogue:
    return load_catalogue(FIXTURE_CATALOGUE)


def _first(catalogue: Catalogue, share: ShareType, mode: UpdateMode) -> DataClass:
    return next(c for c in catalogue.data_classes.values() if c.share_type is share and c.mode is mode)


def _sub(entry: DataClass, system: str = "some-system") -> Subscription:
    return Subscription(system=system, data_class=entry.code)


def grant(state: GrantState = GrantState.APPROVED, **overrides: object) -> Grant:
    values: dict[str, object] = {
        "grant_id": "g1",
        "data_class": PENALTY,
        "provider": "AMR",
        "consumer": "tax-levy",
        "consumer_department": "TAX",
        "requester": "Li",
        "purpose": "p",
        "scenario": "s",
        "fields": ("uscc", "person_id_number"),
        "masked_fields": ("person_id_number",),
        "state": state,
        "applied_at": NOW - dt.timedelta(days=3),
        "decided_at": NOW - dt.timedelta(days=2),
        "valid_until": NOW + dt.timedelta(days=30),
    }
    values.update(overrides)
    return Grant.model_validate(values)


def decide_penalty(small: Catalogue, g: Grant | None, now: dt.datetime = NOW) -> object:
    entry = small.data_class(PENALTY)
    return decide(entry, small.schema(PENALTY), _sub(entry, "tax-levy"), g, now)


def test_unconditional_without_sensitive_fields_passes_whole(demo: Catalogue) -> None:
    entry = next(
        c
        for c in demo.data_classes.values()
        if c.share_type is ShareType.UNCONDITIONAL and c.mode is UpdateMode.REALTIME and not c.sensitive_fields
    )
    assert decide(entry, demo.schema(entry.code), _sub(entry), None, NOW) == Deliver("some-system")


def test_unconditional_leaves_out_sensitive_fields(demo: Catalogue) -> None:
    entry = demo.data_class("301001001/000001")
    decision = decide(entry, demo.schema(entry.code), _sub(entry), None, NOW)
    assert isinstance(decision, Deliver)
    assert decision.fields is not None
    assert "legal_rep_id_number" not in decision.fields
    assert "uscc" in decision.fields


def test_conditional_without_grant_is_denied(small: Catalogue) -> None:
    assert decide_penalty(small, None) == Deny("tax-levy", DenyReason.NO_GRANT)


def test_conditional_with_approved_grant_delivers_granted_fields_masked(small: Catalogue) -> None:
    assert decide_penalty(small, grant()) == Deliver(
        "tax-levy", ("uscc", "person_id_number"), frozenset({"person_id_number"}), "g1"
    )


@pytest.mark.parametrize(
    ("g", "now", "reason"),
    [
        (grant(GrantState.REVOKED), NOW, DenyReason.GRANT_REVOKED),
        (grant(), NOW + dt.timedelta(days=30), DenyReason.GRANT_EXPIRED),
        (grant(GrantState.APPLIED, decided_at=None), NOW, DenyReason.NO_GRANT),
        (grant(GrantState.REJECTED), NOW, DenyReason.NO_GRANT),
    ],
)
def test_grant_states_that_deny(small: Catalogue, g: Grant, now: dt.datetime, reason: DenyReason) -> None:
    assert decide_penalty(small, g, now) == Deny("tax-levy", reason, "g1")


def test_not_shared_is_denied_even_with_a_grant(demo: Catalogue) -> None:
    for entry in demo.data_classes.values():
        if entry.share_type is ShareType.NONE:
            decision = decide(entry, demo.schema(entry.code), _sub(entry), grant(data_class=entry.code), NOW)
            assert decision == Deny("some-system", DenyReason.CLASS_NOT_SHARED, "g1")


def test_periodic_classes_follow_the_same_rules_as_realtime_ones(demo: Catalogue) -> None:
    # Holding and releasing is the router's job; who may see which fields does not depend on the mode.
    entry = _first(demo, ShareType.UNCONDITIONAL, UpdateMode.PERIODIC)
    decision = decide(entry, demo.schema(entry.code), _sub(entry), None, NOW)
    assert isinstance(decision, Deliver)
    open_fields = tuple(f for f in demo.schema(entry.code).field_names if f not in entry.sensitive_fields)
    assert decision.fields in (None, open_fields)


def test_subscription_to_another_class_is_not_a_subscription(demo: Catalogue) -> None:
    entry = _first(demo, ShareType.UNCONDITIONAL, UpdateMode.REALTIME)
    other = next(c for c in demo.data_classes.values() if c.code != entry.code)
    decision = decide(entry, demo.schema(entry.code), _sub(other), None, NOW)
    assert decision == Deny("some-system", DenyReason.CONSUMER_NOT_SUBSCRIBED)


def test_select_grant_prefers_the_active_one() -> None:
    old = grant(GrantState.REVOKED, grant_id="old", decided_at=NOW - dt.timedelta(days=1))
    active = grant(grant_id="new", decided_at=NOW - dt.timedelta(days=5))
    assert select_grant([old, active], NOW) == active
    assert select_grant([old], NOW) == old
    assert select_grant([], NOW) is None


def test_route_plan_covers_subscribers_and_grant_holders(small: Catalogue) -> None:
    plan = plan_routes(small, PENALTY, {"tax-levy": [grant()], "hrss-si": [grant(consumer="hrss-si")]}, NOW)
    assert [d.consumer for d in plan.deliveries] == ["tax-levy", "hrss-si"]
    assert plan.valid_until == NOW + dt.timedelta(days=30)
    assert plan_routes(small, PENALTY, {}, NOW).denials == (Deny("tax-levy", DenyReason.NO_GRANT),)


def test_demo_route_plans_cover_every_subscriber_once(demo: Catalogue) -> None:
    for code in demo.data_classes:
        plan = plan_routes(demo, code, {}, NOW)
        consumers = [d.consumer for d in plan.deliveries] + [d.consumer for d in plan.denials]
        assert sorted(consumers) == sorted(s.system for s in demo.subscriptions_of(code))


def test_unconditional_granted_on_request_reaches_a_consumer_without_a_catalogue_subscription(
    small: Catalogue,
) -> None:
    code = "301001001/000001"
    automatic = grant(
        data_class=code,
        consumer="hrss-si",
        consumer_department="HRSS",
        fields=("uscc", "name"),
        masked_fields=(),
        automatic=True,
        valid_until=None,
    )
    decision = decide(small.data_class(code), small.schema(code), None, automatic, NOW)
    assert decision == Deliver("hrss-si", ("uscc", "name"), frozenset(), "g1")
    plan = plan_routes(small, code, {"hrss-si": [automatic]}, NOW)
    assert "hrss-si" in [d.consumer for d in plan.deliveries]
    assert decide(small.data_class(code), small.schema(code), None, None, NOW) == Deny(
        "", DenyReason.CONSUMER_NOT_SUBSCRIBED
    )


@pytest.mark.parametrize(
    ("g", "now", "reason"),
    [
        (grant(GrantState.REVOKED), NOW, DenyReason.GRANT_REVOKED),
        (grant(), NOW + dt.timedelta(days=30), DenyReason.GRANT_EXPIRED),
    ],
    ids=["revoked", "expired"],
)
def test_an_ended_grant_on_an_unconditional_class_takes_back_only_what_it_added(
    demo: Catalogue, g: Grant, now: dt.datetime, reason: DenyReason
) -> None:
    # The catalogue gives a subscriber the open fields of an unconditional class; a grant adds sensitive
    # ones. When it ends, the subscriber is back to the open fields, under no grant.
    entry = demo.data_class("301001001/000001")
    schema = demo.schema(entry.code)
    ended = g.model_copy(update={"data_class": entry.code, "consumer": "some-system", "fields": schema.field_names})
    open_fields = tuple(f for f in schema.field_names if f not in entry.sensitive_fields)
    assert decide(entry, schema, _sub(entry), ended, now) == Deliver("some-system", open_fields, frozenset(), None)
    # A system that holds only the grant, with no catalogue subscription, has nothing left.
    assert decide(entry, schema, None, ended, now) == Deny("some-system", reason, "g1")
