"""From one facts message of the router to the block bodies of its audit events: the auditor's per-event path.

An event is one decision for one record: the record fact's fields (its ``time`` as ISO 8601), the
decision's fields, and the facts partition. A block holds each event as its canonical JSON
(``sharebus_core.audit_trail.event_body``), which is what gets hashed as a Merkle leaf and written.

``fact_bodies`` writes those bytes without a second pass over each event: the message is read once by
orjson, each event's body written by orjson (sorted keys), and a fact holding a float anywhere (which
orjson writes unlike the reference encoder, and which is also how orjson reads an integer past 64 bits)
or anything else but text, integers, booleans, null, lists and objects (``plain``) sends the whole
message down the reference path (``json``, as the auditor always read and wrote it).
Either way the bytes are exactly ``event_body`` of ``audit_events``; a unit test holds them to it.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from sharebus_core.audit_trail import CANONICAL_OPTIONS, event_body, plain

# Everything a fact that is not what the router writes can raise on its way to events: the auditor
# skips (and counts) it instead of stopping on it. RecursionError: a message nested deeper than orjson
# reads (1024) goes to json, which runs out of stack on it; left out, it ended the auditor on every restart.
UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, ArithmeticError, OSError, RecursionError)


def event_time(seconds: Any) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")


class _EventTimes:
    """``event_time`` at a fraction of its cost: the facts of a batch share a few seconds, so the text
    of each whole second is kept, and the milliseconds are worked out as ``datetime`` does (the
    fraction rounded half to even to microseconds, then cut to milliseconds). A unit test holds it to
    ``event_time``."""

    def __init__(self) -> None:
        self._seconds: dict[float, str] = {}

    def __call__(self, seconds: Any) -> str:
        if type(seconds) is not float and type(seconds) is not int:
            return event_time(seconds)
        fraction, whole = math.modf(seconds)
        micros = round(fraction * 1e6)
        if micros >= 1_000_000:
            micros, whole = micros - 1_000_000, whole + 1
        elif micros < 0:
            micros, whole = micros + 1_000_000, whole - 1
        text = self._seconds.get(whole)
        if text is None:
            if len(self._seconds) > 4096:
                self._seconds.clear()
            whole_second = dt.datetime.fromtimestamp(int(whole), dt.UTC)
            text = self._seconds[whole] = whole_second.isoformat(timespec="seconds")[:-6]  # less "+00:00"
        return f"{text}.{micros // 1000:03d}+00:00"


def audit_events(batch: dict[str, Any], partition: int) -> list[dict[str, Any]]:
    """One unsealed audit event per decision, for every record fact in a batch from the router."""
    events: list[dict[str, Any]] = []
    for fact in batch["records"]:
        common = {k: v for k, v in fact.items() if k != "decisions"}
        common["time"] = event_time(fact["time"])
        events.extend({**common, **decision, "partition": partition} for decision in fact["decisions"])
    return events


def _reference_bodies(value: bytes, partition: int) -> tuple[list[bytes], dict[Any, int]]:
    events = audit_events(json.loads(value), partition)
    counts: dict[Any, int] = {}
    for event in events:
        counts[event["decision"]] = counts.get(event["decision"], 0) + 1
    return [event_body(event) for event in events], counts


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """A facts message makes thousands of dicts and lists that hold no cycles (refcounting frees them
    all); left on, the cycle collector ran every 700 of them and cost a tenth of the auditor's CPU
    (py-spy, issue 14). It is back on, as it was, as soon as the message is written."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def fact_bodies(value: bytes, partition: int) -> tuple[list[bytes], dict[Any, int]]:
    """The block bodies of a facts message's events, in order, and how many events per decision.

    Raises one of ``UNREADABLE`` for a message that is not a batch of record facts.
    """
    with _no_cycle_collection():
        return _fact_bodies(value, partition)


def _fact_bodies(value: bytes, partition: int) -> tuple[list[bytes], dict[Any, int]]:
    try:
        batch = orjson.loads(value)
    except orjson.JSONDecodeError:
        # What orjson refuses and json reads (NaN, a lone surrogate's escape, UTF-16): read as it always was.
        return _reference_bodies(value, partition)
    times = _EventTimes()
    counts: dict[Any, int] = {}
    events = []
    records = batch["records"]
    for fact in records:
        fact["time"] = times(fact["time"])  # the float every fact holds, as the event's text
        common = {k: v for k, v in fact.items() if k != "decisions"}
        for decision in fact["decisions"]:
            event = {**common, **decision, "partition": partition}
            events.append(event)
            made = event["decision"]
            counts[made] = counts.get(made, 0) + 1
    # Written by orjson only when no fact holds a float or anything but plain JSON (checked once, over
    # the whole message); else the whole message as it always was.
    if not plain(records):
        return _reference_bodies(value, partition)
    try:
        bodies = [orjson.dumps(event, option=CANONICAL_OPTIONS) for event in events]
    except orjson.JSONEncodeError:
        return _reference_bodies(value, partition)
    return bodies, counts
