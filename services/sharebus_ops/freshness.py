"""Freshness of every data class, read from the log: the newest retained record of each source topic."""

from __future__ import annotations

import datetime as dt

from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import last_record_times
from sharebus_core.topics import TopicNames
from sharebus_rules.freshness import Freshness, FreshnessPolicy, assess, credible


def freshness_report(
    catalogue: Catalogue,
    access: KafkaAccess,
    topics: TopicNames,
    now: dt.datetime,
    policy: FreshnessPolicy,
    provider: str | None = None,
) -> list[Freshness]:
    """One assessment per class (of ``provider``, if given), sorted by provider and code.

    A class with no retained record is judged from the Unix epoch: overdue, because nothing of it
    can be delivered. So is one whose newest record is stamped in the future (``credible``).
    """
    entries = [e for e in catalogue.data_classes.values() if provider is None or e.provider == provider]
    newest = last_record_times(access, [topics.source(e.code) for e in entries])
    never = dt.datetime.fromtimestamp(0, dt.UTC)
    report = []
    for entry in sorted(entries, key=lambda e: (e.provider, e.code)):
        stamp = credible(newest.get(topics.source(entry.code)), now.timestamp())
        last = dt.datetime.fromtimestamp(stamp, dt.UTC) if stamp is not None else None
        report.append(assess(entry, last, never, now, policy))
    return report
