"""Who answers a backfill request: the agent as it arrives, or the sweep once it has waited too long."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, cast

from sharebus_core.backfill_log import BackfillEvent, BackfillState
from sharebus_core.topic_reader import TopicReadError
from sharebus_router.backfill import Backfiller
from sharebus_router.backfill_agent import BackfillDesk
from tests.unit.router_harness import TOPICS

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def request(request_id: str, age_s: float) -> BackfillEvent:
    return BackfillEvent(
        request_id=request_id,
        state=BackfillState.REQUESTED,
        consumer="hrss-si",
        data_class="301001001/000001",
        requested_by="clerk",
        at=NOW - dt.timedelta(seconds=age_s),
    )


class Bus:
    """The backfill log as the desk reads it, and what it served and wrote."""

    def __init__(self, *events: BackfillEvent) -> None:
        self.log = {e.request_id: e for e in events}
        self.pending: dict[str, BackfillEvent] = {}  # sent, not flushed: not in the log yet
        self.served: list[str] = []
        self.fail_reads = False
        self.reads = 0
        self.contended = False  # serve waits for the other path (the test of both paths at once)

    def read_log(self) -> dict[str, BackfillEvent]:
        if self.fail_reads:
            raise TopicReadError("broker away")
        self.reads += 1
        return dict(self.log)

    async def serve(self, event: BackfillEvent) -> BackfillEvent:
        self.served.append(event.request_id)
        # While this serve runs, give the other path every chance to read the log for the same request
        # (its third read, after the two paths' first): bounded, since a desk that works never does.
        for _ in range(200 if self.contended else 0):
            if self.reads >= 3:
                break
            await asyncio.sleep(0.005)
        return event.model_copy(update={"state": BackfillState.DONE, "records": 3})

    async def send(self, topic: str, key: bytes | None, value: bytes | None, headers: Any) -> None:
        assert topic == TOPICS.backfill
        assert value is not None
        event = BackfillEvent.model_validate_json(value)
        self.pending[event.request_id] = event

    async def flush(self) -> None:
        self.log.update(self.pending)
        self.pending.clear()

    def desk(self) -> BackfillDesk:
        backfiller = cast(Backfiller, self)
        return BackfillDesk(backfiller, TOPICS, self.read_log, self.send, self.flush, lambda: NOW, stall_s=30)


def test_a_request_seen_by_both_paths_at_once_is_served_once() -> None:
    bus = Bus(request("r1", age_s=600))
    bus.contended = True
    desk = bus.desk()

    async def both() -> None:
        await asyncio.gather(desk.answer(request("r1", 600)), desk.sweep())

    asyncio.run(both())
    assert bus.served == ["r1"]
    assert bus.log["r1"].state is BackfillState.DONE
    assert bus.log["r1"].records == 3


def test_the_sweep_serves_only_requests_unanswered_past_the_stall() -> None:
    answered = request("done", 600).model_copy(update={"state": BackfillState.DONE})
    bus = Bus(request("old", 31), request("new", 5), answered)
    asyncio.run(bus.desk().sweep())
    assert bus.served == ["old"]
    assert bus.log["new"].state is BackfillState.REQUESTED  # the agent's, for now


def test_an_unreadable_log_serves_nothing_and_the_next_sweep_serves_it() -> None:
    bus = Bus(request("r1", 600))
    desk = bus.desk()
    bus.fail_reads = True
    asyncio.run(desk.answer(request("r1", 600)))
    asyncio.run(desk.sweep())
    assert bus.served == []
    bus.fail_reads = False
    asyncio.run(desk.sweep())
    assert bus.served == ["r1"]
