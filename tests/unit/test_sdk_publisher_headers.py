"""The Publisher refuses a record id, trace id or ``corrects`` the router would dead-letter as ``bad_header``
(not printable ASCII, blank, or over the router's 200 bytes): ``RecordInvalid`` up front, nothing sent.
Before, ``publish`` returned as if all was well and the record went to the dead-letter topic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import sharebus_sdk.publisher as publisher_mod
from sharebus_core import headers as h
from sharebus_core.catalogue import load_catalogue
from sharebus_core.records import RecordInvalid
from sharebus_router import bus_headers
from sharebus_sdk.header_values import MAX_ID_BYTES
from sharebus_sdk.publisher import Publisher, PublisherSettings

CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue"
ENTERPRISE = "301001001/000001"
RECORD = {
    "uscc": "U1",
    "name": "n",
    "legal_rep_name": "l",
    "registered_capital": 1.0,
    "established": dt.date(2020, 1, 1),
    "seq": 1,
    "note": None,
}


class Producer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def produce(self, topic: str, **kw: Any) -> None:
        self.sent.append(kw)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> tuple[Publisher, Producer]:
    producer = Producer()

    class Identity:
        system = None

        def __init__(self, settings: Any, acting_for: str) -> None:
            self.access = SimpleNamespace(producer=lambda config: producer)

        def client_config(self, config: dict[str, Any]) -> dict[str, Any]:
            return config

        def raise_if_refused(self) -> None:
            pass

    monkeypatch.setattr(publisher_mod, "ClientIdentity", Identity)
    monkeypatch.setattr(publisher_mod, "registry_client", lambda *a: None)
    made = Publisher("AMR", PublisherSettings(namespace="t"), load_catalogue(CATALOGUE))
    monkeypatch.setattr(made, "_serializer", lambda code: lambda record, ctx: b"avro")
    return made, producer


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("record_id", "订单-1"),
        ("record_id", "x" * (MAX_ID_BYTES + 1)),
        ("trace_id", "line\nbreak"),
        ("corrects", "   "),
        ("corrects", ""),
    ],
)
def test_a_header_value_the_router_would_dead_letter_is_refused_before_sending(
    publisher: tuple[Publisher, Producer], parameter: str, value: str
) -> None:
    made, producer = publisher
    with pytest.raises(RecordInvalid, match=parameter):
        made.publish(ENTERPRISE, RECORD, **{parameter: value})
    assert producer.sent == []


def test_values_the_router_takes_are_sent_as_given(publisher: tuple[Publisher, Producer]) -> None:
    made, producer = publisher
    longest = "r" * MAX_ID_BYTES
    assert made.publish(ENTERPRISE, RECORD, record_id=longest, trace_id="t-1", corrects="r-0") == longest
    sent = h.header_map(producer.sent[0]["headers"])
    assert sent[h.RECORD_ID] == longest.encode()
    assert sent[h.TRACE_ID] == b"t-1"
    assert sent[h.CORRECTS] == b"r-0"
    # The router passes each of them on unchanged.
    for name in (h.RECORD_ID, h.TRACE_ID, h.CORRECTS):
        assert bus_headers._checked(name, sent[name]) == sent[name]


def test_an_empty_record_or_trace_id_is_replaced_by_a_new_one(publisher: tuple[Publisher, Producer]) -> None:
    made, producer = publisher
    record_id = made.publish(ENTERPRISE, RECORD, record_id="", trace_id="")
    sent = h.header_map(producer.sent[0]["headers"])
    assert record_id
    assert sent[h.RECORD_ID] == record_id.encode()
    assert sent[h.TRACE_ID]
