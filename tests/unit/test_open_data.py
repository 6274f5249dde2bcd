"""The open-data rule: who may read a class on the open path, and that no sensitive field ever leaves."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from sharebus_core.catalogue import Catalogue, OpenType, ShareType, load_catalogue
from sharebus_core.topics import PUBLIC_CONSUMER
from sharebus_demo.fake import RecordFaker
from sharebus_gateway.open_api import OMITTED, fit_to_limit
from sharebus_gateway.open_view import OpenRecords
from sharebus_gateway.settings import GatewaySettings
from sharebus_rules import plan_routes
from sharebus_rules.dcat import Addresses, catalogue_dcat
from sharebus_rules.open_data import (
    NotOpen,
    PublicAccess,
    is_open,
    key_is_open,
    open_catalogue,
    open_fields,
    open_record,
    open_schema,
    public_access,
)
from tests.unit.router_harness import TOPICS, Harness

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
# Unvalidated: the view is only built here, never started (no broker in a unit test).
OPEN_SETTINGS = GatewaySettings.model_construct(open_recent_records=10)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(ROOT / "schemas")


def test_every_class_gets_the_access_its_open_type_says(catalogue: Catalogue) -> None:
    seen = set()
    for entry in catalogue.data_classes.values():
        seen.add(entry.open_type)
        if entry.open_type is OpenType.NOT_OPEN:
            with pytest.raises(NotOpen):
                public_access(entry)
            with pytest.raises(NotOpen):
                open_fields(entry, catalogue.schema(entry.code).field_names)
        else:
            expected = PublicAccess.ANYONE if entry.open_type is OpenType.OPEN else PublicAccess.OPEN_DATA_KEY
            assert public_access(entry) is expected
    assert seen == set(OpenType), "the seed catalogue should exercise every open type"


def test_no_sensitive_field_is_ever_open(catalogue: Catalogue) -> None:
    with_sensitive = [
        e for e in catalogue.data_classes.values() if e.open_type is not OpenType.NOT_OPEN and e.sensitive_fields
    ]
    assert with_sensitive, "the seed catalogue should have an open class with sensitive fields"
    for entry in with_sensitive:
        names = catalogue.schema(entry.code).field_names
        fields = open_fields(entry, names)
        assert not set(fields) & set(entry.sensitive_fields)
        assert fields == tuple(f for f in names if f not in entry.sensitive_fields)
        record = dict.fromkeys(names, "x")
        assert set(open_record(record, fields)) == set(fields)
        schema = open_schema(json.loads(catalogue.schema(entry.code).text), fields)
        assert [f["name"] for f in schema["fields"]] == list(fields)


def test_an_open_record_drops_whatever_else_it_carries() -> None:
    assert open_record({"a": 1, "id_number": "11010519491231002X", "b": None}, ("a", "b")) == {"a": 1, "b": None}


def test_the_router_plans_a_public_delivery_only_when_asked_and_only_of_open_fields(catalogue: Catalogue) -> None:
    for code, entry in catalogue.data_classes.items():
        closed = plan_routes(catalogue, code, {}, NOW)
        assert PUBLIC_CONSUMER not in {d.consumer for d in closed.deliveries}
        opened = [
            d for d in plan_routes(catalogue, code, {}, NOW, public=True).deliveries if d.consumer == PUBLIC_CONSUMER
        ]
        expected = entry.open_type is not OpenType.NOT_OPEN and entry.share_type is not ShareType.NONE
        assert len(opened) == int(expected), code
        if opened:
            [public] = opened
            names = catalogue.schema(code).field_names
            delivered = names if public.fields is None else public.fields
            assert not set(delivered) & set(entry.sensitive_fields)
            assert not public.masked
            assert public.grant_id is None


def test_the_public_route_sends_no_sensitive_field(catalogue: Catalogue) -> None:
    code = next(
        c
        for c, e in catalogue.data_classes.items()
        if e.open_type is OpenType.OPEN and e.sensitive_fields and e.share_type is not ShareType.NONE
    )
    entry = catalogue.data_class(code)
    record = RecordFaker(seed=7).record(catalogue.schema(code))
    harness = Harness(catalogue, public=True)
    harness.handle(code, harness.encode(code, record))
    public = [(topic, value) for topic, _key, value, _headers in harness.sent if topic == TOPICS.public]
    assert len(public) == 1
    value = public[0][1]
    assert value is not None
    delivered = harness.decode(value)
    assert set(delivered) == set(catalogue.schema(code).field_names) - set(entry.sensitive_fields)
    # Timestamps travel in milliseconds; every other value arrives as published.
    exact = [f for f in delivered if not isinstance(record[f], dt.datetime)]
    assert {f: delivered[f] for f in exact} == {f: record[f] for f in exact}
    # Without the setting, the public topic receives nothing.
    closed = Harness(catalogue)
    closed.handle(code, closed.encode(code, record))
    assert not [t for t, *_ in closed.sent if t == TOPICS.public]


def test_a_class_not_shared_is_not_open_on_any_path(catalogue: Catalogue) -> None:
    code = "301001002/000001"
    closed = catalogue.data_classes[code].model_copy(update={"share_type": ShareType.NONE})
    assert is_open(catalogue.data_classes[code])
    assert not is_open(closed)
    with pytest.raises(NotOpen):
        public_access(closed)
    cut = dataclasses.replace(catalogue, data_classes={**catalogue.data_classes, code: closed})
    assert code not in open_catalogue(cut).data_classes
    assert code not in OpenRecords(OPEN_SETTINGS, cut, "t.public").fields
    document = catalogue_dcat(cut, Addresses("https://data.example", "broker-1:9093"), "BDB")
    nodes = {node["@id"]: node for node in document["@graph"]}
    dataset = nodes[f"https://data.example/id/classes/{code}"]
    assert f"https://data.example/id/classes/{code}/distributions/open" not in nodes
    assert dataset["dct:accessRights"]["@id"].endswith("/NON_PUBLIC")


def test_the_record_key_is_served_only_when_its_field_is_open(catalogue: Catalogue) -> None:
    entry = catalogue.data_classes["301001002/000001"]
    names = catalogue.schema(entry.code).field_names
    assert key_is_open(entry, open_fields(entry, names))
    sensitive_key = entry.model_copy(update={"key_field": "party_id_number"})
    assert not key_is_open(sensitive_key, open_fields(sensitive_key, names))
    view = OpenRecords(OPEN_SETTINGS, catalogue, "t.public")
    assert view.serves_key(entry.code)
    cut = dataclasses.replace(catalogue, data_classes={**catalogue.data_classes, entry.code: sensitive_key})
    assert not OpenRecords(OPEN_SETTINGS, cut, "t.public").serves_key(entry.code)


def test_a_record_larger_than_the_response_limit_does_not_block_paging() -> None:
    small = [{"seq": n, "record_id": f"r{n}", "value": {"x": "a"}} for n in (5, 4)]
    huge = {"seq": 3, "record_id": "r3", "value": {"x": "b" * 5000}}
    older = [{"seq": n, "record_id": f"r{n}", "value": {"x": "a"}} for n in (2, 1)]
    body, served = fit_to_limit("c", [*small, huge, *older], 5, 1024)
    assert [r["seq"] for r in body["records"]] == [5, 4, 3, 2, 1]
    assert body["records"][2]["value"] is None
    assert body["records"][2]["omitted"] == OMITTED
    assert body["records"][2]["record_id"] == "r3"
    assert served == 5
    # Alone on a page, it is served the same way, and paging goes on past it.
    body, _served = fit_to_limit("c", [huge], 1, 1024)
    assert body["records"][0]["omitted"] == OMITTED
    assert body["next_before"] == 3
