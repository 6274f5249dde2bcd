"""Freshness of every data class as gauges, computed when Prometheus scrapes.

The hot path only stores the router-clock time of each class's latest record in ``last``; ages
and overdue flags are derived at scrape time (``sharebus_rules.freshness.assess``). At start the
times are seeded from the source topics' newest records, so a restart does not make every class
look fresh or unknown.

With several router workers each routes only its own partitions, so one worker speaks for the
freshness of every class: the one that owns the backfill topic's only partition (``active``). It
re-reads the newest record of every source topic every ``refresh`` seconds, besides what it routes.
The others export no freshness samples, so no class has two contradictory ages. Whether a periodic
class's last window held records is exported by the worker that released it (``releases``).

Seeding checks what it seeds from (``seed_from_log``): a topic's newest timestamp may be a record the
router dead-letters (not Avro of the class, say), and a class whose provider sends only garbage must not
look fresh. So a newer timestamp than the class's known one is taken only from a record that passes the
wire and schema checks (``valid``): among the newest ``SEED_SPAN`` records of each partition, the newest
that does; none (all of them bad) seeds nothing. A topic's answer is kept until its newest timestamp moves.
The topics to check are read together, by one consumer (``partition_tails``): at city scale, thousands.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from confluent_kafka import Message
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sharebus_core.catalogue import Catalogue
from sharebus_core.exposition import WHOLE, Shard
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import TopicReadError, last_record_times, partition_tails
from sharebus_router.dead_letters import BadRecord
from sharebus_rules.freshness import Freshness, FreshnessPolicy, assess, credible

if TYPE_CHECKING:
    from sharebus_router.handler import RecordHandler

# The last offsets of each partition looked at for a record that passes the checks: a few first (a
# transaction's marker takes an offset), and further back only for a topic none of whose few pass.
FIRST_SPAN = 4
SEED_SPAN = 64
# (source topic, record value) -> whether the router would route it (wire format, schema of the class).
Valid = Callable[[str, bytes | None], Awaitable[bool]]


def newest_records(access: KafkaAccess, topic: str, span: int = SEED_SPAN) -> list[Message]:
    """The last ``span`` committed records of each partition of ``topic``."""
    return partition_tails(access, [topic], span).get(topic, [])


def decodes(handler: RecordHandler) -> Valid:
    """The router's own wire and schema checks (``RecordHandler.decoded``) as ``Valid``."""

    async def valid(topic: str, value: bytes | None) -> bool:
        route = handler.routes.get(topic)
        if route is None:
            # Not "invalid" (which would be kept until the topic moves): the routes are not built yet.
            raise TopicReadError(f"no route for {topic} yet; its newest records are checked later")
        try:
            await handler.decoded(value, route)
        except BadRecord:
            return False
        except Exception as exc:
            # The registry not answering says nothing about the record: unknown, so nothing is seeded or kept.
            raise TopicReadError(f"cannot check the newest record of {topic}: {exc}") from exc
        return True

    return valid


def _stamp(msg: Message) -> float:
    return msg.timestamp()[1] / 1000


class FreshnessTracker(Collector):
    def __init__(self, catalogue: Catalogue, clock: Callable[[], float], policy: FreshnessPolicy) -> None:
        self.catalogue = catalogue
        self.clock = clock
        self.policy = policy
        self.started = clock()
        # class code -> epoch seconds (router clock) of its latest record. Written per record.
        self.last: dict[str, float] = {}
        # Periodic classes: whether the latest released window held any record.
        self.window_delivered: dict[str, bool] = {}
        # Several workers: whether this one exports the freshness gauges, and the classes it releases.
        self.active: Callable[[], bool] = lambda: True
        self.releases: Callable[[str], bool] = lambda code: True
        # Source topic -> (its newest timestamp when checked, the newest valid record's time then, if any).
        self._checked: dict[str, tuple[float, float | None]] = {}

    def seed(self, last_times: Mapping[str, float]) -> None:
        """Takes the source topics' newest record times (their producers' clocks), those not in the future
        of the router's clock (``credible``)."""
        now = self.clock()
        for code, stamp in last_times.items():
            seen = credible(stamp, now)
            if seen is not None and seen > self.last.get(code, 0.0):
                self.last[code] = seen

    async def seed_from_log(self, access: KafkaAccess, sources: Mapping[str, str], valid: Valid) -> None:
        """Seeds from the newest record of each source topic (``sources``: topic -> class) that ``valid`` passes.

        The topics to check are read together (``partition_tails``): first the last ``FIRST_SPAN`` offsets of
        each partition, then, for a topic none of whose records there pass, the last ``SEED_SPAN``. Raises
        ``TopicReadError`` when Kafka does not answer; the caller keeps the view it has."""
        loop = asyncio.get_running_loop()
        stamps = await loop.run_in_executor(None, last_record_times, access, list(sources))
        wanted = self._to_check(stamps, sources)
        for span in (FIRST_SPAN, SEED_SPAN):
            if not wanted:
                return
            tails = await loop.run_in_executor(None, partition_tails, access, wanted, span)

            async def tail(topic: str, tails: dict[str, list[Message]] = tails) -> list[Message]:
                return tails.get(topic, [])

            await self.seed_checked({t: stamps[t] for t in wanted}, sources, valid, tail)
            # Looked at further back once; the answer is then kept until the topic's newest stamp moves. Only
            # topics checked and found wanting: one skipped meanwhile (its class routed a newer record) is done.
            found = [t for t in wanted if t in self._checked and self._checked[t][1] is None]
            wanted = found if span == FIRST_SPAN else []
            for topic in wanted:
                self._checked.pop(topic, None)

    def _to_check(self, stamps: Mapping[str, float], sources: Mapping[str, str]) -> list[str]:
        """The topics whose newest stamp would move their class's time and was not checked at that stamp."""
        return [
            topic
            for topic, stamp in stamps.items()
            if self._moved_by(topic, stamp, sources) is not None and self._checked.get(topic, (None, None))[0] != stamp
        ]

    def _moved_by(self, topic: str, stamp: float, sources: Mapping[str, str]) -> str | None:
        """The class whose time the newest stamp of its source ``topic`` would move, if any."""
        code = sources.get(topic)
        return code if code is not None and stamp > self.last.get(code, 0.0) else None

    async def seed_checked(
        self,
        stamps: Mapping[str, float],
        sources: Mapping[str, str],
        valid: Valid,
        tail: Callable[[str], Awaitable[list[Message]]],
    ) -> None:
        """``stamps``: each source topic's newest timestamp; a topic whose stamp would move its class's time
        is read (``tail``) for its newest record that ``valid`` passes, and that record's time is seeded."""
        now = self.clock()
        checked: dict[str, float] = {}
        for topic, stamp in stamps.items():
            # A newest stamp in the future (a producer's clock) is not taken, but an older record may be.
            code = self._moved_by(topic, stamp, sources)
            if code is None:
                continue
            kept = self._checked.get(topic)
            if kept is None or kept[0] != stamp:
                kept = self._checked[topic] = (stamp, await self._newest_valid(topic, await tail(topic), valid, now))
                # Each check decodes on the event loop the data path shares: thousands at city scale.
                await asyncio.sleep(0)
            if kept[1] is not None:
                checked[code] = kept[1]
        self.seed(checked)

    @staticmethod
    async def _newest_valid(topic: str, records: list[Message], valid: Valid, now: float) -> float | None:
        for msg in sorted(records, key=_stamp, reverse=True):
            if credible(_stamp(msg), now) is not None and await valid(topic, msg.value()):
                return _stamp(msg)
        return None

    def report(self, shard: Shard = WHOLE) -> list[Freshness]:
        """Every class's freshness now (the classes of ``shard`` only, for a scrape in parts)."""
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        since = dt.datetime.fromtimestamp(self.started, dt.UTC)
        report = []
        for code, entry in self.catalogue.data_classes.items():
            if not shard.holds_value(code):
                continue
            seen = self.last.get(code)
            last = dt.datetime.fromtimestamp(seen, dt.UTC) if seen is not None else None
            report.append(assess(entry, last, since, now, self.policy))
        return report

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return self.collect_shard(WHOLE)

    def collect_shard(self, shard: Shard) -> Iterator[GaugeMetricFamily]:
        labels = ["provider", "data_class", "mode"]
        last = GaugeMetricFamily(
            "sharebus_freshness_last_record_timestamp_seconds",
            "When the router received the class's latest record (Unix time; absent when never seen)",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "sharebus_freshness_age_seconds",
            "Age of the class's latest record (since the router began watching, when never seen)",
            labels=labels,
        )
        overdue = GaugeMetricFamily(
            "sharebus_freshness_overdue",
            "1 when the data is older than its period plus the grace (real-time: the allowed silence)",
            labels=labels,
        )
        delivered = GaugeMetricFamily(
            "sharebus_freshness_window_delivered",
            "Periodic classes: 1 when the latest released window held records, 0 when it was empty",
            labels=labels,
        )
        active = self.active()
        for item in self.report(shard):
            values = [item.provider, item.data_class, item.mode]
            if item.data_class in self.window_delivered and self.releases(item.data_class):
                delivered.add_metric(values, 1.0 if self.window_delivered[item.data_class] else 0.0)
            if not active:
                continue
            if item.last_record is not None:
                last.add_metric(values, item.last_record.timestamp())
            age.add_metric(values, item.age.total_seconds())
            overdue.add_metric(values, 1.0 if item.overdue else 0.0)
        yield last
        yield age
        yield overdue
        yield delivered
