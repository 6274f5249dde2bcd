"""Faust wiring of periodic classes: the ``hold`` agent over the held topic and the marker timer.

- The route agent appends each valid record of a periodic class to the held topic, keyed by class.
- Every second the timer appends a release marker for each class whose window has ended (and an
  open marker for a class without state). Only the worker that owns the class's held partition
  (and so its state and its ``hold`` agent) does, and markers are idempotent anyway: the agent
  ignores one whose window is not the open one, so a repeated tick or a replay never releases twice.
- With several workers, the owner of a class's held partition is the only one releasing it. If it
  is killed mid-release, the next owner recovers the state (still the ended window: the new state
  is written only after the batch is acknowledged), reads the same marker again and releases the
  same batch (same id, same records) whole; the SDK hands it out once.
- The ``hold`` agent keeps each class's state in the ``periods`` table (changelog-backed, so it
  survives restarts) and, at a release marker, reads the window's records back from the held
  topic and hands them to the BatchReleaser.

Order at a release: the batch's audit facts are sent and flushed -> the targets they name are kept in
the state (``audited``, flushed) -> for each target, its deliveries are sent and flushed (acknowledged),
then the target is kept in the state as done (``done``, flushed before the next target's batch is sent:
``keep_target_done``) -> the producer is flushed (every one
acknowledged) -> the table's new state is written (its changelog record) -> the marker is acked ->
Faust flushes the producer again, then commits. A crash before the commit replays the marker: if
the new state reached the changelog the batch had reached Kafka before it, and the marker is stale
and ignored; otherwise the same batch (same batch id) is sent again, which the SDK's Subscriber
drops as a repeat, and once the state names its audited targets, only to those not done yet and without
auditing it again (a target whose grant ended meanwhile gets a fact withdrawing its deliveries instead,
``release.py``). A release that fails (Kafka or registry unavailable) leaves the window open and is retried.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import replace
from typing import Any

import faust

from sharebus_core import headers as h
from sharebus_core.catalogue import Catalogue, UpdateMode
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import RangeReader
from sharebus_router.held_records import HeldRecord, Origin, held_records
from sharebus_router.periodic import HoldState, MarkerKind, Release, due_marker, on_open, on_record, on_release
from sharebus_router.release import BatchReleaser
from sharebus_router.route_table import RouteTable
from sharebus_rules.periods import Window

log = logging.getLogger(__name__)
MARKER_INTERVAL_S = 1.0


def _window(raw: bytes) -> Window:
    data = json.loads(raw)
    return Window(dt.datetime.fromisoformat(data["start"]), dt.datetime.fromisoformat(data["end"]))


def _marker_headers(kind: MarkerKind, window: Window) -> list[tuple[str, bytes]]:
    payload = {"start": window.start.isoformat(), "end": window.end.isoformat()}
    return [(h.MARKER, kind.value.encode()), (h.MARKER_WINDOW, json.dumps(payload).encode())]


class MarkerSchedule:
    """Which periodic classes a marker tick looks at.

    A class whose open window ends later has nothing due until then, and a class whose held partition
    is another worker's has nothing due until the assignment changes; the tick skips both. Reading
    every class's state each second cost 1.7-5 s of the event loop per second over the city's 1,076
    periodic classes, and the data path shares that loop (issue 13).
    """

    def __init__(self, codes: list[str]) -> None:
        self.codes = codes
        # Class -> nothing due before this time (None: before the assignment changes).
        self._quiet: dict[str, dt.datetime | None] = {}
        self._ownership: object = None

    def due(self, at: dt.datetime, ownership: object) -> list[str]:
        if ownership != self._ownership:
            self._ownership = ownership
            self._quiet.clear()
        quiet = self._quiet
        return [c for c in self.codes if c not in quiet or ((until := quiet[c]) is not None and until <= at)]

    def quiet(self, code: str, until: dt.datetime | None) -> None:
        self._quiet[code] = until

    def changed(self, code: str) -> None:
        """The class's state changed (a marker was applied): look at it on the next tick."""
        self._quiet.pop(code, None)


class SentMarkers(dict[tuple[str, str], str]):
    """(class, marker kind) -> the window last marked by this worker, under its current held partitions."""

    def __init__(self) -> None:
        super().__init__()
        self._ownership: object = None

    def owner(self, ownership: object) -> None:
        """The held partitions are now ``ownership``: markers sent under other ones are forgotten."""
        if ownership != self._ownership:
            self._ownership = ownership
            self.clear()


async def keep_target_done(
    periods: MutableMapping[str, Any], code: str, name: str, flush: Callable[[], Awaitable[None]]
) -> None:
    """Keeps plan target ``name`` of the class's window as done, once its batch (or the withdrawal of its
    deliveries) is acknowledged, and flushes the state's changelog record before returning: so the next
    target's batch is sent only once this one's being done is durable, and a retry, here or on the next owner
    after a crash, neither sends to it nor counts it again, nor withdraws a batch it received whole (its
    grant revoked meanwhile). One flush per target of a window: releases are rare, and correctness wins."""
    raw = periods.get(code)
    state = HoldState.from_json(raw) if raw is not None else None
    if state is None or state.audited is None or name in state.done:
        return
    periods[code] = replace(state, done=(*state.done, name)).to_json()
    await flush()


def install_holding(
    app: faust.App,
    catalogue: Catalogue,
    held_topic_name: str,
    held_partitions: int,
    access: KafkaAccess,
    table: RouteTable,
    releaser: BatchReleaser,
    now: Callable[[], dt.datetime],
    refresh_clock: Callable[[], None],
    releases: Callable[[str], bool] = lambda code: True,
    lacking: Callable[[str], list[str]] = lambda code: [],
    ownership: Callable[[], object] = lambda: None,
    releasing: set[str] | None = None,
) -> Callable[[str], HoldState | None]:
    """Declares the table, agent and timer; returns a reader of a class's hold state (for backfills).

    ``releases(code)``: whether this worker owns the class's held partition (so emits its markers);
    ``lacking(code)``: targets with a hand-over point there that this worker's routes do not have yet
    (a release waits for them, see live_points.py); ``ownership()``: a value that changes whenever the
    worker's held partitions are assigned or revoked; ``releasing``: the classes whose window is being
    released here, from before the release reads the routes until the new state is written (a target
    installed meanwhile gets its hand-over point after, see live_points.py)."""
    releasing = set() if releasing is None else releasing
    policies = {code: e.update for code, e in catalogue.data_classes.items() if e.mode is UpdateMode.PERIODIC}
    periods = app.Table(
        "periods",
        default=None,
        partitions=held_partitions,
        # JSON, not the app's raw default: the state is a small document per class.
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
    )
    held = app.topic(
        held_topic_name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=held_partitions,
    )

    def state_of(code: str) -> HoldState | None:
        raw = periods.get(code)
        return HoldState.from_json(raw) if raw is not None else None

    async def window_records(code: str, since: int, upto: int, partition: int) -> list[HeldRecord]:
        """The class's records of the window, read in chunks so that other classes' records never pile up."""
        loop = asyncio.get_running_loop()
        reader = RangeReader(access, held_topic_name, partition, since, upto)
        records: list[HeldRecord] = []
        seen: set[Origin] = set()
        try:
            while not reader.done:
                chunk = await loop.run_in_executor(None, reader.next_chunk, 5000)
                records += held_records(chunk, code, seen)
        finally:
            reader.close()
        return records

    def keep_plan(code: str, ended: HoldState, upto: int) -> Callable[[tuple[str, ...]], Awaitable[None]]:
        async def audited(plan: tuple[str, ...]) -> None:
            # Kept (and acknowledged) before any delivery: a retry, here or on the next owner after a
            # crash, sends the audited deliveries (of the same held offsets) and audits nothing again.
            periods[code] = replace(ended, audited=plan, upto=upto).to_json()
            await app.producer.flush()

        return audited

    def keep_done(code: str) -> Callable[[str], Awaitable[None]]:
        async def done(name: str) -> None:
            await keep_target_done(periods, code, name, app.producer.flush)

        return done

    # (class, marker kind) -> the window last marked, so that a tick does not repeat a marker. Forgotten
    # when the held partitions change: a marker this worker sent may have been consumed by another owner
    # meanwhile (whose release failed or was cut short), and the window would wait for a restart.
    sent = SentMarkers()
    schedule = MarkerSchedule(list(policies))

    async def release(code: str, state: HoldState, due: Release, partition: int) -> None:
        try:
            records = await window_records(code, due.since, due.upto, partition)
            await releaser.release(
                code, due.window, records, state.audited, keep_plan(code, state, due.upto), state.done, keep_done(code)
            )
            # Every delivery of the batch is acknowledged before the new state is written: a state
            # that says "released" must never outlive a batch that did not reach Kafka.
            await app.producer.flush()
        except Exception:
            # The state still names the ended window, so forgetting the marker makes the timer
            # append another one: the release is retried (from the same records) in a second.
            log.exception("releasing %s's window %s failed; retrying", code, due.window.window_id)
            sent.pop((code, MarkerKind.RELEASE.value), None)
            return
        periods[code] = due.after.to_json()
        schedule.changed(code)

    @app.agent(held, name="hold")
    async def hold(stream: faust.StreamT[bytes]) -> None:
        await table.ready.wait()
        async for event in stream.events():
            message = event.message
            code = (message.key or b"").decode()
            policy = policies.get(code)
            if policy is None:
                log.warning("held record of %r, which is not a periodic class; skipped", code)
                continue
            meta = h.header_map(message.headers)
            kind = meta.get(h.MARKER)
            if kind is None:
                # Per held record only a presence check: the state is parsed for markers alone.
                if periods.get(code) is None:
                    opened = on_record(None, message.partition, message.offset, policy, now())
                    if opened is not None:
                        periods[code] = opened.to_json()
                        schedule.changed(code)
                continue
            state = state_of(code)
            if kind == MarkerKind.OPEN.value.encode():
                changed = on_open(state, _window(meta[h.MARKER_WINDOW]), message.partition, message.offset)
                if changed is not None:
                    periods[code] = changed.to_json()
                    schedule.changed(code)
            else:
                window = _window(meta[h.MARKER_WINDOW])
                due = on_release(state, window.window_id, message.offset, policy, now())
                if due is None:
                    continue
                waiting = lacking(code)
                if waiting:
                    # Another worker made these targets live on this partition; this one's grant
                    # follower is a moment behind. Releasing now would leave them out of the batch.
                    log.warning("releasing %s's window waits for targets %s to be installed", code, waiting)
                    sent.pop((code, MarkerKind.RELEASE.value), None)
                    continue
                assert state is not None  # on_release found the window open
                releasing.add(code)
                try:
                    await release(code, state, due, message.partition)
                finally:
                    releasing.discard(code)

    async def emit_markers() -> None:
        refresh_clock()
        if not table.ready.is_set():
            return
        at = now()
        owner = ownership()
        sent.owner(owner)
        for code in schedule.due(at, owner):
            if not releases(code):
                schedule.quiet(code, None)
                continue
            state = state_of(code)
            due = due_marker(state, policies[code], at)
            if due is None:
                # Only an open window that ends later has nothing due.
                schedule.quiet(code, state.window.end if state is not None else None)
                continue
            kind, window = due
            if sent.get((code, kind.value)) == window.window_id:
                continue
            sent[(code, kind.value)] = window.window_id
            await held.send(key=code.encode(), value=b"", headers=_marker_headers(kind, window))

    app.timer(MARKER_INTERVAL_S)(emit_markers)
    return state_of
