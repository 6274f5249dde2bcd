"""Targets with a hand-over point that this worker's routes lack: a partition (or a release) waits for them.

Another worker wrote the point as it made the target live; this worker's grant follower is behind, or its
catalogue older than the ledger. A point of a subscription that the catalogue removed binds nothing and is
not waited for (``retired``). live_points.py and held_points.py wait on ``lacking``.
"""

from __future__ import annotations

import datetime as dt

from sharebus_core.topics import TopicNames
from sharebus_router.handover import Handover, handover_key
from sharebus_router.route_table import RouteTable


def lacking(
    table: RouteTable, topics: TopicNames, started: dt.datetime, code: str, topic: str, partition: int
) -> list[str]:
    """Targets with a point on the partition that this worker's routes do not have yet (``started``: when
    this worker's catalogue was loaded)."""
    route = table.routes.get(topics.source(code))
    if route is None or route.closed or not table.ready.is_set():
        return []
    have = {handover_key(t.consumer, code, t.grant_id) for t in route.targets}
    return [
        entry.key
        for entry in table.ledger.on_partition(topic, partition)
        if entry.key not in have
        and not table.settled(code, entry.consumer, entry.grant_id)
        and not retired(table, topics, started, code, entry)
    ]


def unknown_subscription(table: RouteTable, code: str, key: str) -> bool:
    """Whether the point ``key`` is of a subscription this worker's catalogue does not have."""
    entry = table.ledger.get(key)
    return entry is not None and entry.grant_id is None and not table.subscribed(code, entry.consumer)


def retired(table: RouteTable, topics: TopicNames, started: dt.datetime, code: str, entry: Handover) -> bool:
    """Whether a subscription this worker's catalogue lacks was removed from the catalogue (so its point
    binds nothing), rather than added to a catalogue newer than this worker's.

    The catalogue carries no version, so the ledger tells: a retired subscription had its points on
    every partition of the class (the workers on the catalogue that had it claimed them all), and the
    newest of them is older than this worker's start. A subscription a newer catalogue adds is
    recorded partition by partition as the workers on that catalogue claim them, after this worker
    loaded its own. A worker started on an older catalogue after every partition has the new
    subscription's point is not told apart from one whose catalogue removed it: that is a rollback.
    """
    if entry.grant_id is not None or table.subscribed(code, entry.consumer):
        return False
    ledger = table.ledger
    if entry.topic != topics.held and entry.key not in ledger.whole:
        partitions = table.catalogue.data_class(code).partitions
        if not set(range(partitions)) <= set(entry.live_from):
            return False
    newest = ledger.newest(entry.key)
    return newest is not None and newest < started
