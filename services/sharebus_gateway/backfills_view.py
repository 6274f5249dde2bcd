"""The backfill requests as the gateway follows them: each request's latest event, kept from the backfill
topic by one background reader, so that ``GET /v1/backfills`` answers from memory instead of reading
the whole topic per request.

The topic stays the source of truth (the router writes the outcomes there). The view answers only
once it has read the topic to its end (503 with the reason before, and while its reader fails), and a
request this gateway logged is visible to the caller's next read (``written`` waits for it).
"""

from __future__ import annotations

import threading
from typing import Self

from confluent_kafka import Message

from sharebus_core.backfill_log import BackfillEvent, decode_event
from sharebus_core.catalogue import Catalogue
from sharebus_core.compacted_log import LogFollower
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess


class BackfillViewUnavailable(SharebusError, RuntimeError):
    pass


class BackfillView:
    def __init__(self, access: KafkaAccess, topic: str, wait_s: float = 5.0) -> None:
        self.wait_s = wait_s
        self._lock = threading.Lock()
        # Notified on every event read, for a request waiting to see the one it logged (``written``).
        self._read = threading.Condition(self._lock)
        self._events: dict[str, BackfillEvent] = {}
        # Provisioning makes the topic (retention of its own); the follower waits for it, never creates it.
        self.follower = LogFollower(access, topic, self._put, name="gateway-backfills", ensure_topic=False)

    def start(self) -> Self:
        self.follower.start()
        return self

    def stop(self) -> None:
        self.follower.stop()

    def _put(self, msg: Message) -> None:
        event = decode_event(msg.value())
        if event is not None:
            with self._read:
                self._events[event.request_id] = event
                self._read.notify_all()

    def _check(self) -> None:
        if not self.follower.caught_up.is_set():
            why = f"its reader failed: {self.follower.error}" if self.follower.error else "starting"
            raise BackfillViewUnavailable(f"the backfill view has not read the backfill topic to its end yet ({why})")

    def of_department(self, catalogue: Catalogue, department: str) -> list[BackfillEvent]:
        """The department's requests (its systems' backfills), latest state each, in the order first seen."""
        self._check()
        with self._lock:
            events = list(self._events.values())
        return [e for e in events if catalogue.department_of_system.get(e.consumer) == department]

    def get(self, request_id: str) -> BackfillEvent | None:
        self._check()
        with self._lock:
            return self._events.get(request_id)

    def written(self, request_id: str) -> None:
        """Waits until the view has read the request this gateway logged; ``BackfillViewUnavailable`` after wait_s."""
        with self._read:
            seen = self._read.wait_for(lambda: request_id in self._events, self.wait_s)
        if not seen:
            raise BackfillViewUnavailable(
                f"request {request_id} was logged but this gateway has not read it back within "
                f"{self.wait_s:g} s; ask for it again shortly"
            )
