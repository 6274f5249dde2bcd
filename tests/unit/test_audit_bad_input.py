"""Audit input that is not what sharebus writes (too deeply nested, a lone surrogate, a time with no time
zone): skipped or reported as broken, never a traceback that ends the auditor or the CLI."""

from __future__ import annotations

import argparse
import datetime as dt
from types import SimpleNamespace
from typing import Any, cast

import pytest

from sharebus_audit.facts import UNREADABLE, fact_bodies
from sharebus_cli import audit_cmd
from sharebus_core.audit_trail import GENESIS, decode_record, encode_block, event_body, link_problem, verify_links
from sharebus_core.settings import BusSettings
from sharebus_ops import audit as ops_audit


@pytest.mark.parametrize("depth", [1_023, 2_000, 100_000])
def test_a_deeply_nested_facts_message_is_unreadable_not_a_crash(depth: int) -> None:
    """Past orjson's 1024 levels the message went to json, whose RecursionError was not one of
    UNREADABLE: it ended the auditor, and again on every restart (docs/audit.md: skipped whole)."""
    nested = b"[" * depth + b"]" * depth
    value = b'{"records":[{"time":1.5,"decisions":[{"decision":"deliver"}],"x":' + nested + b"}]}"
    with pytest.raises(UNREADABLE):
        fact_bodies(value, 0)


def _block(event_json: bytes) -> bytes:
    """A block record of one event, as raw bytes (the hashes do not matter: it cannot be decoded)."""
    return (
        b'{"kind":"block","prev_hash":"'
        + GENESIS.encode()
        + b'","root":"00","count":1,"hash":"00","events":['
        + event_json
        + b"]}"
    )


class _Message:
    def __init__(self, value: bytes, offset: int = 0) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


@pytest.mark.parametrize(
    "value",
    [
        _block(b'{"partition":0,"x":"\\ud800"}'),
        _block(b'{"partition":0,"x":"a\\uDFFFb"}'),
        b'{"partition":0,"prev_hash":"' + GENESIS.encode() + b'","hash":"00","x":"\\udc00"}',  # before blocks
        b"[" * 100_000 + b"]" * 100_000,
        _block(b'{"partition":0,"x":' + b"[" * 5_000 + b"]" * 5_000 + b"}"),
    ],
)
def test_a_record_with_a_lone_surrogate_or_nested_past_the_stack_is_no_audit_record(value: bytes) -> None:
    """Before, decode_record let a lone surrogate through (link_problem then raised UnicodeEncodeError)
    and raised RecursionError on deep nesting: `sharebus audit verify` ended in a traceback."""
    assert decode_record(value) is None


def test_text_that_only_looks_like_a_surrogate_is_read_as_it_is() -> None:
    """A surrogate pair is one character, and an escaped backslash before "ud800" is text."""
    assert decode_record(b'{"x":"\\ud83d\\ude00","y":"\\\\ud800"}') == {"x": "\U0001f600", "y": "\\ud800"}


def test_verify_reports_a_trail_record_with_a_lone_surrogate_as_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the CLI: exit 5, BROKEN at the record, not a traceback."""
    _hash, good = encode_block([event_body({"partition": 0, "decision": "deliver"})], GENESIS)
    bad = _block(b'{"partition":0,"x":"\\ud800"}')
    monkeypatch.setattr(ops_audit, "_committed", lambda *_a: [_Message(good, 0), _Message(bad, 1)])
    settings = SimpleNamespace(namespace="ns", kafka=None, audit_verifier=lambda: None)
    args = argparse.Namespace(action="verify", topic="a.copy")
    out, code = audit_cmd.run(args, cast(BusSettings, settings))
    assert code == 5
    assert "BROKEN at partition 0, offset 1: the record is not an audit record" in out


def _nested(depth: int) -> list[Any]:
    inner: list[Any] = []
    for _ in range(depth):
        inner = [inner]
    return inner


@pytest.mark.parametrize(
    "record",
    [
        {"kind": "block", "prev_hash": GENESIS, "root": "00", "count": 1, "hash": "00", "events": [{"x": "\ud800"}]},
        {"prev_hash": GENESIS, "hash": "00", "partition": 0, "x": "\udc00"},
        {
            "kind": "block",
            "prev_hash": GENESIS,
            "root": "00",
            "count": 1,
            "hash": "00",
            "events": [{"x": _nested(5_000)}],
        },
    ],
)
def test_a_record_made_otherwise_that_cannot_be_hashed_is_a_broken_link(record: dict[str, Any]) -> None:
    """A record not from decode_record (a caller's own): link_problem names the problem, raising nothing."""
    assert "cannot be hashed" in str(link_problem(record))
    _events, broken = verify_links(0, [(0, record)])
    assert broken is not None


def _deliver(time: Any, consumer: Any = "s") -> bytes:
    event = {"decision": "deliver", "data_class": "C", "consumer": consumer, "grant_id": "g", "time": time}
    _hash, value = encode_block([event_body({**event, "partition": 0})], GENESIS)
    return value


def test_who_skips_a_delivery_with_a_time_or_consumer_the_auditor_never_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A time with no offset raised TypeError (compared with --since, in UTC); one that is no ISO time
    ValueError; a consumer that is a list TypeError. Each is skipped, the good delivery still counted."""
    values = [
        _deliver("2026-05-01T08:00:00"),
        _deliver("yesterday"),
        _deliver(1_777_000_000),
        _deliver("2026-05-01T08:00:00+00:00", consumer=["s"]),
        _deliver("2026-05-01T09:00:00.000+00:00"),
    ]
    monkeypatch.setattr(ops_audit, "_committed", lambda *_a: [_Message(v, i) for i, v in enumerate(values)])
    receipts = ops_audit.who_received(None, "t", "C", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))  # type: ignore[arg-type]
    assert receipts == [
        ops_audit.Receipt("s", "g", 1, "2026-05-01T09:00:00.000+00:00", "2026-05-01T09:00:00.000+00:00")
    ]
