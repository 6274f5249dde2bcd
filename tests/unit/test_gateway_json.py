"""The gateway reads request bodies as JSON (RFC 8259), not as Python's json module does: ``NaN``,
``Infinity`` and ``-Infinity`` are no JSON, so a body with one is refused with a 400 that names it,
before any route sees it (a double would otherwise be published as NaN)."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_gateway_callers import AMR_REG, ENTERPRISE, RECORD, TWO_SYSTEMS, client, gateway

HEADERS = {"Content-Type": "application/json"}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_record_with_a_non_json_number_is_refused_400_and_not_published(literal: str) -> None:
    gw = gateway(TWO_SYSTEMS)
    # The record is valid but for the literal, as json.dumps writes a float('nan') by default.
    body = json.dumps({**RECORD, "registered_capital": float(literal)})
    assert literal in body
    response = client(gw, AMR_REG).post(f"/v1/classes/{ENTERPRISE}/records", content=body, headers=HEADERS)
    assert response.status_code == 400, response.text
    assert literal in response.json()["detail"]
    assert "not valid JSON" in response.json()["detail"]
    assert gw.publisher.published == []


def test_a_batch_with_one_non_json_number_publishes_none_of_it() -> None:
    gw = gateway(TWO_SYSTEMS)
    body = '[{"seq": 1}, {"registered_capital": NaN}]'
    response = client(gw, AMR_REG).post(f"/v1/classes/{ENTERPRISE}/records", content=body, headers=HEADERS)
    assert response.status_code == 400, response.text
    assert gw.publisher.published == []


def test_large_finite_numbers_and_the_string_nan_are_still_json() -> None:
    gw = gateway(TWO_SYSTEMS)
    record = {**RECORD, "registered_capital": 1e308, "name": "NaN"}
    response = client(gw, AMR_REG).post(f"/v1/classes/{ENTERPRISE}/records", json=record)
    assert response.status_code == 200, response.text
    [(_code, published, _corrects)] = gw.publisher.published
    assert (published["registered_capital"], published["name"]) == (1e308, "NaN")
