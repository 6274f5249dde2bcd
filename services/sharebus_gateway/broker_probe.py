"""Whether the broker answers, as one background thread last found it: what ``/readyz`` reports.

``/readyz`` answers anyone, unauthenticated and unlimited. Asking the broker on each call made a new
librdkafka handle (threads, a TLS and SCRAM handshake) per request on the shared worker threads, so
a caller looping on it burned the gateway's CPU and threads. One thread asks instead, with one admin
client kept for the process, at most every ``interval_s``; a request only reads the last answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, Self

from confluent_kafka import KafkaException

log = logging.getLogger(__name__)


class _Admin(Protocol):
    def list_topics(self, *, timeout: float) -> object: ...


class BrokerProbe:
    """``reachable`` is the last probe's answer, False until the first one and once it is older than
    ``3 * interval_s`` (the probing thread stuck or dead must not leave a stale True)."""

    def __init__(
        self,
        admin: Callable[[], _Admin],
        interval_s: float = 5.0,
        timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._admin_factory = admin
        self._admin: _Admin | None = None
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._answer: tuple[bool, float] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broker-probe", daemon=True)

    @property
    def reachable(self) -> bool:
        answer = self._answer
        if answer is None:
            return False
        ok, at = answer
        return ok and self._clock() - at <= 3 * self.interval_s

    def probe(self) -> bool:
        """Asks the broker once (the thread's step; tests call it directly)."""
        try:
            if self._admin is None:
                self._admin = self._admin_factory()
            self._admin.list_topics(timeout=self.timeout_s)
            ok = True
        except KafkaException as exc:
            ok = False
            log.warning("broker probe: %s", exc)
        self._answer = (ok, self._clock())
        return ok

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout_s + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.probe()
            except Exception:
                # Anything else (a bad configuration): reported as unreachable, probed again later.
                self._answer = (False, self._clock())
                log.exception("broker probe failed")
            self._stop.wait(self.interval_s)
