"""The land service ends a class only where the router delivers the system nothing of it any more.

An unconditional class is delivered by the catalogue subscription, not by a grant (``routing.decide``): a
subscriber whose own grant for it was revoked, expired or lapsed still receives its open fields, under no
grant id. The sink must neither mark such a class revoked nor skip those deliveries. A system that is no
subscriber receives nothing once its grant ended, and its class ends as before.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from sharebus_core.catalogue import Catalogue
from sharebus_core.grants import Grant
from sharebus_land.grants import GrantStanding, GrantWatch
from sharebus_land.layout import class_table
from sharebus_rules.grant_workflow import revoke
from tests.unit.test_automatic_grants import CATALOGUE, ENTERPRISE, LATER, NOW, automatic, changed
from tests.unit.test_land import Feed, drain, enterprise, schema_of, sink


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'land.db'}"


def listed(*grants: Grant) -> httpx.MockTransport:
    """The gateway's /v1/grants with ``grants`` (the state it shows does not matter: the rule decides)."""
    views = [{"grant": g.model_dump(mode="json"), "effective_state": "revoked", "overdue": False} for g in grants]
    body = json.dumps(views).encode()
    return httpx.MockTransport(lambda _request: httpx.Response(200, content=body))


def watch(system: str, catalogue: Catalogue, *grants: Grant) -> GrantWatch:
    found = GrantWatch("http://gateway.invalid", SecretStr("sbk_x"), system, catalogue, lambda: LATER)
    found._client = httpx.Client(base_url="http://gateway.invalid", transport=listed(*grants))
    return found


def standing_of(system: str, catalogue: Catalogue, *grants: Grant) -> GrantStanding:
    grant_watch = watch(system, catalogue, *grants)
    try:
        return grant_watch.ended_classes()
    finally:
        grant_watch.close()


def revoked(grant: Grant) -> Grant:
    return revoke(grant, acting_department="AMR", now=NOW, reason="purpose ended")


def test_a_subscriber_whose_grant_for_an_unconditional_class_ended_keeps_the_class() -> None:
    """tax-levy subscribes to the unconditional enterprise class: its revoked grant takes nothing away."""
    standing = standing_of("tax-levy", CATALOGUE, revoked(automatic("tax-levy", "TAX")))
    assert ENTERPRISE not in standing.ended
    assert ENTERPRISE in standing.active  # delivered by the subscription: a class marked revoked lands again
    assert standing.ended_grants == {"g-auto"}


def test_a_subscriber_whose_automatic_grant_lapsed_keeps_the_unconditional_class() -> None:
    """Every field of its grant sensitive now: the grant lapsed, the subscription still gives the open fields."""
    narrowed = changed(sensitive_fields=("legal_rep_name",))
    standing = standing_of("tax-levy", narrowed, automatic("tax-levy", "TAX", fields=["legal_rep_name"]))
    assert (standing.ended, standing.active, standing.ended_grants) == (set(), {ENTERPRISE}, {"g-auto"})


def test_a_system_that_is_no_subscriber_loses_the_class_with_its_grant() -> None:
    """hrss-si receives the enterprise class only by its grant: revoked, the router denies it."""
    standing = standing_of("hrss-si", CATALOGUE, revoked(automatic()))
    assert (standing.ended, standing.active, standing.ended_grants) == ({ENTERPRISE}, set(), {"g-auto"})


def test_the_sink_lands_a_subscription_delivery_of_an_unconditional_class_after_its_grant_ended(
    db_url: str,
) -> None:
    """The router delivers the subscribed class under no grant id; the sink, told the grant ended, must still
    land it, and a class an earlier poll marked revoked lands again."""
    feed = Feed()
    feed.add(ENTERPRISE, "U0", enterprise(0), schema_of(CATALOGUE, ENTERPRISE, 1))
    feed.items[-1] = dataclasses.replace(feed.items[-1], grant_id=None)  # the subscription's delivery
    s, _ = sink(db_url, CATALOGUE, feed)
    s.revoked.add(ENTERPRISE)  # as an earlier poll under the old rule left it
    s.grants = watch("tax-levy", CATALOGUE, revoked(automatic("tax-levy", "TAX")))
    s.check_grants()
    assert ENTERPRISE not in s.revoked
    drain(s)
    assert [r["uscc"] for r in s.store.rows(class_table(ENTERPRISE))] == ["U0"]
    assert s.store.rows("sharebus_classes") == []
    s.close()


def test_the_sink_does_not_revoke_a_subscribed_unconditional_class_when_its_grant_ends(db_url: str) -> None:
    feed = Feed()
    feed.add(ENTERPRISE, "U0", enterprise(0), schema_of(CATALOGUE, ENTERPRISE, 1))
    feed.items[-1] = dataclasses.replace(feed.items[-1], grant_id=None)
    s, _ = sink(db_url, CATALOGUE, feed)
    s.grants = watch("tax-levy", CATALOGUE, revoked(automatic("tax-levy", "TAX")))
    s.check_grants()
    drain(s)
    assert ENTERPRISE not in s.revoked
    assert [r["uscc"] for r in s.store.rows(class_table(ENTERPRISE))] == ["U0"]
    assert s.metrics.registry.get_sample_value("sharebus_land_skipped_total", {"data_class": ENTERPRISE}) is None
    s.close()


def test_a_grant_outside_the_catalogue_ends_no_class_and_is_known_ended_once_revoked() -> None:
    gone = dataclasses.replace(
        CATALOGUE, data_classes={c: e for c, e in CATALOGUE.data_classes.items() if c != ENTERPRISE}
    )
    standing = standing_of("hrss-si", gone, revoked(automatic()))
    assert (standing.ended, standing.active, standing.ended_grants) == (set(), set(), {"g-auto"})
