"""A periodic window's release that fails partway: no delivery without its audit fact, each audited once.

The facts used to be sent after every delivery, so a release that failed partway (a send refused, the worker
killed) left the deliveries already sent without a fact, and a retry under other rules (a grant expired
meanwhile) audited them as denied; a failure after the facts had gone out audited the window twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from sharebus_core.catalogue import load_catalogue
from sharebus_core.headers import HeaderList
from sharebus_router.held_records import HeldRecord
from sharebus_router.periodic import HoldState, on_release
from sharebus_router.release import BatchReleaser
from sharebus_rules.periods import Window
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_release_robust import roster_held, roster_seqs, to, window_of
from tests.unit.test_router_release import ROSTER, roster_grant
from tests.unit.test_router_release import releaser as release_on

TAX = TOPICS.delivery("tax-levy")


@pytest.fixture
def harness() -> Harness:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    harness.grant(roster_grant())
    return harness


def releaser(harness: Harness) -> BatchReleaser:
    """The releaser on the harness's clock, so that a test can let a grant expire between two attempts."""
    return release_on(harness, lambda: harness.now)


def facts(harness: Harness) -> list[dict[str, Any]]:
    sent = [value for _t, _k, value, _h in to(harness, TOPICS.audit_facts) if value]
    return [fact for payload in sent for fact in json.loads(payload)["records"]]


def deliveries_audited(harness: Harness) -> list[tuple[int, str]]:
    """(source offset, consumer) of every delivery decision in the facts sent, repeats included."""
    return sorted(
        (fact["source"]["offset"], made["consumer"])
        for fact in facts(harness)
        for made in fact["decisions"]
        if made["decision"] == "deliver"
    )


def failing_on(harness: Harness, batches: BatchReleaser, nth: int) -> dict[str, bool]:
    """Makes the ``nth`` delivery to tax-levy (counted from 0) fail once, as a refused send does."""
    working, count, broken = batches.send, {"n": 0}, {"once": True}

    async def flaky(topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
        if topic == TAX:
            if count["n"] == nth and broken.pop("once", False):
                raise ConnectionError("broker unavailable")
            count["n"] += 1
        await working(topic, key, value, headers)

    batches.send = flaky
    return broken


class Holding:
    """The window's state as holding.py's ``hold`` agent keeps it across attempts (the ``periods`` table)."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.state = HoldState(window, 0, 0)

    def attempt(
        self, harness: Harness, batches: BatchReleaser, marker: int, held: list[HeldRecord], after: Callable[[], None]
    ) -> None:
        policy = harness.catalogue.data_class(ROSTER).update
        due = on_release(self.state, self.window.window_id, marker, policy, self.window.end)
        if due is None:
            return
        ended = self.state

        async def audited(plan: tuple[str, ...]) -> None:
            self.state = dataclasses.replace(ended, audited=plan)

        try:
            asyncio.run(batches.release(ROSTER, due.window, held, self.state.audited, audited))
            after()  # holding.py's flush of every delivery, before the state moves on
        except Exception:  # noqa: BLE001 - as holding.py: whatever fails, the next marker retries
            return
        self.state = due.after


def test_deliveries_sent_before_a_release_fails_are_already_audited(harness: Harness) -> None:
    batches = releaser(harness)
    failing_on(harness, batches, nth=2)
    harness.sent.clear()
    with pytest.raises(ConnectionError):
        asyncio.run(batches.release(ROSTER, window_of(harness, ROSTER), roster_held(harness, range(3))))
    sent = [seq for seq in roster_seqs(harness, to(harness, TAX))]
    assert sent == [0, 1]
    audited = [offset for offset, consumer in deliveries_audited(harness) if consumer == "tax-levy"]
    assert set(sent) <= set(audited)


def test_a_retry_after_a_grant_expired_withholds_the_batch_and_audits_no_delivery_again(harness: Harness) -> None:
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    failing_on(harness, batches, nth=1)
    holding = Holding(window)
    harness.sent.clear()
    holding.attempt(harness, batches, 10, roster_held(harness, range(3)), lambda: None)
    assert holding.state.window == window  # failed: still the ended window
    # The grant expires before the next marker: an expired grant is a hard stop, so the retry withholds the
    # batch and withdraws the deliveries its facts had decided (test_release_retry.py has the rest).
    harness.now += 2 * 86400
    first = len(to(harness, TAX))
    holding.attempt(harness, batches, 11, roster_held(harness, range(3)), lambda: None)

    assert holding.state.window.start == window.end
    assert to(harness, TAX)[first:] == []
    assert deliveries_audited(harness) == [(0, "tax-levy"), (1, "tax-levy"), (2, "tax-levy")]
    assert not [made for fact in facts(harness) for made in fact["decisions"] if made["decision"] == "deny"]
    withdrawn = [
        made["reason"] for fact in facts(harness) for made in fact["decisions"] if made["decision"] == "withdraw"
    ]
    assert withdrawn == ["grant_expired_before_release"] * 3


def test_a_failure_after_every_send_is_retried_with_each_delivery_audited_once(harness: Harness) -> None:
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    broken = {"once": True}

    def flush() -> None:
        # Kafka refuses one of the batch's deliveries when holding.py waits for their acknowledgement.
        if broken.pop("once", False):
            raise ConnectionError("a delivery was refused")

    holding = Holding(window)
    harness.sent.clear()
    for marker in (10, 11, 12):
        holding.attempt(harness, batches, marker, roster_held(harness, range(3)), flush)

    assert holding.state.window.start == window.end
    # Sent twice (same batch id, which the SDK drops), audited once.
    assert roster_seqs(harness, to(harness, TAX)) == [0, 1, 2, 0, 1, 2]
    assert deliveries_audited(harness) == [(0, "tax-levy"), (1, "tax-levy"), (2, "tax-levy")]


def test_the_audited_plan_survives_the_state_s_json_form() -> None:
    window = Window(dt.datetime(2026, 12, 3, 2, tzinfo=dt.UTC), dt.datetime(2026, 12, 3, 3, tzinfo=dt.UTC))
    state = HoldState(window, 2, 40, ("tax-levy|g-r",))
    assert HoldState.from_json(state.to_json()) == state
    # A state written before plans were kept reads as one without.
    assert HoldState.from_json(HoldState(window, 2, 40).to_json()).audited is None
    assert "audited" not in HoldState(window, 2, 40).to_json()
