"""The portal's parts without pages: accounts, sessions, the sign-in limit, the metrics it reads."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest

from sharebus_cli.main import main
from sharebus_core.catalogue import load_catalogue
from sharebus_core.grants import GrantState
from sharebus_portal.accounts import AccountError, AccountStore, Role, new_account
from sharebus_portal.disputes import DisputeView
from sharebus_portal.grant_view import GrantView
from sharebus_portal.observed import growing_lag, overdue_providers, provided
from sharebus_portal.sessions import SessionStore, SignInLimiter, csrf_ok
from tests.support.portal import add_officials
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.test_grant_workflow import application


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_accounts_keep_argon2_hashes_only_and_refuse_unknown_departments_and_short_passwords(tmp_path: Path) -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    store = add_officials(catalogue, tmp_path / "portal" / "accounts.json")
    assert store.verify("tax.requester", "correct horse battery") is not None
    assert store.verify("tax.requester", "wrong horse battery") is None
    assert store.verify("nobody", "correct horse battery") is None
    with pytest.raises(AccountError, match="unknown department"):
        new_account(catalogue, "x.y", "NOPE", [Role.REQUESTER], "a long enough password")
    with pytest.raises(AccountError, match="at least 12"):
        new_account(catalogue, "x.y", "TAX", [Role.REQUESTER], "short")
    # Another process (the operator's CLI) removes an account: the portal's store sees it at once.
    assert AccountStore(store.path).remove("tax.requester")
    assert store.get("tax.requester") is None


def test_sessions_end_when_idle_or_old_and_carry_their_own_csrf_token(tmp_path: Path) -> None:
    account = add_officials(load_catalogue(FIXTURE_CATALOGUE), tmp_path / "a.json").get("tax.requester")
    assert account is not None
    clock = FakeClock()
    sessions = SessionStore(ttl_s=100, idle_s=30, now=clock)
    first, session = sessions.start(account)
    second, other = sessions.start(account)
    assert csrf_ok(session, session.csrf_token)
    assert not csrf_ok(session, other.csrf_token)
    assert not csrf_ok(session, None)
    clock.t += 20
    assert sessions.get(first) is session
    clock.t += 25  # 25 s since the last request: still within the idle limit
    assert sessions.get(first) is session
    assert sessions.get(second) is None  # 45 s idle
    clock.t += 60
    assert sessions.get(first) is None  # older than the ttl
    assert sessions.get("made-up") is None


def test_the_sign_in_limit_locks_a_name_and_an_address_out_for_the_window() -> None:
    clock = FakeClock()
    limiter = SignInLimiter(max_failures=3, window_s=60, now=clock)
    for _ in range(3):
        assert limiter.retry_after("user:a", "client:1") == 0
        limiter.failed("user:a", "client:1")
    assert limiter.retry_after("user:a", "client:2") == pytest.approx(60)
    assert limiter.retry_after("user:b", "client:1") == pytest.approx(60)
    assert limiter.retry_after("user:b", "client:2") == 0
    clock.t += 61
    assert limiter.retry_after("user:a", "client:1") == 0


def test_figures_come_from_the_router_and_monitor_metrics() -> None:
    samples = {
        "sharebus_calls_total": [
            ({"provider": "AMR", "consumer": "tax-levy", "data_class": "c1"}, 5.0),
            ({"provider": "AMR", "consumer": "psb-case", "data_class": "c1"}, 0.0),
            ({"provider": "TAX", "consumer": "x", "data_class": "c9"}, 7.0),
        ],
        "sharebus_records_total": [({"provider": "AMR", "consumer": "tax-levy", "data_class": "c1"}, 50.0)],
        "sharebus_dead_letters_total": [({"data_class": "c1", "reason": "bad_bytes"}, 2.0)],
        "sharebus_freshness_age_seconds": [({"provider": "AMR", "data_class": "c1", "mode": "realtime"}, 12.0)],
        "sharebus_freshness_overdue": [({"provider": "AMR", "data_class": "c1", "mode": "realtime"}, 1.0)],
        "sharebus_consumer_lag_records": [({"group": "g", "topic": "t"}, 40.0)],
        "sharebus_consumer_lag_growing": [({"group": "g", "topic": "t"}, 1.0), ({"group": "h", "topic": "t"}, 0.0)],
    }
    figures = provided(samples, "AMR", ["c1", "c2"])
    c1 = figures["c1"]
    assert (c1.calls, c1.records, c1.dead_letters, c1.consumers, c1.age_s, c1.overdue) == (
        5.0,
        50.0,
        2.0,
        {"tax-levy"},
        12.0,
        True,
    )
    assert figures["c2"].calls == 0
    assert figures["c2"].age_s is None
    assert overdue_providers(samples) == [{"provider": "AMR", "data_class": "c1", "mode": "realtime"}]
    assert growing_lag(samples) == [{"group": "g", "topic": "t", "lag": "40"}]


def test_the_grant_view_shows_a_department_only_what_it_provides_or_consumes() -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    view = GrantView(catalogue)
    grant = application(catalogue)
    view.put(grant)
    view.put(grant)  # the follower brings what the portal already put
    assert [g.grant_id for g in view.visible("TAX")] == [grant.grant_id]
    assert [g.grant_id for g in view.visible("AMR")] == [grant.grant_id]
    assert view.visible("PSB") == []
    assert view.get(grant.grant_id, "PSB") is None
    assert view.get(grant.grant_id, None) == grant
    assert len(view.history(grant.grant_id)) == 1
    view.close(grant.grant_id)
    assert view.visible(None) == []


def test_the_grant_view_never_brings_back_a_grant_the_portal_already_saw_end() -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    view = GrantView(catalogue)
    applied = application(catalogue)
    approved = applied.model_copy(update={"state": GrantState.APPROVED})
    revoked = approved.model_copy(update={"state": GrantState.REVOKED, "reason": "audit finding"})
    # The portal puts each decision it writes at once; a follower behind it brings the earlier ones later.
    for grant in (applied, approved, revoked, applied, approved):
        view.put(grant)
    assert view.get(applied.grant_id, None) == revoked
    assert [g.state for g in view.history(applied.grant_id)] == [
        GrantState.APPLIED,
        GrantState.APPROVED,
        GrantState.REVOKED,
    ]
    rejected = applied.model_copy(update={"grant_id": "g-2", "state": GrantState.REJECTED, "reason": "no basis"})
    view.put(rejected)
    view.put(rejected.model_copy(update={"state": GrantState.APPROVED}))
    assert view.get("g-2", None) == rejected


def test_the_operator_adds_lists_and_removes_accounts_with_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = tmp_path / "portal" / "accounts.json"
    monkeypatch.setenv("SHAREBUS_PORTAL_ACCOUNTS_FILE", str(accounts))
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    add = ["portal", "account", "add", "li.wei", "--department", "TAX", "--role", "requester", "--role", "approver"]
    assert main([*add, "--password-stdin"]) == 0
    assert "added li.wei" in capsys.readouterr().out
    assert main(["portal", "account", "add", "bureau", "--department", "HRSS", "--role", "operator", "--generate"]) == 0
    generated = capsys.readouterr().out.rsplit("password (shown once): ", 1)[1].strip()
    store = AccountStore(accounts)
    assert store.verify("li.wei", "a long enough password") is not None
    assert store.verify("bureau", generated) is not None
    assert "a long enough password" not in accounts.read_text()
    assert generated not in accounts.read_text()
    assert main(["portal", "account", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {"username": "bureau", "department": "HRSS", "roles": ["operator"], "display_name": None},
        {"username": "li.wei", "department": "TAX", "roles": ["requester", "approver"], "display_name": None},
    ]
    assert main(["portal", "account", "add", "x.y", "--department", "NOPE", "--role", "requester", "--generate"]) == 2
    assert "unknown department" in capsys.readouterr().err
    assert main(["portal", "account", "remove", "li.wei"]) == 0
    assert main(["portal", "account", "remove", "li.wei"]) == 4
    assert store.get("li.wei") is None


def test_dispute_events_fold_into_one_row_per_dispute_seen_by_the_two_departments() -> None:
    now = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)

    def event(kind: str, dispute_id: str, **extra: object) -> dict[str, object]:
        return {
            "type": kind,
            "dispute_id": dispute_id,
            "record_id": f"r-{dispute_id}",
            "data_class": "301001002/000001",
            "provider": "AMR",
            "consumer": "tax-levy",
            "consumer_department": "TAX",
            "fields": ["amount"],
            "reason": "amount wrong",
            "opened_at": "2026-11-20T08:00:00+00:00",
            "deadline": "2026-11-27T08:00:00+00:00" if dispute_id == "d1" else "2026-12-04T08:00:00+00:00",
            "time": "2026-11-20T08:00:00+00:00",
            "answer": None,
            "correction_record_id": None,
            "by": "x",
            **extra,
        }

    view = DisputeView(load_catalogue(FIXTURE_CATALOGUE))
    for e in (
        event("opened", "d1"),
        event("opened", "d2"),
        event("opened", "d3"),
        event("answered", "d3", answer="confirmed"),
        event("corrected", "d3", correction_record_id="r-fix"),
        event("overdue", "d3"),  # too late: a closed dispute stays closed
        {"type": "opened"},  # not contract B's shape
    ):
        view.put(e)
    rows = view.rows("TAX", now)
    assert [(r.dispute_id, r.status, r.overdue(now)) for r in rows] == [
        ("d1", "opened", True),
        ("d2", "opened", False),
        ("d3", "corrected", False),
    ]
    assert rows[2].answer == "confirmed"
    assert rows[2].correction_record_id == "r-fix"
    assert [kind for kind, _time in rows[2].history] == ["opened", "answered", "corrected"]
    assert view.rows("PSB", now) == []
    assert len(view.rows(None, now)) == 3


def test_the_portal_folds_dispute_steps_as_the_gateway_does_so_a_step_that_does_not_follow_changes_nothing() -> None:
    now = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    base = {"provider": "AMR", "consumer": "tax-levy", "consumer_department": "TAX", "record_id": "r-1"}
    view = DisputeView(load_catalogue(FIXTURE_CATALOGUE))
    for kind, extra in (
        ("opened", {"deadline": "2026-11-27T08:00:00+00:00"}),
        ("answered", {"answer": "confirmed"}),
        # Written at once by another gateway's sweep, and by a second approver: the log keeps them,
        # and ``fold`` (the gateway, the report) ignores both; so must the portal.
        ("overdue", {}),
        ("rejected", {"answer": "no error"}),
        ("opened", {}),
    ):
        view.put({**base, "type": kind, "dispute_id": "d1", "time": "t", **extra})
    view.put({**base, "type": "answered", "dispute_id": "d-never-opened", "time": "t"})
    (row,) = view.rows("AMR", now)
    # Answered before its deadline: not overdue, though its correction is still to come.
    assert (row.dispute_id, row.status, row.answer, row.overdue(now)) == ("d1", "answered", "confirmed", False)
    assert [kind for kind, _time in row.history] == ["opened", "answered"]


def test_a_refused_claim_is_the_claimants_alone_and_names_no_class_or_provider() -> None:
    now = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    # As written before the dispute service stopped copying them from another system's receipt.
    refused = {
        "type": "refused",
        "dispute_id": "d-r",
        "record_id": "r-9",
        "data_class": "301001002/000001",
        "provider": "AMR",
        "consumer": "hrss-si",
        "consumer_department": "HRSS",
        "fields": ["name"],
        "reason": "probe",
        "deadline": "2026-12-08T08:00:00+00:00",
        "time": "2026-12-01T08:00:00+00:00",
    }
    view = DisputeView(load_catalogue(FIXTURE_CATALOGUE))
    view.put(refused)
    view.put({**refused, "type": "opened", "consumer": "tax-levy", "consumer_department": "TAX"})  # never opens
    assert view.rows("AMR", now) == []  # not planted in the provider's list
    assert view.rows("TAX", now) == []
    [row] = view.rows("HRSS", now)
    assert (row.status, row.data_class, row.provider, row.record_id) == ("refused", "unknown", "unknown", "r-9")
    assert [r.dispute_id for r in view.rows(None, now)] == ["d-r"]
    # A refusal changes no dispute that was opened.
    view.put({**refused, "type": "opened", "dispute_id": "d-o", "consumer_department": "TAX"})
    view.put({**refused, "dispute_id": "d-o", "consumer_department": "TAX"})
    [opened] = view.rows("AMR", now)
    assert (opened.dispute_id, opened.status, opened.provider) == ("d-o", "opened", "AMR")
