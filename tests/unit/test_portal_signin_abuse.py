"""Sign-in abuse the portal must bound: a flood of refused sign-ins grows the audit trail by a bounded
number of facts, an IPv6 host counts by its /64 as at the gateway, and a few wrong passwords from one
place do not keep an official locked out while guessing at an account stays bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from sharebus_core.audit_fact import AuditFact
from sharebus_core.catalogue import load_catalogue
from sharebus_portal.accounts import Account
from sharebus_portal.app import create_app
from sharebus_portal.sessions import SignInLimiter
from sharebus_portal.settings import PortalSettings
from sharebus_portal.signin_refusals import MANY, RefusalTally, Repeats
from sharebus_portal.state import Portal
from tests.support.portal import PASSWORD, MemoryAudit, add_officials, memory_portal

FIXTURE_CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue"
WINDOW_S = 300.0
WRONG = "not the password"
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}

Client = Callable[[str], TestClient]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def portal_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FastAPI, Client, FakeClock]]:
    """The in-memory portal with a settable clock, whose clients connect from a chosen address.

    A wrong password is refused without argon2 (a second each here): what is tested is how many are
    checked, which the stand-in records in ``checked``."""
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    add_officials(catalogue, tmp_path / "accounts.json")
    settings = PortalSettings(
        namespace="unit", catalogue_dir=FIXTURE_CATALOGUE, accounts_file=tmp_path / "accounts.json"
    )
    clock = FakeClock()
    app = create_app(settings, catalogue, build=memory_portal)
    opened: list[TestClient] = []

    def client(address: str) -> TestClient:
        c = TestClient(app, base_url="https://testserver", follow_redirects=False, client=(address, 50000))
        c.__enter__()
        opened.append(c)
        return c

    first = client("192.0.2.1")  # starts the app, so its state can be given the clock
    assert first.get("/healthz").status_code == 200
    portal = state(app)
    portal.limiter = SignInLimiter(settings.signin_max_failures, WINDOW_S, now=clock, registry=CollectorRegistry())
    verify = portal.accounts.verify
    checked: list[str] = []

    def quick_verify(username: str, password: str) -> Account | None:
        checked.append(username)
        return verify(username, password) if password == PASSWORD else None

    monkeypatch.setattr(portal.accounts, "verify", quick_verify)
    app.state.checked = checked
    yield app, client, clock
    for c in opened:
        c.__exit__(None, None, None)


def state(app: FastAPI) -> Portal:
    portal: Portal = app.state.portal
    return portal


def facts(app: FastAPI) -> list[AuditFact]:
    audit = state(app).audit
    assert isinstance(audit, MemoryAudit)
    return audit.facts


def refusals_counted(app: FastAPI, reason: str) -> float | None:
    registry = state(app).limiter.registry
    assert registry is not None
    return registry.get_sample_value("sharebus_portal_signin_refusals_total", {"reason": reason})


def sign_in(c: TestClient, username: str, password: str = WRONG, **headers: str) -> int:
    return c.post("/login", data={"username": username, "password": password}, headers=headers).status_code


def test_a_flood_of_cross_site_sign_ins_is_audited_once_then_summarised_with_its_count(
    portal_app: tuple[FastAPI, Client, FakeClock],
) -> None:
    """Unauthenticated, free to send, and the trail keeps every fact forever: one fact per refusal
    would let anyone grow the audit trail and the auditor's chain without limit."""
    app, client, clock = portal_app
    attacker = client("198.51.100.7")
    for i in range(40):
        assert sign_in(attacker, f"victim-{i}", **CROSS_SITE) == 403
    assert [(f.decisions[0].reason, f.extra["portal_user"]) for f in facts(app)] == [("cross_site", "victim-0")]
    assert refusals_counted(app, "cross_site") == 40
    # After the window, the next sign-in (anyone's) has the 39 that were only counted said in one fact.
    clock.t += WINDOW_S
    assert sign_in(client("192.0.2.50"), "tax.requester", PASSWORD) == 303
    summary = facts(app)[1:]
    assert len(summary) == 1
    assert summary[0].decisions[0].reason == "cross_site"
    assert summary[0].extra["repeats"] == 39
    assert summary[0].source["portal"]["client"] == "198.51.100.7"
    assert summary[0].extra["action"] == "portal.signin"
    # Said once: later sign-ins write nothing more.
    assert sign_in(client("192.0.2.51"), "tax.approver", PASSWORD) == 303
    assert len(facts(app)) == 2


def test_a_flood_of_locked_out_sign_ins_writes_one_bounded_set_of_facts(
    portal_app: tuple[FastAPI, Client, FakeClock],
) -> None:
    app, client, clock = portal_app
    guesser = client("198.51.100.8")
    for i in range(5):
        assert sign_in(guesser, f"name-{i}") == 401
    for i in range(50):
        assert sign_in(guesser, f"other-{i}") == 429
    reasons = [f.decisions[0].reason for f in facts(app)]
    assert reasons == ["bad_credentials"] * 5 + ["rate_limited"]
    assert refusals_counted(app, "rate_limited") == 50
    clock.t += WINDOW_S
    assert sign_in(client("192.0.2.60"), "tax.requester", PASSWORD) == 303
    assert [(f.decisions[0].reason, f.extra.get("repeats")) for f in facts(app)[6:]] == [("rate_limited", 49)]


def test_addresses_of_one_ipv6_64_share_one_sign_in_limit(portal_app: tuple[FastAPI, Client, FakeClock]) -> None:
    """One IPv6 host may use any address of its /64: counted per address, it would have unlimited
    password checks (64 MiB of argon2 each). The portal counts it by its /64, as the gateway does."""
    app, client, _clock = portal_app
    for i in range(5):
        assert sign_in(client(f"2001:db8:1:2::{i + 1:x}"), f"name-{i}") == 401
    assert sign_in(client("2001:db8:1:2:ffff:1:2:3"), "yet-another-name") == 429
    assert sign_in(client("2001:db8:1:3::1"), "a-name-elsewhere") == 401  # the next /64 is someone else
    assert app.state.checked == [f"name-{i}" for i in range(5)] + ["a-name-elsewhere"]


def test_wrong_passwords_from_one_place_do_not_lock_an_official_out(
    portal_app: tuple[FastAPI, Client, FakeClock],
) -> None:
    """Anyone who knows an approver's name could otherwise keep them locked out with five wrong passwords
    every five minutes. Guessing at the account from many places still meets a ceiling per account."""
    app, client, _clock = portal_app
    griefer = client("198.51.100.9")
    for _ in range(5):
        assert sign_in(griefer, "tax.approver") == 401
    assert sign_in(griefer, "tax.approver") == 429
    assert sign_in(client("192.0.2.70"), "tax.approver", PASSWORD) == 303
    # Ten times the per-address limit at one account from as many addresses locks the account out.
    for n in range(10):
        many = client(f"203.0.113.{n + 1}")
        for _ in range(5):
            assert sign_in(many, "amr.approver") == 401
    assert sign_in(client("192.0.2.71"), "amr.approver", PASSWORD) == 429
    assert app.state.checked.count("amr.approver") == 50


def test_refusals_from_ever_new_client_buckets_still_make_a_bounded_number_of_facts() -> None:
    """A /48 holds 65536 /64s: past the windows the tally keeps open, one more bucket's refusals count
    together with every other such bucket's, not as a fact each."""
    clock = FakeClock()
    tally = RefusalTally(60, CollectorRegistry(), now=clock, max_open=2)
    assert tally.refused("cross_site", "a", "u1")
    assert not tally.refused("cross_site", "a", "u2")
    assert tally.refused("rate_limited", "a", "u1")  # another reason, its own window
    audited = [tally.refused("cross_site", f"2001:db8:0:{n:x}::/64", "u3") for n in range(100)]
    assert audited == [True] + [False] * 99  # the first of all the buckets past the open windows
    assert tally.passed() == []  # none has passed yet
    clock.t += 60
    assert tally.passed() == [Repeats("cross_site", "a", "u1", 1, 60), Repeats("cross_site", MANY, "u3", 99, 60)]
    assert tally.passed() == []  # each said once
    assert tally.refused("cross_site", "a", "u4")  # a new window
