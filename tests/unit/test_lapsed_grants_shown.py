"""Every reader shows an automatic grant that lapsed as ``lapsed``, as the router treats it.

The router denies an automatic grant (``Grant.automatic``) whose class is no longer unconditional, or
none of whose fields the class's rule gives any more (``automatic_grant_lapsed``). ``shown_state`` is
the one rule every reader shows grants by: here, that it agrees with ``plan_routes``, that no event may
record the derived states, and that the gateway's grant API, its ODRL policies, the CLI and the land
service's grant poll say "lapsed" where they said "approved". The portal's pages are in
``test_portal_lapsed_grants``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from sharebus_cli import grant_cmd
from sharebus_cli.gateway_client import GatewayClient
from sharebus_core import grant_log
from sharebus_core.catalogue import Catalogue, ShareType
from sharebus_core.control_log import ControlEventRejected
from sharebus_core.grants import DERIVED_STATES, Grant, GrantState
from sharebus_core.signing import RejectReason, Signer, Verifier
from sharebus_gateway import grants_api, standards_api
from sharebus_gateway.auth import Caller, caller
from sharebus_land.grants import GrantWatch
from sharebus_portal.grant_view import GrantView
from sharebus_rules import DenyReason, plan_routes
from sharebus_rules.grant_workflow import revoke
from sharebus_rules.routing import _STATE_DENIALS, shown_state
from tests.support.portal import MemoryGrants
from tests.unit.test_automatic_grants import CATALOGUE, ENTERPRISE, LATER, NOW, automatic, changed, provider_approved
from tests.unit.test_control_events import Log, encoded, grant, reason

CONDITIONAL = changed(share_type=ShareType.CONDITIONAL)


def without_enterprise(catalogue: Catalogue = CATALOGUE) -> Catalogue:
    return dataclasses.replace(
        catalogue, data_classes={c: e for c, e in catalogue.data_classes.items() if c != ENTERPRISE}
    )


def delivered_under(catalogue: Catalogue, g: Grant) -> bool:
    plan = plan_routes(catalogue, ENTERPRISE, {g.consumer: [g]}, LATER)
    return any(d.grant_id == g.grant_id for d in plan.deliveries)


CASES = [
    ("automatic, class unchanged", CATALOGUE, automatic(), GrantState.APPROVED),
    ("automatic, class now conditional", CONDITIONAL, automatic(), GrantState.LAPSED),
    ("automatic, class now not shared", changed(share_type=ShareType.NONE), automatic(), GrantState.LAPSED),
    ("automatic of a subscriber, class now conditional", CONDITIONAL, automatic("tax-levy", "TAX"), GrantState.LAPSED),
    (
        "automatic, one of its fields now sensitive",
        changed(sensitive_fields=("legal_rep_name",)),
        automatic(fields=["uscc", "legal_rep_name"]),
        GrantState.APPROVED,
    ),
    (
        "automatic, every field of it now sensitive",
        changed(sensitive_fields=("legal_rep_name",)),
        automatic(fields=["legal_rep_name"]),
        GrantState.LAPSED,
    ),
    (
        "provider-approved, class conditional",
        CONDITIONAL,
        provider_approved(CONDITIONAL, ("uscc",)),
        GrantState.APPROVED,
    ),
    (
        "automatic, expired before the class changed",
        CONDITIONAL,
        automatic(valid_until=NOW + dt.timedelta(hours=1)),
        GrantState.EXPIRED,
    ),
    (
        "automatic, revoked",
        CONDITIONAL,
        revoke(automatic(), acting_department="AMR", now=NOW, reason="done"),
        GrantState.REVOKED,
    ),
]


@pytest.mark.parametrize(("catalogue", "g", "shown"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_state_shown_is_approved_exactly_when_the_router_delivers_under_the_grant(
    catalogue: Catalogue, g: Grant, shown: GrantState
) -> None:
    assert shown_state(g, catalogue, LATER) is shown
    assert shown_state(g, catalogue.data_classes[ENTERPRISE], LATER) is shown  # the entry does as the catalogue
    assert (shown is GrantState.APPROVED) == delivered_under(catalogue, g)


def test_a_class_gone_from_the_catalogue_lapses_an_automatic_grant_not_a_provider_approved_one() -> None:
    """Nothing is routed for a class that left the catalogue. The bus's own grant is lapsed (it would confer
    again if the class came back unconditional); the provider's decision stands as it recorded it."""
    gone = without_enterprise()
    assert shown_state(automatic(), gone, LATER) is GrantState.LAPSED
    assert shown_state(automatic(), None, LATER) is GrantState.LAPSED
    assert shown_state(provider_approved(CONDITIONAL, ("uscc",)), gone, LATER) is GrantState.APPROVED


def test_an_older_provider_approved_grant_governs_before_an_automatic_one_with_every_field_now_sensitive() -> None:
    """The automatic grant confers nothing (shown lapsed), so the provider's grant delivers, as for a class
    that became conditional; the router chose the newer automatic grant and denied it."""
    approved = provider_approved(CONDITIONAL, ("uscc", "name"), decided=NOW - dt.timedelta(days=10))
    later = changed(sensitive_fields=("legal_rep_name",))
    plan = plan_routes(later, ENTERPRISE, {"hrss-si": [approved, automatic(fields=["legal_rep_name"])]}, LATER)
    assert [(d.consumer, d.grant_id) for d in plan.deliveries if d.consumer == "hrss-si"] == [("hrss-si", "g-amr")]
    assert [d for d in plan.denials if d.consumer == "hrss-si"] == []


def test_a_lapsed_state_is_denied_as_automatic_grant_lapsed_and_every_other_state_has_its_denial() -> None:
    """Never a recorded state, but the router looks up a reason for every state that is not approved."""
    assert _STATE_DENIALS[GrantState.LAPSED] is DenyReason.AUTOMATIC_GRANT_LAPSED
    assert set(_STATE_DENIALS) == set(GrantState) - {GrantState.APPROVED}


@pytest.mark.parametrize("derived", sorted(DERIVED_STATES))
def test_an_event_recording_a_derived_state_is_unreadable_and_closes_its_grant(derived: GrantState) -> None:
    """ "expired" and "lapsed" are seen, never recorded: a signed event claiming one is not a grant readers
    can read (a first "expired" was read as a final state the workflow never writes)."""
    assert derived.value in {"expired", "lapsed"}
    signer = Signer(Ed25519PrivateKey.generate())
    verifier = Verifier([signer.public_key], max_delay_s=300)
    claimed = encoded(grant()).replace(b'"state":"approved"', f'"state":"{derived.value}"'.encode())
    log, history = Log("ns.grants"), grant_log.GrantHistory(verifier)
    assert reason(history.open(log.signed(signer, "g-1", claimed))) is RejectReason.INVALID_PAYLOAD
    assert history.open(log.signed(signer, "g-1", encoded(grant()))) == grant()
    # After an approval, the claim closes the grant: nobody can tell what the control plane meant by it.
    closing = history.open(log.signed(signer, "g-1", claimed))
    assert isinstance(closing, ControlEventRejected)
    assert closing.reason is RejectReason.INVALID_PAYLOAD
    assert grant_log.closes_grant(closing) == "g-1"


# The gateway: /v1/grants and /v1/policies.jsonld over the in-memory grant service.


def gateway_client(catalogue: Catalogue, department: str = "HRSS") -> tuple[TestClient, MemoryGrants]:
    grants = MemoryGrants(CATALOGUE, GrantView(CATALOGUE))
    grants.apply(
        department="HRSS", requester="hrss-si", consumer="hrss-si", data_class=ENTERPRISE, purpose="p", scenario="s"
    )
    grants.catalogue = catalogue  # the bureau changed the class since
    app = FastAPI()
    app.include_router(grants_api.router)
    app.include_router(standards_api.router)
    settings = SimpleNamespace(public_url="https://bus.example", bootstrap_servers="k:9092", namespace="unit")
    app.state.gateway = SimpleNamespace(catalogue=catalogue, grants=grants, settings=settings)
    app.dependency_overrides[caller] = lambda: Caller("hrss-si", department, "k-1")
    return TestClient(app), grants


def test_the_grant_api_shows_a_lapsed_automatic_grant_as_lapsed_and_lists_it_so() -> None:
    api, grants = gateway_client(CONDITIONAL)
    [view] = api.get("/v1/grants").json()
    assert (view["grant"]["automatic"], view["effective_state"]) == (True, "lapsed")
    assert api.get(f"/v1/grants/{view['grant']['grant_id']}").json()["effective_state"] == "lapsed"
    assert api.get("/v1/grants", params={"state": "approved"}).json() == []
    assert [v["grant"]["grant_id"] for v in api.get("/v1/grants", params={"state": "lapsed"}).json()] == list(
        grants.log
    )
    unchanged, _ = gateway_client(CATALOGUE)
    assert [v["effective_state"] for v in unchanged.get("/v1/grants").json()] == ["approved"]


def test_a_lapsed_automatic_grant_is_no_odrl_agreement() -> None:
    lapsed, _ = gateway_client(CONDITIONAL)
    assert lapsed.get("/v1/policies.jsonld").json()["@graph"] == []
    unchanged, grants = gateway_client(CATALOGUE)
    [policy] = unchanged.get("/v1/policies.jsonld").json()["@graph"]
    assert policy["odrl:uid"]["@id"].endswith(next(iter(grants.log)))


def test_the_provider_may_still_revoke_a_lapsed_automatic_grant() -> None:
    """It would confer again should the class become unconditional again: revoking it ends it for good."""
    api, grants = gateway_client(CONDITIONAL, department="AMR")
    [grant_id] = grants.log
    assert api.get(f"/v1/grants/{grant_id}").json()["effective_state"] == "lapsed"
    revoked = api.post(f"/v1/grants/{grant_id}/revoke", json={"reason": "purpose ended"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["effective_state"] == "revoked"


# The CLI and the land service read what the gateway says.


def lapsed_view() -> dict[str, Any]:
    g = automatic()
    return {"grant": g.model_dump(mode="json"), "effective_state": "lapsed", "overdue": False}


def test_the_cli_lists_lapsed_grants_and_says_what_lapsed_means(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []

    class Gateway:
        def acting_as(self, department: str | None) -> SimpleNamespace:
            return SimpleNamespace(department="HRSS", system="hrss-si")

        def call(self, method: str, path: str, body: Any = None, params: Any = None) -> list[Any]:
            asked.append(params)
            return [lapsed_view()]

    monkeypatch.setattr(GatewayClient, "from_args", classmethod(lambda cls, args: Gateway()))
    parser = argparse.ArgumentParser()
    grant_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["grant", "list", "--state", "lapsed"])
    shown = grant_cmd.run(args)
    assert asked == [{"overdue": False, "state": "lapsed"}]
    assert shown.startswith("g-auto  lapsed  ")
    assert grant_cmd.LAPSED_NOTE in shown


def test_the_land_service_counts_a_lapsed_grant_as_ended() -> None:
    """Its class stops landing (and its rows follow the revoke policy); a delivery still in the topic under
    the lapsed grant's id is not taken for one under a grant in force."""
    body = json.dumps([lapsed_view()]).encode()
    watch = GrantWatch("http://gateway.invalid", SecretStr("sbk_x"), "hrss-si", CONDITIONAL, lambda: LATER)
    watch._client = httpx.Client(
        base_url="http://gateway.invalid", transport=httpx.MockTransport(lambda _r: httpx.Response(200, content=body))
    )
    standing = watch.ended_classes()
    watch.close()
    assert (standing.ended, standing.active, standing.ended_grants) == ({ENTERPRISE}, set(), {"g-auto"})
