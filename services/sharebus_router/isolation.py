"""The router reads its source topics ``read_committed``.

A gateway publish request is one Kafka transaction, so that a batch lands whole or not at all; a
reader that takes uncommitted records would route the records of an aborted batch. Faust chooses the
isolation level itself (``read_committed`` only under ``exactly_once``), so the router sets it on
the aiokafka consumer Faust creates, before that consumer starts. Records of aborted transactions
and the transaction markers leave offset holes, which the order guard (``skips.py``) reads back and
finds empty.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_PATCHED = "_sharebus_read_committed"


def read_committed() -> None:
    """Makes every worker consumer Faust creates in this process read committed records only."""
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread_class, _PATCHED, False):
        return
    create = thread_class._create_worker_consumer

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        # aiokafka hands this to its fetcher when the consumer starts.
        consumer._isolation_level = "read_committed"
        return consumer

    thread_class._create_worker_consumer = create_worker_consumer
    setattr(thread_class, _PATCHED, True)
