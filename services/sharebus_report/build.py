"""``build_report``: read the bus's durable records for a period and assemble the report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import BusSettings
from sharebus_core.signing import Verifier
from sharebus_core.topics import TopicNames
from sharebus_report.assemble import Tallies, assemble, report_cut
from sharebus_report.audit_tally import DEFAULT_DEDUPE_WINDOW, AuditTally
from sharebus_report.dispute_tally import tally_disputes
from sharebus_report.grant_tally import tally_grants
from sharebus_report.model import Report
from sharebus_report.period import Period
from sharebus_report.sources import each_event, read_from_its_start, read_grant_events, stream_events
from sharebus_rules.grant_workflow import DEFAULT_ANSWER_DEADLINE_WORKING_DAYS


@dataclass(frozen=True, slots=True)
class Rules:
    """How a report judges: the windows' grace, the grant deadline, the repeat window."""

    grace: dt.timedelta = dt.timedelta(hours=1)
    grant_deadline_working_days: int = DEFAULT_ANSWER_DEADLINE_WORKING_DAYS
    dedupe_window: int = DEFAULT_DEDUPE_WINDOW
    # The calendar of the grant deadline's working days; None: the setting (BusSettings.grants_deadline_zone).
    grant_deadline_zone: dt.tzinfo | None = None


def build_report(
    access: KafkaAccess,
    topics: TopicNames,
    catalogue: Catalogue,
    period: Period,
    *,
    verifier: Verifier,
    now: dt.datetime | None = None,
    rules: Rules = Rules(),
) -> Report:
    """The report of ``period``, from the audit trail, the grants and the disputes topics.

    ``access`` must read ``topics.audit``, ``topics.grants`` and ``topics.disputes`` (the operator
    does); ``verifier`` is the control plane's public key, since only signed grant events count.
    ``now`` (default: the wall clock) only matters while the period is open: a closed period's
    report is the same whenever it is made. This reads the trail from the period's start to its
    end: call it for a report, not on every page view.
    """
    as_of = report_cut(period, now or dt.datetime.now(dt.UTC), rules.grace)
    audit = AuditTally(catalogue, period, as_of, rules.grace, rules.dedupe_window)
    whole = read_from_its_start(access, topics.audit, period.start)
    stream_events(access, topics.audit, each_event(audit.add), since=period.start)
    if whole:
        # A bus started within the period: its windows count from its first event, not the period's start.
        audit.read_whole()
    disputes: list[Mapping[str, Any]] = []
    stream_events(access, topics.disputes, lambda event, _partition: disputes.append(event), since=period.start)
    grant_events = read_grant_events(access, topics.grants, verifier)
    tallies = Tallies(
        audit=audit,
        grants=tally_grants(
            grant_events,
            period,
            as_of,
            rules.grant_deadline_working_days,
            rules.grant_deadline_zone or BusSettings().grants_deadline_zone,
        ),
        grant_events=len(grant_events),
        disputes=tally_disputes(disputes, period, as_of),
    )
    return assemble(catalogue, topics.namespace, tallies)
