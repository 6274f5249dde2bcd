"""Cross-level flows on the city bus (issue 16): level and district in the audit facts and the metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharebus_core.catalogue import load_catalogue
from sharebus_core.grants import GrantState
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_router_handler import penalty, penalty_grant

CITY = Path(__file__).resolve().parents[1] / "fixtures" / "federation" / "city"
CITY_CLASS = "301001002/000001"  # AMR's, the city's own
UP_CLASS = "301002001/000001"  # Yubei's, federated up


@pytest.fixture
def city() -> Harness:
    return Harness(load_catalogue(CITY))


def _cross(harness: Harness, direction: str, district: str) -> float:
    return harness.value("sharebus_cross_level_records_total", {"direction": direction, "district": district})


def test_a_district_class_delivered_in_the_city_is_audited_and_counted_as_up(city: Harness) -> None:
    city.grant(penalty_grant(grant_id="g-up", data_class=UP_CLASS, provider="YBAMR"))
    city.handle(UP_CLASS, city.encode(UP_CLASS, penalty()))
    [fact] = city.facts
    assert (fact["provider_level"], fact["provider_district"]) == ("district", "yubei")
    [made] = fact["decisions"]
    assert made["consumer"] == "tax-levy"
    assert made["decision"] == "deliver"
    assert "consumer_level" not in made  # the city's own system
    assert _cross(city, "up", "yubei") == 1
    assert _cross(city, "down", "yubei") == 0


def test_a_city_class_granted_down_to_a_district_system_is_audited_and_counted_as_down(city: Harness) -> None:
    city.grant(penalty_grant(grant_id="g-down", consumer="yb-tax", consumer_department="YBTAX"))
    city.handle(CITY_CLASS, city.encode(CITY_CLASS, penalty()))
    city.handle(CITY_CLASS, city.encode(CITY_CLASS, penalty()), offset=1)
    fact = city.facts[0]
    assert "provider_level" not in fact
    [made] = fact["decisions"]
    assert (made["consumer"], made["consumer_level"], made["consumer_district"]) == ("yb-tax", "district", "yubei")
    assert _cross(city, "down", "yubei") == 2
    assert _cross(city, "up", "yubei") == 0
    # Revoked: the denial is audited with the district too, and nothing more crosses.
    city.grant(
        penalty_grant(
            grant_id="g-down", consumer="yb-tax", consumer_department="YBTAX", state=GrantState.REVOKED, reason="done"
        )
    )
    city.handle(CITY_CLASS, city.encode(CITY_CLASS, penalty()), offset=2)
    [denied] = [d for d in city.facts[-1]["decisions"] if d["consumer"] == "yb-tax"]
    assert denied["decision"] == "deny"
    assert denied["consumer_district"] == "yubei"
    assert _cross(city, "down", "yubei") == 2
    assert TOPICS.delivery("yb-tax") in {topic for topic, *_ in city.sent}


@pytest.mark.parametrize("catalogue", [CITY, FIXTURE_CATALOGUE], ids=["city-with-districts", "no-districts"])
def test_a_city_flow_adds_no_level_field_and_no_cross_level_series(catalogue: Path) -> None:
    bus = Harness(load_catalogue(catalogue))
    bus.grant(penalty_grant())
    bus.handle(CITY_CLASS, bus.encode(CITY_CLASS, penalty()))
    [fact] = bus.facts
    assert fact["decisions"], fact  # a city system got the record: the fact is there to look at
    assert not {k for k in fact if k.endswith(("_level", "_district"))}
    assert not {k for d in fact["decisions"] for k in d if k.endswith(("_level", "_district"))}
    families = {m.name for m in bus.registry.collect() if m.samples}
    assert "sharebus_records" in families
    assert "sharebus_cross_level_records" not in families
