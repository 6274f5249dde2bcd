"""Idempotent publishing over HTTP: a retry with the same ``Idempotency-Key`` publishes nothing new.

Two layers, because a gateway restarts and several may run:

- **Record ids from the key.** Record i of a request with key K from department D gets the id
  ``sha256(D, class, K, i)``. A retry that does reach Kafka again carries the same ids, so every edge
  that drops repeats by record id (the SDK Subscriber, the gateway's feeds and batches) drops it.
- **A bounded memory of answered keys.** A retry of a request this gateway already answered with 200
  is answered again from memory, and nothing is produced at all. The key is remembered only after
  Kafka acknowledged every record: a retry after a 503 publishes again (with the same ids).

A key reused for another body is refused (422): it would otherwise silently drop the new records.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sharebus_core.errors import SharebusError


class KeyReused(SharebusError, ValueError):
    """The idempotency key was used before with another body."""


def record_ids(department: str, class_code: str, key: str, count: int) -> list[str]:
    prefix = f"{department}\0{class_code}\0{key}\0"
    return [hashlib.sha256(f"{prefix}{i}".encode()).hexdigest()[:32] for i in range(count)]


def body_digest(records: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest()


class AnsweredKeys:
    """(department, class, key) -> (body digest, record ids) of the last ``window`` keys answered."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._answers: OrderedDict[tuple[str, str, str], tuple[str, list[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def answered(self, department: str, class_code: str, key: str, digest: str) -> list[str] | None:
        """The record ids already published for this key, or None; ``KeyReused`` for another body."""
        with self._lock:
            found = self._answers.get((department, class_code, key))
        if found is None:
            return None
        if found[0] != digest:
            raise KeyReused(f"Idempotency-Key {key!r} was used before with a different body")
        return found[1]

    def remember(self, department: str, class_code: str, key: str, digest: str, ids: list[str]) -> None:
        with self._lock:
            self._answers[(department, class_code, key)] = (digest, ids)
            self._answers.move_to_end((department, class_code, key))
            while len(self._answers) > self.window:
                self._answers.popitem(last=False)
