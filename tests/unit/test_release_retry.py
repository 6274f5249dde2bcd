"""A periodic release retried after its facts: the trail stays true and each delivery is counted once.

A retry sent the audited batch to every plan target still routed: one whose grant was revoked since the facts
was skipped, its facts still saying "delivered"; one whose grant had expired was sent the batch anyway; and a
target an earlier attempt had already sent the batch to was sent it again and counted again. Now a retry
skips the targets done (their batch acknowledged), withholds the batch from a target whose grant ended and
writes a ``withdraw`` fact for each of its records, and counts only what it sends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import pytest

from sharebus_core.catalogue import load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_core.headers import HeaderList
from sharebus_report.audit_tally import AuditTally
from sharebus_report.period import parse_period
from sharebus_router.held_records import HeldRecord
from sharebus_router.holding import keep_target_done
from sharebus_router.periodic import HoldState, on_release
from sharebus_router.release import BatchReleaser
from sharebus_router.release_plan import target_name
from sharebus_rules.periods import Window
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_release_audit import TAX, deliveries_audited, facts, failing_on, releaser
from tests.unit.test_release_robust import roster_held, roster_seqs, to, window_of
from tests.unit.test_router_release import ROSTER, roster_grant

HRSS = TOPICS.delivery("hrss-si")


@pytest.fixture
def harness() -> Harness:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    harness.grant(roster_grant())
    return harness


def hrss_grant() -> Grant:
    return Grant.model_validate(
        {**roster_grant().model_dump(), "grant_id": "g-h", "consumer": "hrss-si", "consumer_department": "HRSS"}
    )


class Keeping:
    """The window's state as holding.py keeps it across attempts: the plan, and the targets done."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.state = HoldState(window, 0, 0)

    def attempt(self, harness: Harness, batches: BatchReleaser, marker: int, held: list[HeldRecord]) -> bool:
        due = on_release(
            self.state, self.window.window_id, marker, harness.catalogue.data_class(ROSTER).update, self.window.end
        )
        assert due is not None
        ended = self.state

        async def audited(plan: tuple[str, ...]) -> None:
            self.state = dataclasses.replace(ended, audited=plan)

        async def done(name: str) -> None:
            self.state = dataclasses.replace(self.state, done=(*self.state.done, name))

        try:
            asyncio.run(batches.release(ROSTER, due.window, held, self.state.audited, audited, self.state.done, done))
        except Exception:  # noqa: BLE001 - as holding.py: whatever fails, the next marker retries
            return False
        self.state = due.after
        return True


def audited_then_failed(harness: Harness) -> tuple[BatchReleaser, Keeping]:
    """A roster window whose first release wrote its facts, kept its plan, then failed sending the batch."""
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    failing_on(harness, batches, nth=1)
    holding = Keeping(window)
    harness.sent.clear()
    assert not holding.attempt(harness, batches, 10, roster_held(harness, range(3)))
    return batches, holding


def decisions(harness: Harness, kind: str) -> list[tuple[int, str, str | None]]:
    return sorted(
        (fact["source"]["offset"], made["consumer"], made["reason"])
        for fact in facts(harness)
        for made in fact["decisions"]
        if made["decision"] == kind
    )


def calls(harness: Harness, consumer: str) -> tuple[float, float]:
    labels = {
        "provider": "AMR",
        "consumer": consumer,
        "data_class": ROSTER,
        "share_type": "conditional",
        "mode": "periodic",
    }
    return harness.value("sharebus_calls_total", labels), harness.value("sharebus_records_total", labels)


def test_a_retry_after_the_grant_was_revoked_withdraws_the_audited_deliveries(harness: Harness) -> None:
    batches, holding = audited_then_failed(harness)
    harness.grant(roster_grant().model_copy(update={"state": GrantState.REVOKED}))
    first = len(to(harness, TAX))

    assert holding.attempt(harness, batches, 11, roster_held(harness, range(3)))

    assert to(harness, TAX)[first:] == []  # no route renders it any more
    assert decisions(harness, "deliver") == [(o, "tax-levy", None) for o in range(3)]
    assert decisions(harness, "withdraw") == [(o, "tax-levy", "grant_revoked_before_release") for o in range(3)]
    withdrawn = {
        (m["grant_id"], m["payload_sha256"])
        for f in facts(harness)
        for m in f["decisions"]
        if m["decision"] == "withdraw"
    }
    assert withdrawn == {("g-r", None)}
    assert holding.state.window.start == holding.window.end


def test_a_retry_after_the_grant_expired_withholds_the_batch_and_withdraws_its_deliveries(harness: Harness) -> None:
    batches, holding = audited_then_failed(harness)
    harness.now += 2 * 86400  # the grant (valid one day) expires before the retry
    first = len(to(harness, TAX))

    assert holding.attempt(harness, batches, 11, roster_held(harness, range(3)))

    assert to(harness, TAX)[first:] == []  # an expired grant is a hard stop, retry or not
    assert deliveries_audited(harness) == [(0, "tax-levy"), (1, "tax-levy"), (2, "tax-levy")]
    assert decisions(harness, "withdraw") == [(o, "tax-levy", "grant_expired_before_release") for o in range(3)]
    assert calls(harness, "tax-levy") == (0, 0)  # the batch never went out whole
    denied = {"provider": "AMR", "consumer": "tax-levy", "data_class": ROSTER, "reason": "grant_expired"}
    assert harness.value("sharebus_denials_total", denied) == 3


def test_a_withdrawal_not_known_to_be_acknowledged_is_written_again(harness: Harness) -> None:
    batches, holding = audited_then_failed(harness)
    harness.now += 2 * 86400
    working = batches.send
    refused = {"once": True}

    async def refuse_after_the_withdrawal(topic: str, key: bytes | None, value: bytes | None, hs: HeaderList) -> None:
        await working(topic, key, value, hs)
        if topic == TOPICS.audit_facts and refused.pop("once", False):
            raise ConnectionError("refused after the withdrawal was written")

    batches.send = refuse_after_the_withdrawal
    assert not holding.attempt(harness, batches, 11, roster_held(harness, range(3)))
    assert holding.attempt(harness, batches, 12, roster_held(harness, range(3)))
    # The failed attempt's facts may or may not have reached Kafka: written again, never fewer.
    assert {o for o, _c, _r in decisions(harness, "withdraw")} == {0, 1, 2}
    assert holding.state.window.start == holding.window.end


def test_a_retry_sends_and_counts_only_the_targets_not_already_done(harness: Harness) -> None:
    harness.grant(hrss_grant())
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    route = batches.routes[TOPICS.source(ROSTER)]
    second = TOPICS.delivery(route.targets[1].consumer)
    working, broken = batches.send, {"once": True}

    async def second_target_refused(topic: str, key: bytes | None, value: bytes | None, hs: HeaderList) -> None:
        if topic == second and broken.pop("once", False):
            raise ConnectionError("broker unavailable")
        await working(topic, key, value, hs)

    batches.send = second_target_refused
    holding = Keeping(window)
    harness.sent.clear()
    assert not holding.attempt(harness, batches, 10, roster_held(harness, range(3)))
    assert holding.attempt(harness, batches, 11, roster_held(harness, range(3)))

    # Each target was sent the batch whole once and counted once: one call, three records.
    assert roster_seqs(harness, to(harness, TAX)) == [0, 1, 2]
    assert roster_seqs(harness, to(harness, HRSS)) == [0, 1, 2]
    assert calls(harness, "tax-levy") == (1, 3)
    assert calls(harness, "hrss-si") == (1, 3)
    assert decisions(harness, "withdraw") == []


def test_the_targets_done_survive_the_state_s_json_form() -> None:
    window = Window(dt.datetime(2026, 12, 3, 2, tzinfo=dt.UTC), dt.datetime(2026, 12, 3, 3, tzinfo=dt.UTC))
    state = HoldState(window, 2, 40, ("tax-levy|g-r", "hrss-si|g-h"), 90, ("tax-levy|g-r",))
    assert HoldState.from_json(state.to_json()) == state
    assert HoldState.from_json(HoldState(window, 2, 40, ("a|",), 90).to_json()).done == ()


def test_the_report_counts_a_withdrawn_batch_as_denied_not_delivered() -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    period = parse_period("2026-11")
    tally = AuditTally(catalogue, period, period.end + dt.timedelta(days=30), dt.timedelta(hours=1))
    released = dt.datetime(2026, 11, 10, 3, 0, 1, tzinfo=dt.UTC)

    def event(offset: int, consumer: str, decision: str, seconds: int, reason: str | None = None) -> dict[str, Any]:
        return {
            "time": (released + dt.timedelta(seconds=seconds)).isoformat(),
            "mode": "periodic",
            "provider": "AMR",
            "data_class": ROSTER,
            "source": {"topic": TOPICS.source(ROSTER), "partition": 0, "offset": offset},
            "consumer": consumer,
            "grant_id": "g",
            "decision": decision,
            "reason": reason,
        }

    for offset in (0, 1):
        tally.add(event(offset, "tax-levy", "deliver", 0))
        tally.add(event(offset, "hrss-si", "deliver", 0))
    for offset in (0, 1):
        tally.add(event(offset, "tax-levy", "withdraw", 5, "grant_revoked_before_release"))
        tally.add(event(offset, "tax-levy", "withdraw", 6, "grant_revoked_before_release"))  # chained twice

    roster = tally.classes[ROSTER]
    assert (roster.records, roster.deliveries, roster.denials, roster.calls) == (2, 2, 2, 1)
    tax, hrss = tally.systems["tax-levy"], tally.systems["hrss-si"]
    assert (tax.received, tax.calls, tax.denials) == (0, 0, 2)
    assert (hrss.received, hrss.calls, hrss.denials) == (2, 1, 0)
    assert tally.skipped == 0


@pytest.mark.parametrize("gap", [6, 3_600, 86_400 + 60, 40 * 86_400])
def test_the_report_matches_a_withdrawal_to_its_deliveries_by_record_not_by_window(gap: int) -> None:
    # A retry may come long after the first attempt's facts (an hourly class, an outage): the withdrawal
    # undoes the deliveries of its record, consumer and grant, whatever window its own time falls in
    # (even past the period, if the reader reads that far).
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    period = parse_period("2026-11")
    tally = AuditTally(catalogue, period, period.end + dt.timedelta(days=30), dt.timedelta(hours=1))
    released = dt.datetime(2026, 11, 10, 3, 0, 1, tzinfo=dt.UTC)

    def event(offset: int, decision: str, seconds: int, grant: str = "g") -> dict[str, Any]:
        return {
            "time": (released + dt.timedelta(seconds=seconds)).isoformat(),
            "mode": "periodic",
            "provider": "AMR",
            "data_class": ROSTER,
            "source": {"topic": TOPICS.source(ROSTER), "partition": 0, "offset": offset},
            "consumer": "tax-levy",
            "grant_id": grant,
            "decision": decision,
            "reason": "grant_expired_before_release" if decision == "withdraw" else None,
        }

    for offset in (0, 1):
        tally.add(event(offset, "deliver", 0))
    tally.add(event(2, "deliver", 3_600 + 1))  # the next window's batch, not withdrawn
    tally.add(event(0, "withdraw", gap, grant="other"))  # another grant's withdrawal undoes nothing
    tally.add(event(7, "withdraw", gap))  # nor does one of a record never delivered
    for offset in (0, 1):
        tally.add(event(offset, "withdraw", gap))
        tally.add(event(offset, "withdraw", gap + 1))  # chained twice

    roster, tax = tally.classes[ROSTER], tally.systems["tax-levy"]
    assert (roster.deliveries, roster.denials, roster.calls) == (1, 2, 1)
    assert (tax.received, tax.calls, tax.denials) == (1, 1, 2)


def flush_failing_once(batches: BatchReleaser, nth: int) -> list[int]:
    """A flush (Kafka's acknowledgement of everything sent) that raises on its ``nth`` call (from 0), once."""
    calls_made: list[int] = []

    async def flush() -> None:
        calls_made.append(len(calls_made))
        if len(calls_made) - 1 == nth:
            raise ConnectionError("the acknowledgement did not come")

    batches.flush = flush
    return calls_made


def test_a_target_is_counted_once_kafka_acknowledged_its_batch_not_before(harness: Harness) -> None:
    harness.grant(hrss_grant())
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    flush_failing_once(batches, nth=1)  # 0: the facts; 1: the first target's batch
    holding = Keeping(window)
    harness.sent.clear()
    assert not holding.attempt(harness, batches, 10, roster_held(harness, range(3)))
    assert holding.attempt(harness, batches, 11, roster_held(harness, range(3)))

    # The first target's batch went twice (its acknowledgement unknown), and is counted once.
    assert calls(harness, "tax-levy") == (1, 3)
    assert calls(harness, "hrss-si") == (1, 3)


def test_the_denials_of_the_first_facts_are_counted_once_they_are_acknowledged(harness: Harness) -> None:
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    harness.now += 2 * 86400  # the grant expired before the release
    flush_failing_once(batches, nth=0)  # the facts' acknowledgement fails: the release is retried whole
    holding = Keeping(window)
    assert not holding.attempt(harness, batches, 10, roster_held(harness, range(3)))
    assert holding.attempt(harness, batches, 11, roster_held(harness, range(3)))

    denied = {"provider": "AMR", "consumer": "tax-levy", "data_class": ROSTER, "reason": "grant_expired"}
    assert harness.value("sharebus_denials_total", denied) == 3


def test_a_target_s_done_state_is_durable_before_the_next_target_s_batch_is_sent(harness: Harness) -> None:
    # holding.py's keeper: the table's changelog record is durable only once the producer is flushed.
    harness.grant(hrss_grant())
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    route = batches.routes[TOPICS.source(ROSTER)]
    first, second = (target_name(t) for t in route.targets)
    periods: dict[str, Any] = {ROSTER: HoldState(window, 0, 0).to_json()}
    durable: dict[str, Any] = dict(periods)

    async def flush() -> None:
        durable.update(periods)

    batches.flush = flush
    working = batches.send
    seen_at_second: list[tuple[str, ...]] = []

    async def send(topic: str, key: bytes | None, value: bytes | None, hs: HeaderList) -> None:
        if topic == TOPICS.delivery(route.targets[1].consumer) and not seen_at_second:
            seen_at_second.append(HoldState.from_json(durable[ROSTER]).done)
        await working(topic, key, value, hs)

    batches.send = send

    async def audited(plan: tuple[str, ...]) -> None:
        periods[ROSTER] = dataclasses.replace(HoldState.from_json(periods[ROSTER]), audited=plan).to_json()
        await flush()

    async def done(name: str) -> None:
        await keep_target_done(periods, ROSTER, name, flush)

    asyncio.run(batches.release(ROSTER, window, roster_held(harness, range(3)), None, audited, (), done))

    assert seen_at_second == [(first,)]  # a worker killed now still knows the first target was sent whole
    assert HoldState.from_json(durable[ROSTER]).done == (first, second)


def test_a_record_dead_lettered_by_the_first_attempt_stays_out_of_the_retry(harness: Harness) -> None:
    # Offset 1 fails once (a passing fault), is dead-lettered, and the first attempt fails after its facts:
    # the retry may make offset 1 ready, but no fact names it, so it must not be delivered.
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    failing_on(harness, batches, nth=1)
    prepare, broken = batches._prepare, {"once": True}

    async def flaky(route: Any, record: HeldRecord, targets: Any, room: HeaderList) -> Any:
        if record.origin_offset == 1 and broken.pop("once", False):
            raise RuntimeError("a passing fault")
        return await prepare(route, record, targets, room)

    batches._prepare = flaky  # type: ignore[method-assign]
    holding = Keeping(window)
    harness.sent.clear()
    assert not holding.attempt(harness, batches, 10, roster_held(harness, range(3)))
    assert holding.attempt(harness, batches, 11, roster_held(harness, range(3)))

    assert deliveries_audited(harness) == [(0, "tax-levy"), (2, "tax-levy")]
    assert set(roster_seqs(harness, to(harness, TAX))) == {0, 2}  # never offset 1, which no fact names
    assert len(to(harness, TOPICS.dead_letter)) == 1  # dead-lettered once: nothing lost
