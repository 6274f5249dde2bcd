"""Every grant event the workflow returns (and its caller signs) is one every reader of the grants topic reads.

Readers validate a grant (``Grant``: a reason is non-empty once stripped, and so on); an event that fails
is dropped as unreadable, which closes the grant for good: never delivered, not found, not revocable. An
approval's reason is optional, so a blank one, from the gateway or any other caller, is recorded as none.
"""

from __future__ import annotations

import datetime as dt

import pytest

from sharebus_core.catalogue import load_catalogue
from sharebus_core.grant_log import decode_grant
from sharebus_core.grants import Grant, GrantState
from sharebus_gateway.grants_api import Approval
from sharebus_rules.grant_workflow import GrantRefused, apply, approve, reject, revoke
from tests.unit.fixtures import FIXTURE_CATALOGUE

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
PENALTY = "301001002/000001"  # conditional, provider AMR
CATALOGUE = load_catalogue(FIXTURE_CATALOGUE)


def application() -> Grant:
    return apply(
        CATALOGUE,
        grant_id="g1",
        acting_department="TAX",
        requester="tax-levy",
        consumer="tax-levy",
        data_class=PENALTY,
        purpose="tax credit",
        scenario="rating",
        fields=["uscc", "amount"],
        now=NOW,
    )


def read_back(grant: Grant) -> Grant:
    """The grant as a reader of the topic decodes it (the signature aside)."""
    return decode_grant(grant.model_dump_json().encode(), grant.grant_id)


@pytest.mark.parametrize("reason", ["", "   ", "\t\n"])
def test_a_blank_approval_reason_is_recorded_as_none_and_the_grant_stays_readable(reason: str) -> None:
    approved = approve(application(), acting_department="AMR", now=NOW, reason=reason)
    assert approved.reason is None
    assert read_back(approved).state is GrantState.APPROVED


def test_an_approval_reason_is_kept_stripped() -> None:
    approved = approve(application(), acting_department="AMR", now=NOW, reason="  within the legal basis ")
    assert read_back(approved).reason == "within the legal basis"


def test_the_gateway_takes_a_blank_approval_reason_for_none() -> None:
    assert Approval.model_validate({"reason": "   "}).reason is None
    assert Approval.model_validate({"reason": ""}).reason is None
    assert Approval.model_validate({"reason": " ok "}).reason == "ok"
    assert Approval.model_validate({}).reason is None


def test_every_transition_returns_a_grant_its_readers_read() -> None:
    approved = approve(application(), acting_department="AMR", now=NOW, reason="fine")
    revoked = revoke(approved, acting_department="AMR", now=NOW, reason=" purpose fulfilled ")
    rejected = reject(application(), acting_department="AMR", now=NOW, reason="outside the legal basis")
    for grant in (approved, revoked, rejected):
        assert read_back(grant) == grant
    assert revoked.reason == "purpose fulfilled"


def test_a_transition_to_a_grant_readers_refuse_is_refused_not_signed() -> None:
    # A naive time reads as no time a reader can compare: refused here rather than returned for signing.
    with pytest.raises(GrantRefused, match="cannot be recorded"):
        approve(application(), acting_department="AMR", now=NOW.replace(tzinfo=None))
