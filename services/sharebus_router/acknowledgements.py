"""Which routed offsets the data path may commit: those whose every message Kafka has acknowledged.

The data path used to flush its producers before each periodic commit, and the loop waited for it: once a
second no record was routed while the broker acknowledged what was in flight (25-50 ms each time in
``make bench-forward``), and every record arriving then waited it out. Now every message carries a
delivery report, counted in the *epoch* it was produced in:

- the open epoch counts what is produced; every commit interval it is *cut*, with the next offsets of the
  records routed so far (each of their messages was produced before the cut);
- a cut epoch is acknowledged once each of its messages has its report;
- its offsets may be committed once it and every epoch cut before it are acknowledged, so no offset is
  committed before its deliveries, held copies, dead letters and audit facts are in Kafka.

A report with an error ends the process (``end_process``), before any commit that would pass its record.
Reports are served by the producers' ``poll()`` and ``flush()``, on the thread that calls them.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable

from confluent_kafka import KafkaError, Message

log = logging.getLogger(__name__)

EXIT_DELIVERY_FAILED = 70
TP = tuple[str, int]


def end_process(reason: str) -> None:
    """Ends the worker before its next commit: the records not committed are routed again by the next."""
    log.critical("%s; exiting so that uncommitted records are routed again", reason)
    logging.shutdown()
    os._exit(EXIT_DELIVERY_FAILED)


def fail_rejected(error: KafkaError | None, message: Message) -> None:
    """A delivery report: a message Kafka rejected ends the worker (``end_process``); nothing else does."""
    if error is not None:
        end_process(f"Kafka rejected a delivery to {message.topic()} ({error})")


class Epoch:
    """The messages produced between two cuts; called with the delivery report of each (``on_delivery``)."""

    __slots__ = ("cut_at", "delivered", "offsets", "produced", "warned")

    def __init__(self) -> None:
        self.produced = 0
        self.delivered = 0
        # Set when cut: the next offset of every partition routed before the cut.
        self.offsets: dict[TP, int] | None = None
        self.cut_at = 0.0
        self.warned = False

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        fail_rejected(error, message)
        self.delivered += 1

    @property
    def acknowledged(self) -> bool:
        return self.offsets is not None and self.delivered >= self.produced


class AckLedger:
    """The open epoch and the cut ones not yet committed, oldest first."""

    def __init__(self) -> None:
        self.open = Epoch()
        self._cut: deque[Epoch] = deque()

    def cut(self, offsets: dict[TP, int], now: float) -> None:
        epoch, self.open = self.open, Epoch()
        epoch.offsets = offsets
        epoch.cut_at = now
        self._cut.append(epoch)

    def acknowledged(self) -> tuple[dict[TP, int], float] | None:
        """The offsets of every leading acknowledged epoch (a later epoch's win), and when the first was cut;
        None while the oldest cut epoch still waits for a report."""
        merged: dict[TP, int] = {}
        first_cut: float | None = None
        while self._cut and self._cut[0].acknowledged:
            epoch = self._cut.popleft()
            assert epoch.offsets is not None  # acknowledged implies cut
            merged.update(epoch.offsets)
            first_cut = epoch.cut_at if first_cut is None else first_cut
        return None if first_cut is None else (merged, first_cut)

    def waiting(self, now: float, patience_s: float) -> Epoch | None:
        """The oldest cut epoch, once it has waited longer than ``patience_s`` and only the first time."""
        if not self._cut:
            return None
        oldest = self._cut[0]
        if oldest.warned or now - oldest.cut_at <= patience_s:
            return None
        oldest.warned = True
        return oldest

    def forget(self, partitions: Iterable[TP]) -> None:
        """Partitions this worker no longer owns: their offsets in cut epochs are not committed any more.

        A partition lost and assigned back may have moved on under another owner meanwhile: an old cut's
        offset would move its committed offset back.
        """
        gone = set(partitions)
        for epoch in self._cut:
            if epoch.offsets is not None:
                for key in gone.intersection(epoch.offsets):
                    del epoch.offsets[key]
