"""The router's data path: a confluent-kafka batch loop hosted by the Faust worker.

Why not a Faust stream (``docs/router-data-path.md`` has the figures): every event of a Faust stream
passes the fetcher, the conductor, a channel queue and the stream iterator, about 50 µs a record
whatever the settings, which held the router near 4,000 records/s. Here one consumer takes up to
``batch_max`` records at once (``consume(n, 0)``) and routes them in a plain loop; Faust keeps the
rest of the worker: its lifecycle, the ``periods`` table, the control agents, timers and the web.

The guarantee (at-least-once, with stable record ids so that subscribers drop repeats), in the
order it happens:

1. a batch is routed: deliveries, held copies and dead letters are *produced* (enqueued) on this
   path's producers, and the batch's audit facts are produced after them;
2. every ``commit_interval_s`` the messages produced so far are cut into an epoch with the next
   offsets of the records routed so far; once Kafka has acknowledged every message of that epoch
   and of the ones before it, those offsets are committed (asynchronously). The loop never stops
   routing to wait for it (``acknowledgements.py``);
3. on revocation and at stop: ``flush()`` waits until Kafka has acknowledged everything produced
   so far, and only then are the offsets committed, synchronously;
4. a message Kafka finally rejects ends the process in its delivery report, served by ``poll()`` or
   ``flush()``: before any commit that would move past its record.

A crash before a commit re-reads records whose deliveries may already be written: repeats, never a
loss (tests/integration/test_router_crash.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from mode import Service

from sharebus_core.kafka import KafkaAccess, UnreadableHeaders, message_headers
from sharebus_core.topic_reader import partition_starts
from sharebus_router.acknowledgements import TP, end_process
from sharebus_router.audit_facts import encode_batch
from sharebus_router.bus_headers import RawHeader
from sharebus_router.data_path_config import DataPathConfig, consumer_settings
from sharebus_router.data_producer import DataProducer
from sharebus_router.live_points import PointKeeper
from sharebus_router.metrics import RouterMetrics
from sharebus_router.start_positions import Starts, start_positions

log = logging.getLogger(__name__)

# With nothing to read, the loop looks again after this long: at most this much latency added to a
# quiet partition's next record, for a few hundred cheap calls a second.
IDLE_S = 0.004

# Net new container objects before the young generation is collected (settle_heap): several batches' worth.
YOUNG_THRESHOLD = 50_000

Route = Callable[[str, int, int, bytes | None, bytes | None, list[RawHeader]], Awaitable[dict[str, Any] | None]]
# Dead-letters a record whose headers cannot be read (topic, partition, offset, key, value, why).
Unreadable = Callable[[str, int, int, bytes | None, bytes | None, str], Awaitable[None]]


def settle_heap() -> None:
    """Takes what the start built out of the cyclic collector's reach.

    Routes, counters and the catalogue live as long as the worker: at city scale millions of objects,
    which every full collection walked again, a pause of the event loop the data path shares (the
    steady phase of ``make bench-scale``). Frozen, a collection walks only what was made since.

    A batch keeps its messages and its facts alive until it ends (five or so containers a record): at
    the default threshold of 700 the young generation was collected a dozen times a batch, walking the
    same live objects again each time (7% of the data path's samples, py-spy). With room for a whole
    batch, what a batch makes is freed by reference counting before a collection needs to look at it.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


class DataPath:
    """Consumes the source topics in batches and routes them; commits only what Kafka acknowledged."""

    def __init__(
        self,
        access: KafkaAccess,
        config: DataPathConfig,
        producer: DataProducer,
        route: Route,
        keeper: PointKeeper,
        metrics: RouterMetrics,
        after_batch: Callable[[], None] = lambda: None,
        starts: Starts = partition_starts,
        *,
        unreadable: Unreadable,
    ) -> None:
        self.metrics = metrics
        self.unreadable = unreadable
        self.starts = starts
        self.access = access
        # The handler's batch-shaped counters are added to the exported ones here.
        self.after_batch = after_batch
        self.config = config
        self.producer = producer
        self.route = route
        self.keeper = keeper
        # Next offset to commit per partition, for records routed since the last commit.
        self._routed: dict[TP, int] = {}
        # Offsets of asynchronous commits not answered yet, issued while this worker owned the partition
        # since it was last assigned here: only those may be made again when refused (_on_commit).
        self._committing: dict[TP, int] = {}
        self._facts: list[dict[str, Any]] = []
        self._consumer: Consumer | None = None
        self._stopping = False
        self._finished = asyncio.Event()
        self.joined = False
        self.assigned: set[TP] = set()
        self.records_routed = 0

    def _make_consumer(self) -> Consumer:
        return self.access.consumer(consumer_settings(self.config, self._on_commit))

    async def run(self, ready: asyncio.Event) -> None:
        """Routes until ``stop()``; any failure but a record's own ends the process (no commit)."""
        try:
            await ready.wait()  # every grant read and every route built: no record meets a cold table
            settle_heap()
            if not self._stopping:
                await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the data path failed")
            end_process(f"the data path failed: {type(exc).__name__}: {exc}")
        finally:
            self._finished.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        consumer = self._consumer = self._make_consumer()
        consumer.subscribe(
            list(self.config.topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info("subscribed to %d source topic(s)", len(self.config.topics))
        next_cut = loop.time() + self.config.commit_interval_s
        while not self._stopping:
            # Rebalance callbacks run inside consume(), on this thread, between two batches.
            messages = consumer.consume(self.config.batch_max, 0)
            if messages:
                await self._route_batch(messages)
            else:
                await asyncio.sleep(IDLE_S)
            # Delivery reports, counted in their epochs (on this thread: nothing else counts them).
            self.producer.poll()
            now = loop.time()
            if now >= next_cut:
                self._cut(now)
                next_cut = now + self.config.commit_interval_s
            self._commit_acknowledged(consumer, now)

    async def _route_batch(self, messages: list[Message]) -> None:
        ready = self.keeper.ready
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("source consumer: %s", error)
                continue
            topic, partition, offset = message.topic() or "", message.partition() or 0, message.offset() or 0
            if (topic, partition) not in ready:
                # The partition's hand-over points are recorded before its first record is routed here.
                await self.keeper.claim(topic, partition)
            try:
                # (name, bytes | None) pairs, as bus_headers takes them: a value-less header is checked there.
                raw = message_headers(message)
            except UnreadableHeaders as exc:
                # One record's fault: dead-lettered, and the partition goes on (raising here would end the
                # worker, and every restart would meet the same record first).
                await self.unreadable(topic, partition, offset, message.key(), message.value(), str(exc))
            else:
                fact = await self.route(topic, partition, offset, message.key(), message.value(), raw)
                if fact is not None:
                    self._facts.append(fact)
            self._routed[(topic, partition)] = offset + 1
        self.records_routed += len(messages)
        self._produce_facts()
        self.after_batch()
        self.metrics.consumed.inc(len(messages))
        self.metrics.routed_batches.inc()

    def _produce_facts(self) -> None:
        """The batch's audit facts, after its deliveries: acknowledged by the same flush before a commit."""
        if not self._facts:
            return
        facts, self._facts = self._facts, []
        for key, value in encode_batch(facts, self.config.audit_max_bytes):
            self.producer.produce(self.config.audit_topic, key, value, [])

    def _cut(self, now: float) -> None:
        """Closes the open epoch with the next offsets of everything routed so far (its facts produced first)."""
        if self._routed:
            self._produce_facts()
            self.producer.acks.cut(dict(self._routed), now)

    def _commit_acknowledged(self, consumer: Consumer, now: float) -> None:
        """Commits, without waiting, the offsets of the epochs Kafka has acknowledged in full."""
        acks = self.producer.acks
        done = acks.acknowledged()
        if done is None:
            late = acks.waiting(now, self.config.session_timeout_s)
            if late is not None:
                log.warning("%d deliveries not acknowledged yet; committing later", late.produced - late.delivered)
                self.metrics.commit_failures.labels("unacknowledged").inc()
            return
        self._commit_offsets(consumer, done, now, asynchronous=True)

    def _commit_offsets(
        self, consumer: Consumer, done: tuple[dict[TP, int], float], now: float, *, asynchronous: bool
    ) -> None:
        """Commits acknowledged offsets of the partitions still assigned; forgets what it committed."""
        routed, cut_at = done
        offsets = [TopicPartition(t, p, o) for (t, p), o in routed.items() if (t, p) in self.assigned]
        if offsets:
            try:
                if asynchronous:
                    consumer.commit(offsets=offsets, asynchronous=True)  # its outcome: _on_commit
                    self._committing.update(((tp.topic, tp.partition), tp.offset) for tp in offsets)
                else:
                    consumer.commit(offsets=offsets, asynchronous=False)
                    # Past any commit still in flight: the revocation must not commit that older offset again.
                    for tp in offsets:
                        self._committing.pop((tp.topic, tp.partition), None)
            except KafkaException as exc:
                log.warning("commit failed (%s); the records are routed again after a rebalance", exc)
                self.metrics.commit_failures.labels("refused").inc()
                return
        self.metrics.commit_seconds.observe(now - cut_at)
        for key, offset in routed.items():
            if self._routed.get(key) == offset:
                del self._routed[key]

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """An asynchronous commit's outcome; a refused one is made again with the partition's next commit."""
        # Answered: a commit of this ownership is no longer in flight. One of an earlier ownership (the
        # partition lost or revoked and assigned back since) is not in _committing, or holds another offset.
        current = set()
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if self._committing.get(key) == tp.offset:
                del self._committing[key]
                current.add(key)
        if error is not None and error.code() == KafkaError._NO_OFFSET:
            return  # nothing was left to commit
        refused = [tp for tp in partitions if tp.error is not None] if error is None else partitions
        if not refused:
            return
        log.warning("commit of %d partition(s) failed (%s)", len(refused), error or refused[0].error)
        self.metrics.commit_failures.labels("refused").inc()
        for tp in refused:
            key = (tp.topic, tp.partition)
            # Made again only under the ownership that issued it: an earlier owner's offset would move the
            # partition's committed offset back past what was committed since (repeats).
            if key in current and key in self.assigned:
                self._routed.setdefault(key, tp.offset)

    async def commit(self) -> None:
        """Flushes the producers, then commits the offsets of everything routed, synchronously (at stop)."""
        consumer = self._consumer
        if consumer is None or not self._routed:
            return
        loop = asyncio.get_running_loop()
        self._cut(loop.time())
        # The loop has ended: nothing else produces, polls or commits meanwhile.
        remaining = await loop.run_in_executor(None, self.producer.flush, self.config.session_timeout_s)
        done = self.producer.acks.acknowledged()
        if remaining or done is None:
            log.warning("%d deliveries not acknowledged; the next owner routes those records again", remaining)
            self.metrics.commit_failures.labels("unacknowledged").inc()
            return
        await loop.run_in_executor(None, lambda: self._commit_offsets(consumer, done, loop.time(), asynchronous=False))

    # -- rebalances (inside consume(), on the event loop's thread) -----------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        started = time.monotonic()
        timeout_s = self.config.session_timeout_s / 2
        positions = start_positions(consumer, partitions, self.access, self.starts, timeout_s, self.metrics)
        consumer.incremental_assign(positions)
        log.info("assigned %d source partition(s); positioned in %.1f s", len(partitions), time.monotonic() - started)
        self.joined = True
        self.assigned.update((tp.topic, tp.partition) for tp in partitions)
        self.keeper.on_assigned(partitions)
        self.metrics.rebalances.labels("assigned").inc(len(partitions))
        self.metrics.source_partitions.set(len(self.assigned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Commits what was acknowledged on the revoked partitions before giving them up."""
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        # An asynchronous commit in flight may yet be refused (this rebalance is a reason to), and its
        # answer comes after _forget, too late to make it again: its offset is committed here as well.
        offsets = {tp: o for tp, o in self._committing.items() if tp in revoked}
        routed = {tp: o for tp, o in self._routed.items() if tp in revoked}
        if routed:
            self._produce_facts()
            # Blocks the loop for one flush: a rebalance waits for it anyway.
            if self.producer.flush(self.config.session_timeout_s / 2):
                log.warning("deliveries not acknowledged at revocation; the next owner routes them again")
                self.metrics.commit_failures.labels("unacknowledged").inc()
            else:
                for tp, offset in routed.items():
                    offsets[tp] = max(offset, offsets.get(tp, offset))
        if offsets:
            try:
                consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
            except KafkaException as exc:
                log.warning("commit at revocation failed (%s); the next owner routes those records again", exc)
                self.metrics.commit_failures.labels("refused").inc()
        self.metrics.rebalances.labels("revoked").inc(len(partitions))
        self._forget(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Already someone else's: committing now could move past what the new owner routes.
        log.warning("%d source partitions lost (the session expired)", len(partitions))
        self.metrics.rebalances.labels("lost").inc(len(partitions))
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._routed.pop((tp.topic, tp.partition), None)
            self._committing.pop((tp.topic, tp.partition), None)
            self.assigned.discard((tp.topic, tp.partition))
        self.producer.acks.forget((tp.topic, tp.partition) for tp in partitions)
        self.keeper.on_revoked(partitions)
        self.metrics.source_partitions.set(len(self.assigned))

    async def stop(self) -> None:
        """Ends the loop after its batch, commits what was acknowledged and leaves the group."""
        self._stopping = True
        if self._consumer is None:
            return
        await self._finished.wait()
        await self.commit()
        consumer, self._consumer = self._consumer, None
        # close() revokes the partitions (committing what the commit above left) and leaves the group. On
        # this thread: the revocation callback touches the keeper's tasks.
        consumer.close()
        self.producer.flush(self.config.session_timeout_s)


class DataPathService(Service):
    """Hosts the data path in the Faust worker: started with it, and stopped (committing) before it."""

    def __init__(self, path: DataPath, ready: asyncio.Event) -> None:
        super().__init__()
        self.path = path
        self.ready = ready

    async def on_start(self) -> None:
        self.add_future(self.path.run(self.ready))

    async def on_stop(self) -> None:
        await self.path.stop()
