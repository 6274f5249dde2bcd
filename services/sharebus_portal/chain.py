"""The audit chain's status for the bureau page, checked in a background thread (a whole-topic read
that must never run on a request), with the same code as ``sharebus audit verify``."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from confluent_kafka import KafkaException

from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import Verifier
from sharebus_ops.audit import AnchorSource, verify

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChainStatus:
    checked_at: dt.datetime | None
    intact: bool | None
    summary: str


class ChainWatch:
    def __init__(
        self, access: KafkaAccess, topic: str, anchors_topic: str, verifier: Verifier | None, interval_s: float
    ) -> None:
        self.access = access
        self.topic = topic
        self.anchors = AnchorSource(anchors_topic, verifier) if verifier is not None else None
        self.interval_s = interval_s
        self.status = ChainStatus(None, None, "not checked yet")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-chain-watch", daemon=True)

    def start(self) -> None:
        if self.interval_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def check(self) -> ChainStatus:
        try:
            result = verify(self.access, self.topic, self.anchors)
        except (SharebusError, KafkaException) as exc:
            log.warning("audit chain check failed: %s", exc)
            status = ChainStatus(dt.datetime.now(dt.UTC), None, f"could not be checked: {exc}")
        else:
            status = ChainStatus(dt.datetime.now(dt.UTC), result.intact, str(result))
        self.status = status
        return status

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(self.interval_s)
