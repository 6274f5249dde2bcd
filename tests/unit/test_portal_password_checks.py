"""The portal checks a bounded number of passwords at once: argon2id takes most of a second and tens of
MiB per check, so sign-ins sent together from many addresses (each under its own failure limit) could
otherwise take every worker thread and gigabytes of memory. Past the checks running and those queued, a
sign-in is refused at once with 503 and Retry-After, audited as a ``busy`` refusal (boundedly, like every
refusal before a check), and not counted against the account or the address."""

from __future__ import annotations

import asyncio
import threading

from fastapi import FastAPI

from sharebus_portal.accounts import Account
from sharebus_portal.password_checks import PasswordChecks, PortalBusy
from tests.support.portal import PASSWORD
from tests.unit.test_portal_signin_abuse import Client, FakeClock, facts, portal_app, refusals_counted, sign_in, state

__all__ = ["portal_app"]  # the sign-in tests' fixture: the in-memory portal, clients from chosen addresses


def test_checks_past_those_running_and_queued_are_refused_at_once_and_the_rest_run_in_turn() -> None:
    running = threading.Event()
    release = threading.Event()
    entered: list[str] = []

    def slow_check(username: str, _password: str) -> Account | None:
        entered.append(username)
        running.set()
        assert release.wait(10)
        return None

    async def scenario() -> list[object]:
        checks = PasswordChecks(concurrent=1, waiting=1)
        first = asyncio.create_task(checks.verify(slow_check, "a", "p"))
        second = asyncio.create_task(checks.verify(slow_check, "b", "p"))
        # Both tasks ran their first step while this one waited: the second is queued for its turn.
        assert await asyncio.to_thread(running.wait, 10)
        assert entered == ["a"]
        assert checks.admitted == 2
        refused: list[object] = []
        try:
            await checks.verify(slow_check, "c", "p")
        except PortalBusy as exc:
            refused.append(exc)
        release.set()
        results: list[Account | None] = list(await asyncio.gather(first, second))
        assert entered == ["a", "b"]
        assert checks.admitted == 0
        # A turn is free again: the next sign-in is checked.
        results.append(await checks.verify(lambda u, _p: None, "d", "p"))
        return [*refused, *results]

    outcome = asyncio.run(scenario())
    assert isinstance(outcome[0], PortalBusy)
    assert outcome[1:] == [None, None, None]


def test_a_busy_portal_answers_503_audits_the_refusal_and_counts_no_failure(
    portal_app: tuple[FastAPI, Client, FakeClock],
) -> None:
    app, client, _clock = portal_app
    c = client("192.0.2.7")
    portal = state(app)
    portal.checks.admitted = portal.checks.limit  # every turn taken and every queue place too
    answers = [c.post("/login", data={"username": "tax.approver", "password": PASSWORD}) for _ in range(8)]
    assert {a.status_code for a in answers} == {503}
    assert answers[0].headers["Retry-After"] == "2"
    assert "try again in a few seconds" in answers[0].text
    assert app.state.checked == []  # no password was checked
    assert [(f.decisions[0].reason, f.extra["portal_user"]) for f in facts(app)] == [("busy", "tax.approver")]
    assert refusals_counted(app, "busy") == 8
    # Not failures: once turns are free, the right password signs in at once, from the same address.
    portal.checks.admitted = 0
    assert sign_in(c, "tax.approver", PASSWORD) == 303
