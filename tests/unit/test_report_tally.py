"""The report's counting, over a scripted set of events: exactly the expected numbers, no Kafka."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_report.assemble import Tallies, assemble, class_rows, report_cut
from sharebus_report.audit_tally import AuditTally
from sharebus_report.dispute_tally import tally_disputes
from sharebus_report.grant_tally import tally_grants
from sharebus_report.model import Report
from sharebus_report.period import parse_period
from tests.support.report_events import audit_event, dispute_event, quality
from tests.unit.fixtures import FIXTURE_CATALOGUE

CST = ZoneInfo("Asia/Shanghai")
ENTERPRISE, PENALTY, INSPECTION = "301001001/000001", "301001002/000001", "301001003/000001"
LICENCES, ROSTER = "301001004/000001", "301001005/000001"  # daily at 02:00; hourly
PERIOD = parse_period("2026-11")
GRACE = dt.timedelta(hours=1)
AS_OF = report_cut(PERIOD, dt.datetime(2027, 3, 1, tzinfo=dt.UTC), GRACE)  # a closed period


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=CST)


def audit_events() -> list[dict[str, Any]]:
    good, short = quality(5, 5), quality(4, 5, "uscc:check_digit")
    events = []
    # Three enterprise records, each to both subscribers; record 1 fails a rule (flagged, delivered).
    for offset, checked in ((0, good), (1, short), (2, good)):
        for consumer in ("tax-levy", "psb-case"):
            events.append(audit_event(at(3), ENTERPRISE, offset, consumer, checked=checked))
    # The router crashed and chained record 0's fact again: dropped as a repeat.
    events += [audit_event(at(3), ENTERPRISE, 0, c, checked=good) for c in ("tax-levy", "psb-case")]
    # A record rejected for quality (contract A): a denial without consumer, with its quality object.
    bad = quality(5, 5, "uscc:check_digit")
    events.append(audit_event(at(4), ENTERPRISE, 3, None, "deny", reason="quality:uscc:check_digit", checked=bad))
    # Two penalties denied to tax-levy (no grant yet).
    events += [audit_event(at(5), PENALTY, o, "tax-levy", "deny", reason="no_grant") for o in (0, 1)]
    # The hourly roster's window [02:00, 03:00) of 10 November, released on time with two records.
    events += [audit_event(at(10, 3, 0, 1), ROSTER, o, "tax-levy", mode="periodic") for o in (0, 1)]
    # Daily licence statistics: one window released on time, one released two hours late.
    events.append(audit_event(at(10, 2, 0, 5), LICENCES, 0, "hrss-si", mode="periodic"))
    events.append(audit_event(at(12, 4, 0, 0), LICENCES, 1, "hrss-si", mode="periodic"))
    # A backfill of two old enterprise records to psb-case: received (one call), not provided again.
    events += [audit_event(at(20), ENTERPRISE, o, "psb-case", backfill="bf-1") for o in (0, 1)]
    # Two gateway refusals of hrss-si's requests; a forged control event (not counted).
    refusal = {"time": at(21).isoformat(), "mode": "gateway", "consumer": "hrss-si", "decision": "forbidden"}
    events += [refusal, dict(refusal)]
    events.append({"time": at(21).isoformat(), "mode": "control", "consumer": "tax-levy", "decision": "deny"})
    # Outside the period: the last second of October and the first of December.
    events.append(audit_event(at(31, 23, 59, 59, month=10), ENTERPRISE, 7, "tax-levy"))
    events.append(audit_event(at(1, 0, 0, 1, month=12), ENTERPRISE, 8, "tax-levy"))
    events.append({"mode": "realtime", "decision": "deliver"})  # unreadable: no time
    return events


def grant(grant_id: str, applied: dt.datetime, state: GrantState, **changes: Any) -> Grant:
    return Grant(
        grant_id=grant_id,
        data_class=PENALTY,
        provider="AMR",
        consumer="tax-levy",
        consumer_department="TAX",
        requester="officer Li",
        purpose="tax credit rating",
        scenario="annual rating",
        fields=("uscc",),
        state=state,
        applied_at=applied,
        **changes,
    )


def grant_events() -> list[Grant]:
    applied, approved, rejected = GrantState.APPLIED, GrantState.APPROVED, GrantState.REJECTED
    return [
        # Answered the next day: in time.
        grant("g1", at(2, 10), applied),
        grant("g1", at(2, 10), approved, decided_at=at(3), decided_by="AMR"),
        # Applied on Monday 2 November, answered on the 20th: after the 10 working days (16 November).
        grant("g2", at(2, 10), applied),
        grant("g2", at(2, 10), rejected, decided_at=at(20), decided_by="AMR", reason="no"),
        # Applied on the 25th: its deadline (9 December) has not come by the period's end.
        grant("g3", at(25), applied),
        # Applied on the 3rd and never answered: overdue since 17 November.
        grant("g4", at(3), applied),
        # Granted by the bus itself (unconditional): not the provider's to answer.
        grant("g5", at(4), approved, decided_at=at(4), decided_by="AMR", automatic=True),
        # Applied in October: another period's.
        grant("g6", at(30, month=10), applied),
        # Approved, then revoked; compaction left only the revocation, whose time bounds the answer.
        grant("g7", at(4), GrantState.REVOKED, decided_at=at(5), decided_by="AMR", reason="ended"),
    ]


def dispute_events() -> list[dict[str, Any]]:
    def steps(dispute_id: str, opened: dt.datetime, *later: tuple[str, dt.datetime], **who: str) -> list[Any]:
        deadline = opened + dt.timedelta(days=7)
        made = [dispute_event("opened", dispute_id, opened, opened_at=opened, deadline=deadline, **who)]
        return made + [dispute_event(k, dispute_id, t, opened_at=opened, deadline=deadline, **who) for k, t in later]

    refused = dispute_event(
        "refused", "d5", at(8), opened_at=at(8), deadline=at(15), consumer="psb-case", consumer_department="PSB"
    )
    return [
        *steps("d1", at(5), ("answered", at(6)), ("corrected", at(6, 14))),  # answered on time, corrected
        *steps("d2", at(10), ("rejected", at(20))),  # answered after its deadline (17th)
        *steps("d3", at(20), ("overdue", at(27, 13))),  # never answered
        *steps("d4", at(28)),  # deadline 5 December: still pending when the period ends
        refused,
        *steps("d6", at(28, month=10), ("answered", at(1))),  # opened in October
        {"type": "opened", "dispute_id": "d7"},  # unreadable
    ]


def make_report(catalogue: Catalogue, events: list[dict[str, Any]] | None = None) -> Report:
    audit = AuditTally(catalogue, PERIOD, AS_OF, GRACE)
    for event in audit_events() if events is None else events:
        audit.add(event, 0)
    grants = grant_events()
    disputes = tally_disputes(dispute_events(), PERIOD, AS_OF)
    tallies = Tallies(audit, tally_grants(grants, PERIOD, AS_OF), len(grants), disputes)
    return assemble(catalogue, "sharebus", tallies)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(FIXTURE_CATALOGUE)


@pytest.fixture(scope="module")
def report(catalogue: Catalogue) -> Report:
    return make_report(catalogue)


def test_the_provider_row_has_exactly_the_scripted_numbers(report: Report) -> None:
    amr = report.department("AMR")
    assert (amr.classes_promised, amr.classes_published) == (5, 4)  # the inspection notes never came
    assert amr.records_provided == 4 + 2 + 2 + 2  # enterprises (one rejected), penalties, roster, licences
    assert amr.calls_served == 6 + 1 + 1 + 2  # six deliveries, one backfill, one roster batch, two licence batches
    assert amr.denials_caused == 2 + 1  # two penalties without grant, one quality rejection
    # Windows: 720 hourly and 30 daily ones end in November; one of each was released on time.
    assert (amr.windows_on_time, amr.windows_overdue) == (2, 719 + 29)
    assert amr.quality_records == 4
    assert amr.completeness == pytest.approx(19 / 20)
    assert amr.validity == pytest.approx(2 / 4)
    assert (amr.disputes_received, amr.disputes_on_time, amr.disputes_overdue, amr.disputes_corrected) == (4, 1, 2, 1)
    assert (amr.grants_received, amr.grants_on_time, amr.grants_overdue) == (5, 2, 2)
    assert (amr.records_consumed, amr.calls_received, amr.denials_received) == (0, 0, 0)


def test_the_consumer_rows_have_exactly_the_scripted_numbers(report: Report) -> None:
    tax, psb, hrss = report.department("TAX"), report.department("PSB"), report.department("HRSS")
    assert (tax.records_consumed, tax.calls_received, tax.denials_received, tax.disputes_raised) == (5, 4, 2, 4)
    assert (psb.records_consumed, psb.calls_received, psb.denials_received, psb.disputes_raised) == (5, 4, 0, 0)
    assert (hrss.records_consumed, hrss.calls_received, hrss.denials_received) == (2, 2, 2)  # 2 gateway refusals
    for row in (tax, psb, hrss):
        assert (row.classes_promised, row.records_provided, row.score, row.rank) == (0, 0, None, None)


def test_the_class_rows_show_what_was_never_published(report: Report) -> None:
    assert [row.code for row in report.classes if not row.published] == [INSPECTION]
    enterprise, roster, licences = report.data_class(ENTERPRISE), report.data_class(ROSTER), report.data_class(LICENCES)
    assert (enterprise.records, enterprise.deliveries, enterprise.denials, enterprise.calls) == (4, 6, 1, 7)
    assert (roster.records, roster.calls, roster.windows_on_time, roster.windows_overdue) == (2, 1, 1, 719)
    assert (licences.windows_on_time, licences.windows_overdue) == (1, 29)
    assert report.data_class(PENALTY).validity is None  # no quality object: nothing checked


def test_the_score_follows_the_formula(report: Report) -> None:
    amr = report.department("AMR")
    expected = (30 * 4 / 5 + 15 * 2 / 750 + 15 * 19 / 20 + 15 * 2 / 4 + 15 * 1 / 3 + 10 * 2 / 4) / 100 * 100
    assert amr.score == pytest.approx(expected, abs=1e-4)
    assert amr.rank == 1
    assert report.departments[0].code == "AMR"


def test_what_was_read_is_accounted_for(report: Report) -> None:
    # Counted: 6 + 2 repeats + 1 + 2 + 2 + 2 + 2 backfill + 2 refusals; the repeats are then dropped.
    assert report.sources.audit_events == 19
    assert report.sources.audit_repeats == 2
    assert report.sources.audit_skipped == 1
    assert report.sources.dispute_skipped == 1
    assert report.sources.grant_events == 9


def test_a_period_still_open_counts_up_to_now_and_leaves_recent_windows_pending(catalogue: Catalogue) -> None:
    now = at(10, 3, 30)
    cut = report_cut(PERIOD, now, GRACE)
    assert cut == now
    audit = AuditTally(catalogue, PERIOD, cut, GRACE)
    for event in audit_events():
        audit.add(event, 0)
    report = assemble(catalogue, "sharebus", Tallies(audit, {}, 0, tally_disputes([], PERIOD, cut)))
    assert not report.complete
    roster = report.data_class(ROSTER)
    # Windows ending up to 02:00 on the 10th are judged (overdue); 03:00 was released; later ones are not judged.
    assert (roster.windows_on_time, roster.windows_overdue) == (1, 9 * 24 + 2)
    assert report.data_class(ENTERPRISE).records == 4  # everything up to the 10th, 03:30
    assert report.data_class(LICENCES).records == 1


def test_the_same_events_give_the_same_report(catalogue: Catalogue) -> None:
    assert make_report(catalogue) == make_report(catalogue)


def test_a_repeat_beyond_the_dedupe_window_is_counted_again(catalogue: Catalogue) -> None:
    audit = AuditTally(catalogue, PERIOD, AS_OF, GRACE, dedupe_window=2)
    for offset in (0, 1, 2, 0):  # offset 0 again, three decisions later
        audit.add(audit_event(at(3), ENTERPRISE, offset, "tax-levy"), 0)
    assert audit.classes[ENTERPRISE].records == 4
    audit = AuditTally(catalogue, PERIOD, AS_OF, GRACE, dedupe_window=2)
    for offset in (0, 1, 0):
        audit.add(audit_event(at(3), ENTERPRISE, offset, "tax-levy"), 0)
    assert audit.classes[ENTERPRISE].records == 2


def test_a_replay_just_after_the_period_starts_of_a_decision_just_before_it_is_not_counted(
    catalogue: Catalogue,
) -> None:
    # The router chained record 7's decisions at the last second of October, crashed, and chained them
    # again after midnight: October's report counts them, so November's must not count them again.
    before, replay = at(31, 23, 59, 59, month=10), at(1, 0, 0, 2)
    audit = AuditTally(catalogue, PERIOD, AS_OF, GRACE)
    for when in (before, replay):
        for consumer in ("tax-levy", "psb-case"):
            audit.add(audit_event(when, ENTERPRISE, 7, consumer, checked=quality(5, 5)), 0)
    enterprise = audit.classes[ENTERPRISE]
    assert (enterprise.records, enterprise.deliveries, enterprise.calls, enterprise.quality_records) == (0, 0, 0, 0)
    assert audit.systems["tax-levy"].received == 0
    assert audit.repeats == 2
    # October's report counts them once.
    october = parse_period("2026-10")
    audit = AuditTally(catalogue, october, report_cut(october, AS_OF, GRACE), GRACE)
    for when in (before, replay):
        audit.add(audit_event(when, ENTERPRISE, 7, "tax-levy"), 0)
    assert (audit.classes[ENTERPRISE].records, audit.classes[ENTERPRISE].deliveries) == (1, 1)


def test_a_report_made_within_the_grace_after_the_period_is_not_yet_complete(catalogue: Catalogue) -> None:
    # Half an hour after November ends, the roster's last window (ending at midnight) may still be
    # released on time: a report then is not the period's final one, and must not say it is.
    now = PERIOD.end + dt.timedelta(minutes=30)
    cut = report_cut(PERIOD, now, GRACE)
    audit = AuditTally(catalogue, PERIOD, cut, GRACE)
    for event in audit_events():
        audit.add(event, 0)
    early = assemble(catalogue, "sharebus", Tallies(audit, {}, 0, tally_disputes([], PERIOD, cut)))
    assert not early.complete
    assert early.data_class(ROSTER).windows_overdue == 718  # the last window is still pending
    final = make_report(catalogue)
    assert final.complete
    assert final.data_class(ROSTER).windows_overdue == 719


def test_a_bus_begun_within_the_period_is_not_held_to_the_windows_before_it(catalogue: Catalogue) -> None:
    """Daily licence windows end at 02:00: 30 end in November. A bus whose trail begins on the 20th at
    noon could only miss the 10 that end after it (21st-30th), not the 20 before it existed."""

    def licence_row(whole: bool) -> Any:
        audit = AuditTally(catalogue, PERIOD, AS_OF, GRACE)
        audit.add(audit_event(at(20), ENTERPRISE, 0, "tax-levy"), 0)
        if whole:
            audit.read_whole()
        return next(row for row in class_rows(catalogue, audit) if row.code == LICENCES)

    older = licence_row(whole=False)  # the trail is older than what was read: every window counts
    assert (older.windows_on_time, older.windows_overdue) == (0, 30)
    began = licence_row(whole=True)
    assert (began.windows_on_time, began.windows_overdue) == (0, 10)
