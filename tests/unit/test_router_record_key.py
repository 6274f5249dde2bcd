"""The record key carries the class's key field: a consumer whose grant hides that field gets no key."""

from __future__ import annotations

import pytest

from sharebus_core import headers as h
from sharebus_core.catalogue import load_catalogue
from sharebus_core.grants import Grant
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_fail_closed import penalty_grant

PENALTY = "301001002/000001"  # conditional, key field uscc
KEY = b"91500000MA0000001X"
RECORD: dict[str, object] = {"uscc": KEY.decode(), "person_id_number": "11010519491231002X", "amount": 100.0, "seq": 1}


def _grant(fields: tuple[str, ...], masked: tuple[str, ...] = ()) -> Grant:
    return penalty_grant("g-key").model_copy(update={"fields": fields, "masked_fields": masked})


@pytest.mark.parametrize(
    ("fields", "masked", "key"),
    [
        (("uscc", "amount", "seq"), (), KEY),
        (("amount", "seq"), (), None),
        (("uscc", "amount", "seq"), ("uscc",), None),
    ],
    ids=["key-field-granted", "key-field-left-out", "key-field-masked"],
)
def test_the_delivered_key_is_withheld_unless_the_grant_shows_the_key_field(
    fields: tuple[str, ...], masked: tuple[str, ...], key: bytes | None
) -> None:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    harness.grant(_grant(fields, masked))
    harness.handle_raw(PENALTY, harness.encode(PENALTY, RECORD), [], key=KEY)
    [(_topic, sent_key, value, headers)] = [sent for sent in harness.sent if sent[0] == TOPICS.delivery("tax-levy")]
    assert sent_key == key
    # The consumer is told which field its key is withheld for (the name only), and only then.
    assert h.header_map(headers).get(h.KEY_WITHHELD) == (None if key is not None else b"uscc")
    assert value is not None
    delivered = harness.decode(value)
    assert sorted(delivered) == sorted(fields)
    if key is None and "uscc" in delivered:
        assert delivered["uscc"] != RECORD["uscc"]
