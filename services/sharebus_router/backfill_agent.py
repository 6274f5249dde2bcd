"""Who serves a backfill request, and when: the owner of the backfill topic's only partition.

Faust's agent on the backfill topic serves each request as it arrives. A sweep on the same worker
serves any request still unanswered a while after it was made: after a rebalance, Faust can leave a
newly assigned partition unfetched (faust-streaming/faust#629), and a worker that took the backfill
partition over from a killed one then never saw the request it had to serve again.

Both paths go through ``answer``, one request at a time, and answer a request only while the log
holds no outcome for it; the outcome is flushed before the next request is looked at, so neither
path can serve a request the other has answered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import faust

from sharebus_core.backfill_log import BackfillEvent, BackfillState, decode_event
from sharebus_core.topic_reader import TopicReadError
from sharebus_core.topics import TopicNames
from sharebus_router.backfill import Backfiller, failed
from sharebus_router.live_points import PointKeeper

log = logging.getLogger(__name__)

Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[None]]


class BackfillDesk:
    """``read_log``: each request's latest event (blocking; run in an executor); ``flush``: Faust's
    producer's, which ``send`` goes through."""

    def __init__(
        self,
        backfiller: Backfiller,
        topics: TopicNames,
        read_log: Callable[[], dict[str, BackfillEvent]],
        send: Send,
        flush: Callable[[], Awaitable[None]],
        now: Callable[[], dt.datetime],
        stall_s: float,
    ) -> None:
        self.backfiller = backfiller
        self.topics = topics
        self.read_log = read_log
        self.send = send
        self.flush = flush
        self.now = now
        self.stall = dt.timedelta(seconds=stall_s)
        self._one_at_a_time = asyncio.Lock()

    async def _latest(self) -> dict[str, BackfillEvent] | None:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.read_log)
        except TopicReadError as exc:
            # Unknown whether it was answered: not served now; the sweep asks again.
            log.warning("cannot read the backfill log (%s); requests wait for the next sweep", exc)
            return None

    async def answer(self, request: BackfillEvent) -> None:
        async with self._one_at_a_time:
            latest = await self._latest()
            if latest is None:
                return
            current = latest.get(request.request_id)
            if current is not None and current.state is not BackfillState.REQUESTED:
                return  # answered already (before a crash, or by the other path)
            try:
                outcome = await self.backfiller.serve(request)
                # "done" is written only once every replayed record is acknowledged.
                await self.flush()
            except Exception as exc:
                log.exception("backfill %s failed", request.request_id)
                outcome = failed(request, f"{type(exc).__name__}: {exc}")
            await self.send(self.topics.backfill, request.request_id.encode(), outcome.model_dump_json().encode(), [])
            await self.flush()  # in the log before the next request is looked at

    async def sweep(self) -> None:
        """Serves the requests still unanswered ``stall_s`` after they were made."""
        latest = await self._latest()
        if latest is None:
            return
        due = self.now() - self.stall
        for request in latest.values():
            if request.state is BackfillState.REQUESTED and request.at <= due:
                log.warning("backfill %s unanswered since %s: served by the sweep", request.request_id, request.at)
                await self.answer(request)


def install_backfill(app: faust.App, desk: BackfillDesk, keeper: PointKeeper, ready: asyncio.Event) -> None:
    topics = desk.topics
    requests = app.topic(
        topics.backfill, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )

    @app.agent(requests, name="backfill")
    async def backfill(stream: faust.StreamT[bytes]) -> None:
        await ready.wait()
        async for value in stream:
            request = decode_event(value)
            if request is not None and request.state is BackfillState.REQUESTED:
                await desk.answer(request)

    async def sweep_backfills() -> None:
        if ready.is_set() and keeper.owns(topics.backfill, 0):
            await desk.sweep()

    app.timer(desk.stall.total_seconds() / 2)(sweep_backfills)
