"""The delivery score of a provider's classes, from freshness: pure arithmetic, no Kafka.

Delivery is 1 when a class was published within the delivery window, else 0; a provider's delivery is
the share of its catalogued classes delivered. A class catalogued but never published is 0. The other
scores (completeness, validity, timeliness) are ratios of exported counters and flags, summed over the
router workers in PromQL (docs/quality.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sharebus_core.catalogue import DataClass
from sharebus_rules.freshness import FreshnessPolicy, allowed_age


def delivery_window(entry: DataClass, policy: FreshnessPolicy, window: dt.timedelta) -> dt.timedelta:
    """The window a class must have been published in: the configured one, but never shorter than
    the class's own period plus the grace (a monthly class is not undelivered in its third week)."""
    return max(window, allowed_age(entry, policy))


def delivered(
    entry: DataClass, last_record: dt.datetime | None, now: dt.datetime, policy: FreshnessPolicy, window: dt.timedelta
) -> bool:
    return last_record is not None and now - last_record <= delivery_window(entry, policy, window)


def share(flags: Iterable[bool]) -> float:
    """The share of true flags; a provider with no catalogued class has nothing promised (1.0)."""
    values = list(flags)
    return sum(values) / len(values) if values else 1.0
