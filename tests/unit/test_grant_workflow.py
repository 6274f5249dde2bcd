"""The grant workflow: who may do what, in which state, and what unconditional and not-shared classes do."""

from __future__ import annotations

import datetime as dt

import pytest

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_gateway.grants_api import recorded_requester
from sharebus_rules.grant_workflow import (
    GrantRefused,
    add_working_days,
    apply,
    approve,
    is_overdue,
    reject,
    revoke,
    working_days_left,
)
from tests.unit.fixtures import FIXTURE_CATALOGUE

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)  # a Friday
PENALTY = "301001002/000001"  # conditional, provider AMR, sensitive person_id_number
ENTERPRISE = "301001001/000001"  # unconditional
INSPECTION = "301001003/000001"  # not shared


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(FIXTURE_CATALOGUE)


def application(catalogue: Catalogue, **overrides: object) -> Grant:
    args: dict[str, object] = {
        "grant_id": "g1",
        "acting_department": "TAX",
        "requester": "tax officer Li",
        "consumer": "tax-levy",
        "data_class": PENALTY,
        "purpose": "tax credit rating",
        "scenario": "annual rating of enterprises",
        "fields": ["uscc", "amount"],
        "now": NOW,
    }
    args.update(overrides)
    return apply(catalogue, **args)  # type: ignore[arg-type]


def test_conditional_application_waits_for_the_provider(catalogue: Catalogue) -> None:
    grant = application(catalogue)
    assert grant.state is GrantState.APPLIED
    assert grant.provider == "AMR"
    assert grant.consumer_department == "TAX"
    assert grant.fields == ("uscc", "amount")


def test_a_department_cannot_apply_for_another(catalogue: Catalogue) -> None:
    with pytest.raises(GrantRefused, match="PSB cannot apply for tax-levy: it belongs to TAX"):
        application(catalogue, acting_department="PSB")


def test_purpose_and_scenario_are_required(catalogue: Catalogue) -> None:
    with pytest.raises(GrantRefused, match="purpose and its usage scenario"):
        application(catalogue, scenario=" ")


def test_fields_must_exist_and_masked_must_be_requested(catalogue: Catalogue) -> None:
    with pytest.raises(GrantRefused, match="colour not field"):
        application(catalogue, fields=["uscc", "colour"])
    with pytest.raises(GrantRefused, match="must also be requested"):
        application(catalogue, masked_fields=["person_id_number"])


def test_only_the_provider_approves_rejects_and_revokes(catalogue: Catalogue) -> None:
    grant = application(catalogue)
    with pytest.raises(GrantRefused, match="only the provider AMR may approve"):
        approve(grant, acting_department="TAX", now=NOW)
    with pytest.raises(GrantRefused, match="only the provider AMR may reject"):
        reject(grant, acting_department="PSB", now=NOW, reason="no")
    approved = approve(grant, acting_department="AMR", now=NOW, valid_until=NOW + dt.timedelta(days=30))
    with pytest.raises(GrantRefused, match="only the provider AMR may revoke"):
        revoke(approved, acting_department="TAX", now=NOW, reason="x")


def test_state_machine(catalogue: Catalogue) -> None:
    grant = application(catalogue)
    approved = approve(grant, acting_department="AMR", now=NOW, valid_until=NOW + dt.timedelta(days=1))
    assert approved.state is GrantState.APPROVED
    assert approved.effective_state(NOW + dt.timedelta(hours=23)) is GrantState.APPROVED
    assert approved.effective_state(NOW + dt.timedelta(days=1)) is GrantState.EXPIRED
    with pytest.raises(GrantRefused, match="only an application can be approved"):
        approve(approved, acting_department="AMR", now=NOW)
    revoked = revoke(approved, acting_department="AMR", now=NOW, reason="purpose fulfilled")
    assert revoked.state is GrantState.REVOKED
    with pytest.raises(GrantRefused, match="only an active grant can be revoked"):
        revoke(revoked, acting_department="AMR", now=NOW, reason="again")
    with pytest.raises(GrantRefused, match="is expired"):
        revoke(approved, acting_department="AMR", now=NOW + dt.timedelta(days=2), reason="late")


def test_rejection_needs_a_reason(catalogue: Catalogue) -> None:
    grant = application(catalogue)
    with pytest.raises(GrantRefused, match="must give its reason"):
        reject(grant, acting_department="AMR", now=NOW, reason="")
    rejected = reject(grant, acting_department="AMR", now=NOW, reason="purpose not covered by the legal basis")
    assert rejected.state is GrantState.REJECTED
    assert rejected.reason == "purpose not covered by the legal basis"


def test_unconditional_is_granted_at_once_without_sensitive_fields(catalogue: Catalogue) -> None:
    grant = application(catalogue, data_class=ENTERPRISE, fields=[])
    assert grant.state is GrantState.APPROVED
    assert grant.automatic
    assert "legal_rep_name" in grant.fields


def test_not_shared_is_refused_with_its_legal_basis(catalogue: Catalogue) -> None:
    grant = application(catalogue, data_class=INSPECTION, consumer="psb-case", acting_department="PSB", fields=[])
    assert grant.state is GrantState.REJECTED
    assert "个人信息保护法" in (grant.reason or "")


def test_overdue_counts_working_days(catalogue: Catalogue) -> None:
    grant = application(catalogue)  # applied on a Friday
    assert add_working_days(NOW, 1).weekday() == 0  # the next Monday
    deadline = add_working_days(NOW, 10)
    assert deadline == NOW + dt.timedelta(days=14)
    assert not is_overdue(grant, deadline)
    assert is_overdue(grant, deadline + dt.timedelta(minutes=1))
    assert not is_overdue(approve(grant, acting_department="AMR", now=NOW), deadline + dt.timedelta(days=1))
    assert is_overdue(grant, add_working_days(NOW, 5) + dt.timedelta(minutes=1), deadline_working_days=5)


def test_four_eyes_the_requester_never_decides_on_its_own_application(catalogue: Catalogue) -> None:
    applied = application(catalogue, requester="amr.li")
    with pytest.raises(GrantRefused, match="four eyes"):
        approve(applied, acting_department="AMR", now=NOW, decider="amr.li")
    with pytest.raises(GrantRefused, match="four eyes"):
        reject(applied, acting_department="AMR", now=NOW, reason="r", decider="amr.li")
    assert approve(applied, acting_department="AMR", now=NOW, decider="amr.wang").state is GrantState.APPROVED


def test_an_approval_may_narrow_the_fields_and_change_the_masking_but_not_widen(catalogue: Catalogue) -> None:
    applied = application(catalogue, fields=["uscc", "person_id_number", "amount"], masked_fields=[])
    approved = approve(
        applied,
        acting_department="AMR",
        now=NOW,
        fields=["uscc", "person_id_number"],
        masked_fields=["person_id_number"],
    )
    assert approved.fields == ("uscc", "person_id_number")
    assert approved.masked_fields == ("person_id_number",)
    with pytest.raises(GrantRefused, match="not requested"):
        approve(applied, acting_department="AMR", now=NOW, fields=["uscc", "seq"])
    with pytest.raises(GrantRefused, match="must also be granted"):
        approve(applied, acting_department="AMR", now=NOW, fields=["uscc"], masked_fields=["amount"])
    with pytest.raises(GrantRefused, match="at least one field"):
        approve(applied, acting_department="AMR", now=NOW, fields=[])
    # Without adjustments, the application's fields and masking stand.
    kept = approve(application(catalogue, masked_fields=["amount"]), acting_department="AMR", now=NOW)
    assert (kept.fields, kept.masked_fields) == (("uscc", "amount"), ("amount",))


def test_working_days_left_count_down_to_the_deadline_and_below_zero_past_it(catalogue: Catalogue) -> None:
    applied = application(catalogue)  # Friday 20 November; 10 working days: Friday 4 December
    assert working_days_left(applied, NOW) == 10
    assert working_days_left(applied, NOW + dt.timedelta(days=3)) == 9  # Monday
    assert working_days_left(applied, add_working_days(NOW, 10)) == 0
    assert working_days_left(applied, add_working_days(NOW, 10) + dt.timedelta(hours=1)) == -1
    assert working_days_left(applied, add_working_days(NOW, 13)) == -3


def test_an_api_caller_cannot_attribute_its_application_to_a_person(catalogue: Catalogue) -> None:
    # The gateway authenticates a system's key, not a person: a name in the body is only stated.
    recorded = recorded_requester("tax-levy", "amr.li")
    assert recorded == "tax-levy (stated: amr.li)"
    assert recorded_requester("tax-levy", None) == recorded_requester("tax-levy", " tax-levy ") == "tax-levy"
    applied = application(catalogue, requester=recorded)
    assert applied.requester == recorded
    # The named approver is not taken for the applicant: four eyes does not keep them from deciding.
    assert approve(applied, acting_department="AMR", now=NOW, decider="amr.li").state is GrantState.APPROVED
