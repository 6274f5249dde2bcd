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
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import replace
from typing import Any

import faust

from sharebus_core import headers as h
from sharebus_core.catalogue import Catalogue, UpdateMode, UpdatePolicy
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


async def window_records(
    access: KafkaAccess, held_topic: str, code: str, since: int, upto: int, partition: int
) -> list[HeldRecord]:
    """The class's records of the window, read in chunks so that other classes' records never pile up."""
    loop = asyncio.get_running_loop()
    reader = RangeReader(access, held_topic, partition, since, upto)
    records: list[HeldRecord] = []
    seen: set[Origin] = set()
    try:
        while not reader.done:
            chunk = await loop.run_in_executor(None, reader.next_chunk, 5000)
            records += held_records(chunk, code, seen)
    finally:
        reader.close()
    return records


class Holding:
    """What the ``hold`` agent and the marker timer do (``install_holding`` says what each argument is)."""

    def __init__(
        self,
        app: faust.App,
        periods: MutableMapping[str, Any],
        held: faust.TopicT,
        held_topic: str,
        policies: dict[str, UpdatePolicy],
        access: KafkaAccess,
        table: RouteTable,
        releaser: BatchReleaser,
        now: Callable[[], dt.datetime],
        refresh_clock: Callable[[], None],
        releases: Callable[[str], bool],
        lacking: Callable[[str], list[str]],
        ownership: Callable[[], object],
        releasing: set[str],
    ) -> None:
        self.app = app
        self.periods = periods
        self.held = held
        self.held_topic = held_topic
        self.policies = policies
        self.access = access
        self.table = table
        self.releaser = releaser
        self.now = now
        self.refresh_clock = refresh_clock
        self.releases = releases
        self.lacking = lacking
        self.ownership = ownership
        self.releasing = releasing
        # (class, marker kind) -> the window last marked, so that a tick does not repeat a marker. Forgotten
        # when the held partitions change: a marker this worker sent may have been consumed by another owner
        # meanwhile (whose release failed or was cut short), and the window would wait for a restart.
        self.sent = SentMarkers()
        self.schedule = MarkerSchedule(list(policies))

    def state_of(self, code: str) -> HoldState | None:
        raw = self.periods.get(code)
        return HoldState.from_json(raw) if raw is not None else None

    def keep_plan(self, code: str, ended: HoldState, upto: int) -> Callable[[tuple[str, ...]], Awaitable[None]]:
        async def audited(plan: tuple[str, ...]) -> None:
            # Kept (and acknowledged) before any delivery: a retry, here or on the next owner after a
            # crash, sends the audited deliveries (of the same held offsets) and audits nothing again.
            self.periods[code] = replace(ended, audited=plan, upto=upto).to_json()
            await self.app.producer.flush()

        return audited

    def keep_done(self, code: str) -> Callable[[str], Awaitable[None]]:
        async def done(name: str) -> None:
            await keep_target_done(self.periods, code, name, self.app.producer.flush)

        return done

    async def release(self, code: str, state: HoldState, due: Release, partition: int) -> None:
        try:
            records = await window_records(self.access, self.held_topic, code, due.since, due.upto, partition)
            await self.releaser.release(
                code,
                due.window,
                records,
                state.audited,
                self.keep_plan(code, state, due.upto),
                state.done,
                self.keep_done(code),
            )
            # Every delivery of the batch is acknowledged before the new state is written: a state
            # that says "released" must never outlive a batch that did not reach Kafka.
            await self.app.producer.flush()
        except Exception:
            # The state still names the ended window, so forgetting the marker makes the timer
            # append another one: the release is retried (from the same records) in a second.
            log.exception("releasing %s's window %s failed; retrying", code, due.window.window_id)
            self.sent.pop((code, MarkerKind.RELEASE.value), None)
            return
        self.periods[code] = due.after.to_json()
        self.schedule.changed(code)

    async def hold(self, stream: faust.StreamT[bytes]) -> None:
        await self.table.ready.wait()
        async for event in stream.events():
            message = event.message
            code = (message.key or b"").decode()
            policy = self.policies.get(code)
            if policy is None:
                log.warning("held record of %r, which is not a periodic class; skipped", code)
                continue
            meta = h.header_map(message.headers)
            kind = meta.get(h.MARKER)
            if kind is None:
                # Per held record only a presence check: the state is parsed for markers alone.
                if self.periods.get(code) is None:
                    opened = on_record(None, message.partition, message.offset, policy, self.now())
                    if opened is not None:
                        self.periods[code] = opened.to_json()
                        self.schedule.changed(code)
                continue
            await self._on_marker(code, policy, kind, meta, message.partition, message.offset)

    async def _on_marker(
        self, code: str, policy: UpdatePolicy, kind: bytes, meta: Mapping[str, bytes], partition: int, offset: int
    ) -> None:
        state = self.state_of(code)
        if kind == MarkerKind.OPEN.value.encode():
            changed = on_open(state, _window(meta[h.MARKER_WINDOW]), partition, offset)
            if changed is not None:
                self.periods[code] = changed.to_json()
                self.schedule.changed(code)
            return
        window = _window(meta[h.MARKER_WINDOW])
        due = on_release(state, window.window_id, offset, policy, self.now())
        if due is None:
            return
        waiting = self.lacking(code)
        if waiting:
            # Another worker made these targets live on this partition; this one's grant
            # follower is a moment behind. Releasing now would leave them out of the batch.
            log.warning("releasing %s's window waits for targets %s to be installed", code, waiting)
            self.sent.pop((code, MarkerKind.RELEASE.value), None)
            return
        assert state is not None  # on_release found the window open
        self.releasing.add(code)
        try:
            await self.release(code, state, due, partition)
        finally:
            self.releasing.discard(code)

    async def emit_markers(self) -> None:
        self.refresh_clock()
        if not self.table.ready.is_set():
            return
        at = self.now()
        owner = self.ownership()
        self.sent.owner(owner)
        for code in self.schedule.due(at, owner):
            if not self.releases(code):
                self.schedule.quiet(code, None)
                continue
            state = self.state_of(code)
            due = due_marker(state, self.policies[code], at)
            if due is None:
                # Only an open window that ends later has nothing due.
                self.schedule.quiet(code, state.window.end if state is not None else None)
                continue
            kind, window = due
            if self.sent.get((code, kind.value)) == window.window_id:
                continue
            self.sent[(code, kind.value)] = window.window_id
            await self.held.send(key=code.encode(), value=b"", headers=_marker_headers(kind, window))


def _declare(
    app: faust.App, held_topic_name: str, held_partitions: int
) -> tuple[faust.types.TableT[str, Any], faust.TopicT]:
    """The ``periods`` table (a class's hold state) and the held topic, as Faust declares them."""
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
    return periods, held


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
    periods, held = _declare(app, held_topic_name, held_partitions)

    holding = Holding(
        app,
        periods,
        held,
        held_topic_name,
        policies,
        access,
        table,
        releaser,
        now,
        refresh_clock,
        releases,
        lacking,
        ownership,
        releasing,
    )

    @app.agent(held, name="hold")
    async def hold(stream: faust.StreamT[bytes]) -> None:
        await holding.hold(stream)

    async def emit_markers() -> None:
        await holding.emit_markers()

    app.timer(MARKER_INTERVAL_S)(emit_markers)
    return holding.state_of
