"""Is a provider keeping a data class on time? One pure assessment per class."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sharebus_core.catalogue import DataClass, UpdateMode
from sharebus_rules.periods import nominal_length
from sharebus_rules.quality import DEFAULT_CLOCK_TOLERANCE

# How far a record's time (its producer's clock, Kafka's CreateTime) may run ahead of the reader's clock
# and still count: as far as quality's not_future rule allows.
FUTURE_TOLERANCE = DEFAULT_CLOCK_TOLERANCE


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


def credible(stamp: float | None, now: float) -> float | None:
    """A record's time (epoch seconds) if it is not past ``now`` and the tolerance, else None (unknown).

    A topic's newest time stays that record's for as long as it is kept: a producer whose clock runs
    ahead would otherwise keep its class looking fresh until then, whatever it publishes meanwhile.
    """
    return stamp if stamp is not None and stamp <= now + FUTURE_TOLERANCE.total_seconds() else None


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
