"""Receiving in tests: a system's deliveries through the SDK Subscriber, as a user's code would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sharebus_core.settings import BusSettings
from sharebus_sdk import Delivery, Subscriber, SubscriberSettings


@dataclass(frozen=True)
class Received:
    deliveries: list[Delivery]
    # Redeliveries the Subscriber recognised by record id and did not hand out.
    duplicates: int

    @property
    def values(self) -> list[dict[str, Any]]:
        return [d.value for d in self.deliveries]


def collect(settings: BusSettings, system: str, expected: int, idle_timeout_s: float = 20.0) -> Received:
    """Reads ``system``'s deliveries until ``expected`` have arrived, or none came for ``idle_timeout_s``."""
    deliveries: list[Delivery] = []
    with Subscriber(system, SubscriberSettings.model_validate(settings.model_dump())) as subscriber:
        for delivery in subscriber.records(idle_timeout_s=idle_timeout_s):
            deliveries.append(delivery)
            if len(deliveries) == expected:
                break
        return Received(deliveries, subscriber.duplicates)
