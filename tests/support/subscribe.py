"""Receiving in tests: a system's deliveries through the SDK Subscriber, as a user's code would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sharebus_core.settings import BusSettings
from sharebus_sdk import Batch, Delivery, Subscriber, SubscriberSettings


@dataclass(frozen=True)
class Received:
    deliveries: list[Delivery]
    # Redeliveries the Subscriber recognised by record id and did not hand out.
    duplicates: int
    batches: list[Batch] = field(default_factory=list)

    @property
    def values(self) -> list[dict[str, Any]]:
        return [d.value for d in self.deliveries]


def collect(
    settings: BusSettings, system: str, expected: int, idle_timeout_s: float = 20.0, expected_batches: int = 0
) -> Received:
    """Reads ``system``'s deliveries until ``expected`` records and ``expected_batches`` whole batches have
    arrived, or nothing came for ``idle_timeout_s``."""
    deliveries: list[Delivery] = []
    batches: list[Batch] = []
    with Subscriber(system, SubscriberSettings.model_validate(settings.model_dump())) as subscriber:
        for item in subscriber.records(idle_timeout_s=idle_timeout_s):
            if isinstance(item, Batch):
                batches.append(item)
            else:
                deliveries.append(item)
            if len(deliveries) >= expected and len(batches) >= expected_batches:
                break
        return Received(deliveries, subscriber.duplicates, batches)
