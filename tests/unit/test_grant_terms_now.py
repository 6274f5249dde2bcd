"""A grant's terms are shown as the router delivers them now, not as recorded.

An automatic grant gives no field the catalogue has marked sensitive since (``routing._conferred``), and no
grant delivers a field the class's schema no longer has. The ODRL policies (``/v1/policies.jsonld``) must
not list such a field as permitted (nor its mask as a prohibition), and the portal's grant page must show
the delivered fields and say which granted ones are withheld now, and why.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from sharebus_core.grants import Grant
from sharebus_rules.conferred import Conferred, Withheld, conferred_in
from sharebus_rules.grant_workflow import approve
from sharebus_rules.odrl import grant_policies
from tests.unit.test_automatic_grants import CATALOGUE, ENTERPRISE, LATER, NOW, automatic, changed
from tests.unit.test_dcat import AT
from tests.unit.test_lapsed_grants_shown import gateway_client
from tests.unit.test_portal_pages import Client, grants_log, portal_app, state

__all__ = ["portal_app"]  # the pages' fixture, used here by name

PENALTY = "301001002/000001"  # conditional; person_id_number sensitive
NARROWED = changed(sensitive_fields=("legal_rep_name",))


def permitted(policy: dict[str, Any]) -> list[str]:
    [permission] = policy["odrl:permission"]
    [fields] = [c for c in permission["odrl:constraint"] if c["odrl:leftOperand"]["@id"].endswith("#field")]
    return [v["@value"] for v in fields["odrl:rightOperand"]]


def prohibited(policy: dict[str, Any]) -> list[str]:
    return [c["odrl:rightOperand"] for p in policy.get("odrl:prohibition", []) for c in p["odrl:constraint"]]


def test_an_automatic_grant_confers_no_field_marked_sensitive_since() -> None:
    grant = automatic(fields=["uscc", "legal_rep_name"], masked_fields=["legal_rep_name"])
    assert conferred_in(grant, NARROWED, LATER) == Conferred(("uscc",), (), (("legal_rep_name", Withheld.SENSITIVE),))
    assert conferred_in(grant, CATALOGUE, LATER) == Conferred(("uscc", "legal_rep_name"), ("legal_rep_name",), ())


def test_a_provider_approved_grant_keeps_its_sensitive_fields_and_loses_only_those_the_schema_dropped() -> None:
    """The provider decided on the sensitive field: the router delivers it. A field gone from the schema is
    delivered by no grant."""
    application = Grant.model_validate(
        {
            "grant_id": "g-amr",
            "data_class": PENALTY,
            "provider": "AMR",
            "consumer": "tax-levy",
            "consumer_department": "TAX",
            "requester": "tax-levy",
            "purpose": "p",
            "scenario": "s",
            "fields": ["uscc", "person_id_number", "dropped_since"],
            "masked_fields": ["person_id_number"],
            "state": "applied",
            "applied_at": NOW,
        }
    )
    grant = approve(application, acting_department="AMR", now=NOW)
    conferred = conferred_in(grant, CATALOGUE, LATER)
    assert conferred == Conferred(
        ("uscc", "person_id_number"), ("person_id_number",), (("dropped_since", Withheld.NOT_IN_SCHEMA),)
    )


def test_the_odrl_policies_permit_only_the_fields_the_router_delivers_now() -> None:
    api, _grants = gateway_client(NARROWED)  # hrss-si's automatic grant of every field open on the day
    [policy] = api.get("/v1/policies.jsonld").json()["@graph"]
    assert "legal_rep_name" not in permitted(policy)
    assert "uscc" in permitted(policy)
    unchanged, _ = gateway_client(CATALOGUE)
    [before] = unchanged.get("/v1/policies.jsonld").json()["@graph"]
    assert "legal_rep_name" in permitted(before)


def test_the_odrl_policies_prohibit_no_mask_of_a_field_no_longer_delivered() -> None:
    grant = automatic(fields=["uscc", "legal_rep_name"], masked_fields=["legal_rep_name"])
    [policy] = grant_policies([grant], NARROWED, LATER, AT)["@graph"]
    assert (permitted(policy), prohibited(policy)) == (["uscc"], [])
    [policy] = grant_policies([grant], CATALOGUE, LATER, AT)["@graph"]
    assert (permitted(policy), prohibited(policy)) == (["uscc", "legal_rep_name"], ["legal_rep_name"])


def test_the_grant_page_shows_the_delivered_fields_and_which_granted_ones_are_withheld_and_why(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    bureau = client("bureau")
    grant = grants_log(app).apply(
        department="HRSS",
        requester="hrss-si",
        consumer="hrss-si",
        data_class=ENTERPRISE,
        purpose="p",
        scenario="s",
        fields=["uscc", "legal_rep_name"],
        masked_fields=["legal_rep_name"],
    )
    assert grant.automatic
    before = bureau.get(f"/grants/{grant.grant_id}").text
    assert re.search(r'id="grant-fields">uscc, legal_rep_name<', before)
    assert 'id="grant-withheld"' not in before
    narrowed = changed(state(app).catalogue, sensitive_fields=("legal_rep_name",))
    state(app).catalogue = narrowed
    grants_log(app).catalogue = narrowed
    page = bureau.get(f"/grants/{grant.grant_id}").text
    assert re.search(r'id="grant-state">approved<', page)
    fields = re.search(r'id="grant-fields">([^<]*)<', page)
    assert fields is not None
    assert fields.group(1) == "uscc"
    assert re.search(r'id="grant-masked">—<', page)
    withheld = re.search(r'id="grant-withheld">(.*?)</span></dd>', page, re.S)
    assert withheld is not None
    assert '<span class="withheld-field">legal_rep_name</span>' in withheld.group(1)
    assert "marked sensitive since the bus granted it" in withheld.group(1)
