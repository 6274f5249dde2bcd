"""GrantService decides with the parties the catalogue names now, not those a grant recorded when it was applied for."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import ControlKeys, Signer, Verifier
from sharebus_grants import GrantNotFound, GrantService
from sharebus_grants import service as grant_service
from sharebus_rules.grant_workflow import GrantRefused
from tests.unit.fixtures import FIXTURE_CATALOGUE

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
PENALTY = "301001002/000001"  # conditional, provided by AMR (system amr-reg)


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> dict[str, Grant]:
    """The grants log, in memory: what GrantService reads back is what it wrote."""
    grants: dict[str, Grant] = {}
    monkeypatch.setattr(grant_service, "read_grants", lambda *_args, **_kw: dict(grants))
    monkeypatch.setattr(grant_service, "write_grant", lambda _a, _t, g, _s: grants.__setitem__(g.grant_id, g))
    return grants


def service(catalogue: Catalogue) -> GrantService:
    signer = Signer(Ed25519PrivateKey.generate())
    control = ControlKeys(Verifier([signer.public_key]), signer)
    return GrantService(
        catalogue, KafkaAccess(bootstrap="unused:9092"), "ns.grants", control=control, clock=lambda: NOW
    )


def handed_over(catalogue: Catalogue, code: str, department: str, system: str) -> Catalogue:
    """The catalogue after ``code`` was handed to another department (a reorganisation, or a corrected entry)."""
    classes: dict[str, Any] = dict(catalogue.data_classes)
    classes[code] = classes[code].model_copy(update={"provider": department, "system": system})
    return dataclasses.replace(catalogue, data_classes=classes)


def test_once_a_class_changes_hands_only_its_new_provider_decides_on_its_grants(log: dict[str, Grant]) -> None:
    before = load_catalogue(FIXTURE_CATALOGUE)
    grant = service(before).apply(
        department="TAX", requester="tax officer Li", consumer="tax-levy", data_class=PENALTY, purpose="p", scenario="s"
    )
    assert grant.provider == "AMR"
    now = service(handed_over(before, PENALTY, "HRSS", "hrss-si"))
    # The old provider can neither approve access to a class it no longer provides, nor see its grants.
    with pytest.raises((GrantRefused, GrantNotFound)):
        now.approve(grant.grant_id, department="AMR")
    assert log[grant.grant_id].state is GrantState.APPLIED
    assert now.list(department="AMR") == []
    # The new one sees and decides, and the event it writes names it as the provider.
    assert [g.grant_id for g in now.list(department="HRSS")] == [grant.grant_id]
    approved = now.approve(grant.grant_id, department="HRSS")
    assert (approved.state, approved.provider, approved.decided_by) == (GrantState.APPROVED, "HRSS", "HRSS")
    now.revoke(grant.grant_id, department="HRSS", reason="no longer needed")
    assert log[grant.grant_id].state is GrantState.REVOKED


def without(catalogue: Catalogue, code: str) -> Catalogue:
    """The catalogue after ``code`` left it (withdrawn, or merged into another class)."""
    return dataclasses.replace(catalogue, data_classes={c: e for c, e in catalogue.data_classes.items() if c != code})


def test_an_application_for_a_class_that_left_the_catalogue_is_not_approved_but_can_be_rejected(
    log: dict[str, Grant],
) -> None:
    before = load_catalogue(FIXTURE_CATALOGUE)
    grant = service(before).apply(
        department="TAX", requester="tax officer Li", consumer="tax-levy", data_class=PENALTY, purpose="p", scenario="s"
    )
    now = service(without(before, PENALTY))
    # Fail closed: nothing signs access to a class the catalogue no longer describes (no fields, no rules).
    with pytest.raises(GrantRefused, match="no longer in the catalogue"):
        now.approve(grant.grant_id, department="AMR", decider="amr officer Wang")
    assert log[grant.grant_id].state is GrantState.APPLIED
    # The provider can still answer the application, so it does not stay in its inbox, overdue, for ever.
    rejected = now.reject(grant.grant_id, department="AMR", reason="class withdrawn", decider="amr officer Wang")
    assert rejected.state is GrantState.REJECTED
