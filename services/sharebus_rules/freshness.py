"""Is a provider keeping a data class on time? One pure assessment per class."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sharebus_core.catalogue import DataClass, UpdateMode
from sharebus_rules.periods import nominal_length


@dataclass(frozen=True, slots=True)
class FreshnessPolicy:
    # Periodic: overdue when the newest record is older than the period plus this grace.
    grace: dt.timedelta = dt.timedelta(hours=1)
    # Real-time classes have no period; they are overdue after this much silence.
    realtime_max_silence: dt.timedelta = dt.timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Freshness:
    data_class: str
    provider: str
    mode: str
    last_record: dt.datetime | None
    age: dt.timedelta
    allowed: dt.timedelta
    overdue: bool


def allowed_age(entry: DataClass, policy: FreshnessPolicy) -> dt.timedelta:
    if entry.mode is UpdateMode.PERIODIC:
        return nominal_length(entry.update) + policy.grace
    return policy.realtime_max_silence


def assess(
    entry: DataClass, last_record: dt.datetime | None, since: dt.datetime, now: dt.datetime, policy: FreshnessPolicy
) -> Freshness:
    """``since`` is when observation began: a class never seen is as old as the watch over it."""
    age = max(dt.timedelta(0), now - (last_record or since))
    allowed = allowed_age(entry, policy)
    return Freshness(entry.code, entry.provider, entry.mode.value, last_record, age, allowed, age > allowed)
