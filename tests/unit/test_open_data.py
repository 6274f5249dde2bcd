"""The open-data rule: who may read a class on the open path, and that no sensitive field ever leaves."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sharebus_core.catalogue import Catalogue, OpenType, ShareType, load_catalogue
from sharebus_core.topics import PUBLIC_CONSUMER
from sharebus_demo.fake import RecordFaker
from sharebus_rules import plan_routes
from sharebus_rules.open_data import NotOpen, PublicAccess, open_fields, open_record, open_schema, public_access
from tests.unit.router_harness import TOPICS, Harness

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


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
