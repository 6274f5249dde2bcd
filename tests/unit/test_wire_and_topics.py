from __future__ import annotations

import pytest

from sharebus_core.headers import header_map, text
from sharebus_core.topics import TopicNames, class_slug
from sharebus_core.wire import WireFormatError, frame, unframe


def test_frame_round_trip() -> None:
    raw = frame(1234, b"body")
    assert raw[:5] == b"\x00\x00\x00\x04\xd2"
    schema_id, body = unframe(raw)
    assert schema_id == 1234
    assert bytes(body) == b"body"


@pytest.mark.parametrize(
    ("raw", "message"),
    [(None, "no value"), (b"\x00\x01", "shorter than the 5-byte"), (b"\x07\x00\x00\x00\x01x", "not the wire format")],
)
def test_unframe_refuses_other_bytes(raw: bytes | None, message: str) -> None:
    with pytest.raises(WireFormatError, match=message):
        unframe(raw)


def test_topic_names_are_one_scheme() -> None:
    topics = TopicNames("ns")
    assert class_slug("301001001/000001") == "301001001.000001"
    assert topics.source("301001001/000001") == "ns.src.301001001.000001"
    assert topics.delivery("tax-levy") == "ns.dlv.tax-levy"
    assert topics.value_subject("301001001/000001") == "ns.src.301001001.000001-value"
    assert topics.dead_letter == "ns.dlq"
    assert topics.schemas == "ns._schemas"


def test_headers_normalise_both_shapes() -> None:
    assert header_map([("a", b"1"), ("b", None), ("c", "x")]) == {"a": b"1", "c": b"x"}
    assert header_map({"a": b"1"}) == {"a": b"1"}
    assert header_map(None) == {}
    assert text({"a": b"\xe4\xb8\xad"}, "a") == "中"
    assert text({}, "a") is None
