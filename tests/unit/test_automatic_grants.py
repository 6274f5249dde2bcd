"""A grant the bus gave by itself confers only what the class's rule gives by itself now.

An application for an unconditional class is approved at once (``Grant.automatic``), with the fields open
that day. The bureau may later mark a field sensitive, or make the class conditional: the automatic grant
must then give no more than a catalogue subscription does (the field), and nothing once the provider's
decision is needed (``automatic_grant_lapsed``), on every path that routes by ``plan_routes`` (live, release,
backfill). A grant the provider approved is unchanged by either.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, cast

import pytest

from sharebus_core.catalogue import Catalogue, ShareType, load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_core.signing import Verifier
from sharebus_ops import backfill as backfill_requests
from sharebus_rules import Deliver, Deny, DenyReason, plan_routes
from sharebus_rules.grant_workflow import GrantRefused, apply, approve, revoke
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_audit_fact_bounds import enterprise_record
from tests.unit.test_control_events import UNUSED

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=1)
ENTERPRISE = "301001001/000001"  # unconditional, provider AMR; tax-levy and psb-case subscribe
CATALOGUE = load_catalogue(FIXTURE_CATALOGUE)


def changed(catalogue: Catalogue = CATALOGUE, **update: object) -> Catalogue:
    """The catalogue after the bureau changed the enterprise class's entry."""
    classes = dict(catalogue.data_classes)
    classes[ENTERPRISE] = classes[ENTERPRISE].model_copy(update=update)
    return dataclasses.replace(catalogue, data_classes=classes)


def automatic(consumer: str = "hrss-si", department: str = "HRSS", **kwargs: Any) -> Grant:
    grant = apply(
        CATALOGUE,
        grant_id="g-auto",
        acting_department=department,
        requester=consumer,
        consumer=consumer,
        data_class=ENTERPRISE,
        purpose="social insurance registration",
        scenario="employer checks",
        now=NOW,
        **kwargs,
    )
    assert grant.automatic
    assert grant.state is GrantState.APPROVED
    return grant


def provider_approved(catalogue: Catalogue, fields: tuple[str, ...], decided: dt.datetime = NOW) -> Grant:
    """An application made while the class was conditional, approved by the provider AMR."""
    application = apply(
        catalogue,
        grant_id="g-amr",
        acting_department="HRSS",
        requester="hrss-si",
        consumer="hrss-si",
        data_class=ENTERPRISE,
        purpose="social insurance registration",
        scenario="employer checks",
        fields=fields,
        now=decided,
    )
    return approve(application, acting_department="AMR", now=decided)


def decision_of(plan_catalogue: Catalogue, grants: list[Grant], consumer: str = "hrss-si") -> Deliver | Deny:
    plan = plan_routes(plan_catalogue, ENTERPRISE, {g.consumer: [g] for g in grants} if grants else {}, LATER)
    decisions: list[Deliver | Deny] = [*plan.deliveries, *plan.denials]
    return next(d for d in decisions if d.consumer == consumer)


def test_a_field_marked_sensitive_after_the_grant_is_not_delivered_under_it() -> None:
    later = changed(sensitive_fields=("legal_rep_name",))
    decision = decision_of(later, [automatic()])
    assert isinstance(decision, Deliver)
    assert decision.fields is not None
    assert "legal_rep_name" not in decision.fields
    subscriber = decision_of(later, [], "tax-levy")
    assert isinstance(subscriber, Deliver)
    assert decision.fields == subscriber.fields  # what a catalogue subscriber gets
    assert decision.grant_id == "g-auto"


def test_a_masked_field_marked_sensitive_after_the_grant_is_not_delivered_even_masked() -> None:
    grant = automatic(fields=["uscc", "legal_rep_name"], masked_fields=["legal_rep_name"])
    decision = decision_of(changed(sensitive_fields=("legal_rep_name",)), [grant])
    assert decision == Deliver("hrss-si", ("uscc",), frozenset(), "g-auto")


def test_an_automatic_grant_lapses_when_the_class_becomes_conditional() -> None:
    decision = decision_of(changed(share_type=ShareType.CONDITIONAL), [automatic()])
    assert decision == Deny("hrss-si", DenyReason.AUTOMATIC_GRANT_LAPSED, "g-auto")


def test_an_automatic_grant_of_a_subscriber_lapses_too_and_says_so() -> None:
    grant = automatic("tax-levy", "TAX")
    decision = decision_of(changed(share_type=ShareType.CONDITIONAL), [grant], "tax-levy")
    assert decision == Deny("tax-levy", DenyReason.AUTOMATIC_GRANT_LAPSED, "g-auto")


def test_an_automatic_grant_with_every_field_now_sensitive_confers_nothing() -> None:
    grant = automatic(fields=["legal_rep_name"])
    later = changed(sensitive_fields=("legal_rep_name",))
    assert decision_of(later, [grant]) == Deny("hrss-si", DenyReason.AUTOMATIC_GRANT_LAPSED, "g-auto")
    # A subscriber still receives what its subscription gives, not under the grant.
    subscribed = automatic("tax-levy", "TAX", fields=["legal_rep_name"])
    decision = decision_of(later, [subscribed], "tax-levy")
    assert isinstance(decision, Deliver)
    assert decision.grant_id is None
    assert decision.fields is not None
    assert "legal_rep_name" not in decision.fields


def test_a_revoked_automatic_grant_of_a_conditional_class_gives_its_own_reason() -> None:
    revoked = revoke(automatic(), acting_department="AMR", now=NOW, reason="purpose fulfilled")
    decision = decision_of(changed(share_type=ShareType.CONDITIONAL), [revoked])
    assert decision == Deny("hrss-si", DenyReason.GRANT_REVOKED, "g-auto")


def test_a_grant_the_provider_approved_is_not_touched_by_either_change() -> None:
    conditional = changed(share_type=ShareType.CONDITIONAL)
    grant = provider_approved(conditional, ("uscc", "legal_rep_name"))
    assert not grant.automatic
    for later in (conditional, changed(sensitive_fields=("legal_rep_name",))):
        assert decision_of(later, [grant]) == Deliver("hrss-si", ("uscc", "legal_rep_name"), frozenset(), "g-amr")


def test_an_older_provider_approved_grant_governs_before_a_newer_lapsed_automatic_one() -> None:
    conditional = changed(share_type=ShareType.CONDITIONAL)
    approved = provider_approved(conditional, ("uscc", "name"), decided=NOW - dt.timedelta(days=10))
    plan = plan_routes(conditional, ENTERPRISE, {"hrss-si": [approved, automatic()]}, LATER)
    assert Deliver("hrss-si", ("uscc", "name"), frozenset(), "g-amr") in plan.deliveries


def test_a_provider_approval_is_never_recorded_as_automatic() -> None:
    conditional = changed(share_type=ShareType.CONDITIONAL)
    application = apply(
        conditional,
        grant_id="g-x",
        acting_department="HRSS",
        requester="hrss-si",
        consumer="hrss-si",
        data_class=ENTERPRISE,
        purpose="p",
        scenario="s",
        now=NOW,
    )
    assert not application.automatic
    assert not approve(application, acting_department="AMR", now=NOW).automatic


def test_the_router_denies_a_lapsed_automatic_grant_with_its_reason_in_the_fact_and_the_metric() -> None:
    harness = Harness(changed(share_type=ShareType.CONDITIONAL))
    harness.grant(automatic())
    harness.handle(ENTERPRISE, harness.encode(ENTERPRISE, enterprise_record()))
    assert all(topic != TOPICS.delivery("hrss-si") for topic, *_ in harness.sent)
    [fact] = harness.facts
    hrss = next(d for d in fact["decisions"] if d["consumer"] == "hrss-si")
    assert (hrss["decision"], hrss["reason"], hrss["grant_id"]) == ("deny", "automatic_grant_lapsed", "g-auto")
    labels = {"provider": "AMR", "consumer": "hrss-si", "data_class": ENTERPRISE, "reason": "automatic_grant_lapsed"}
    assert harness.value("sharebus_denials_total", labels) == 1


def test_the_router_leaves_out_a_field_marked_sensitive_after_an_automatic_grant() -> None:
    harness = Harness(changed(sensitive_fields=("legal_rep_name",)))
    harness.grant(automatic())
    harness.handle(ENTERPRISE, harness.encode(ENTERPRISE, enterprise_record()))
    [value] = [v for topic, _key, v, _headers in harness.sent if topic == TOPICS.delivery("hrss-si")]
    assert value is not None
    delivered = harness.decode(value)
    assert "legal_rep_name" not in delivered
    assert delivered["uscc"] == enterprise_record()["uscc"]


def test_a_backfill_is_refused_under_a_lapsed_automatic_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    grant = automatic()
    monkeypatch.setattr(backfill_requests, "read_grants", lambda *_args: {grant.grant_id: grant})
    logged: list[object] = []
    monkeypatch.setattr(backfill_requests, "write_event", lambda *args: logged.append(args))
    with pytest.raises(GrantRefused, match="automatic_grant_lapsed"):
        backfill_requests.request_backfill(
            changed(share_type=ShareType.CONDITIONAL),
            UNUSED,
            TOPICS,
            "HRSS",
            "hrss-si",
            ENTERPRISE,
            verifier=cast(Verifier, None),  # the grants are read by the stub above
        )
    assert logged == []


def test_an_application_with_no_open_field_to_default_to_is_refused_with_a_reason() -> None:
    every = CATALOGUE.schema(ENTERPRISE).field_names
    with pytest.raises(GrantRefused, match="every field of 301001001/000001 is sensitive"):
        apply(
            changed(sensitive_fields=every),
            grant_id="g-none",
            acting_department="HRSS",
            requester="hrss-si",
            consumer="hrss-si",
            data_class=ENTERPRISE,
            purpose="p",
            scenario="s",
            now=NOW,
        )
