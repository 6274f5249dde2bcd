"""The gateway's pure parts: API key hashing, feed positions as event ids, JSON records and their errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sharebus_core.catalogue import load_catalogue
from sharebus_gateway import positions
from sharebus_gateway.json_avro import record_from_json, to_json, validate_batch
from sharebus_gateway.keys import hash_token, key_id_of, matches, new_key
from sharebus_gateway.publish import normalise_class_code

CATALOGUE = load_catalogue(Path(__file__).resolve().parents[1] / "fixtures" / "catalogue")
ENTERPRISE = CATALOGUE.schema("301001001/000001")
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_an_issued_key_stores_only_the_hash_of_its_token() -> None:
    issued = new_key("tax-levy", "TAX", NOW)
    token = issued.token.get_secret_value()
    assert token not in issued.key.model_dump_json()
    assert issued.key.key_hash == hash_token(token)
    assert key_id_of(token) == issued.key.key_id
    assert matches(issued.key, token)
    assert not matches(issued.key, token + "x")
    assert "**" in repr(issued.token)  # SecretStr keeps it out of logs and reprs


def test_two_keys_never_share_id_or_token() -> None:
    a, b = new_key("tax-levy", "TAX", NOW), new_key("tax-levy", "TAX", NOW)
    assert a.key.key_id != b.key.key_id
    assert a.token.get_secret_value() != b.token.get_secret_value()


@pytest.mark.parametrize("token", ["", "sbk", "sbk_", "sbk__secret", "xyz_id_secret", "Bearer sbk_a_b"])
def test_malformed_tokens_have_no_key_id(token: str) -> None:
    assert key_id_of(token) is None


def test_a_secret_may_contain_underscores() -> None:
    assert key_id_of("sbk_abc_se_cr_et") == "abc"


def test_positions_round_trip_in_partition_order() -> None:
    encoded = positions.encode({2: 7, 0: 15, 1: 0})
    assert encoded == "0:15,1:0,2:7"
    assert positions.decode(encoded) == {0: 15, 1: 0, 2: 7}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "at least one"),
        ("0:1,0:2", "listed twice"),
        ("0-1", "not partition:offset"),
        ("a:1", "not partition:offset"),
        ("0:-1", "not partition:offset"),
        ("0:\u00b2", "not partition:offset"),
        ("\u00b9:0", "not partition:offset"),
        ("0:" + "9" * 5000, "not partition:offset"),
        ("0:" + "9" * 20, "not partition:offset"),
    ],
)
def test_bad_positions_say_what_is_wrong(text: str, problem: str) -> None:
    """Non-ASCII digits ('²') and numbers past an offset's 19 digits are BadPosition (the feed's 400),
    never the plain ValueError int() raises, which answered 500 on SSE and broke the WebSocket."""
    with pytest.raises(positions.BadPosition, match=problem):
        positions.decode(text)


def test_the_largest_offset_is_a_position() -> None:
    assert positions.decode(f"0:{2**63 - 1}") == {0: 2**63 - 1}


def enterprise(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "uscc": "U1",
        "name": "n",
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": "2020-01-02",
        "seq": 1,
    }
    return {**record, **changes}


def test_iso_dates_become_avro_dates_and_come_back_as_iso() -> None:
    record = record_from_json(enterprise(), ENTERPRISE)
    assert record["established"] == dt.date(2020, 1, 2)
    assert to_json(record)["established"] == "2020-01-02"
    assert to_json({"at": dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC), "raw": b"\x00\x01"}) == {
        "at": "2026-01-01T08:00:00+00:00",
        "raw": "AAE=",
    }


def test_a_batch_reports_every_invalid_record_by_index_and_field() -> None:
    nameless = enterprise()
    del nameless["name"]
    batch = [
        enterprise(),
        enterprise(seq="x"),
        "not an object",
        nameless,
        enterprise(established="1st May"),
        enterprise(extra=1),
    ]
    converted, problems = validate_batch(batch, ENTERPRISE)
    assert [(p.index, p.field) for p in problems] == [
        (1, "seq"),
        (2, None),
        (3, "name"),
        (4, "established"),
        (5, "extra"),
    ]
    assert len(converted) == 1
    assert problems[0].as_json()["message"].startswith("value 'x' does not fit type long")


def test_a_valid_batch_has_no_problems() -> None:
    converted, problems = validate_batch([enterprise(seq=n) for n in range(3)], ENTERPRISE)
    assert problems == []
    assert [r["seq"] for r in converted] == [0, 1, 2]


def test_class_codes_are_accepted_in_both_forms() -> None:
    assert normalise_class_code("301001001.000001") == "301001001/000001"
    assert normalise_class_code("301001001/000001") == "301001001/000001"


def test_a_date_sent_as_a_number_no_reader_can_decode_is_refused_by_field() -> None:
    # JSON numbers reach the schema untouched: fastavro takes any int32 for a date, but the router
    # decodes into a Python date (years 1 to 9999), so 10**9 days would be accepted, then dead-lettered.
    batch = [enterprise(established=10**9), enterprise(established=-(10**9)), enterprise(established=2_932_896)]
    converted, problems = validate_batch(batch, ENTERPRISE)
    assert [(p.index, p.field) for p in problems] == [(0, "established"), (1, "established")]
    assert "out of range: it must be a date from 0001-01-01 to 9999-12-31" in problems[0].message
    assert [r["established"] for r in converted] == [2_932_896]  # 9999-12-31, the last day a reader can hold


def test_a_lone_surrogate_from_a_json_escape_is_refused_by_field_not_left_to_the_serializer() -> None:
    # "\ud800" is valid JSON and a valid Python str, but not UTF-8: the Avro serializer would raise.
    name, key = json.loads('["\\ud800", "U\\udfff1"]')
    converted, problems = validate_batch([enterprise(name=name), enterprise(uscc=key), enterprise()], ENTERPRISE)
    assert [(p.index, p.field) for p in problems] == [(0, "name"), (1, "uscc")]
    assert "cannot be encoded as UTF-8" in problems[0].message
    assert len(converted) == 1
