"""A name's gate is anyone's to fill: wrong passwords sent for a principal must not lock out its right one.

Finding: eight wrong passwords kept in flight for ``sharebus-router`` filled that user's gate, and once the
router's 30 s cache entry expired its right credential was refused (429): router lookups, federation passes
and SDK clients stalled, caused by someone with no credential at all.
"""

from __future__ import annotations

import asyncio

import pytest

from sharebus_registry.auth import Authenticator, BasicCredentials, TooManyAttempts
from tests.unit.registry.test_auth import FakeBroker, FakeClock

ROUTER = "sharebus-router"
GATE = 8


async def fill_the_gate(auth: Authenticator) -> list[asyncio.Task[bool]]:
    """Wrong passwords for the router, as many as its gate holds, each one still waiting when this returns."""
    guesses = [asyncio.create_task(auth.authenticate(BasicCredentials(ROUTER, f"guess{i}"))) for i in range(GATE)]
    await asyncio.sleep(0)  # each guess runs up to its first wait: in the gate, or verifying
    with pytest.raises(TooManyAttempts):  # the gate is full: a further guess is refused unasked
        await auth.authenticate(BasicCredentials(ROUTER, "one-guess-too-many"))
    return guesses


async def stop(guesses: list[asyncio.Task[bool]]) -> None:
    for guess in guesses:
        guess.cancel()
    await asyncio.gather(*guesses, return_exceptions=True)


def test_a_right_credential_seen_before_is_not_refused_when_others_fill_its_users_gate() -> None:
    broker, clock = FakeBroker({ROUTER: "right"}), FakeClock()
    auth = Authenticator(broker, ttl_s=30, failure_delay_s=5.0, max_pending_per_user=GATE, clock=clock)

    async def scenario() -> None:
        router = BasicCredentials(ROUTER, "right")
        assert await auth.authenticate(router)
        clock.now += 31  # the router's cache entry expires while someone floods its name
        guesses = await fill_the_gate(auth)
        try:
            assert await auth.authenticate(router)  # checked with the broker again, beside the gate
            assert not any(guess.done() for guess in guesses)  # answered before the guesses' delays ran out
            assert await auth.authenticate(router)  # and cached again
        finally:
            await stop(guesses)

    asyncio.run(scenario())


def test_guesses_stay_in_the_gate_and_a_revoked_credential_seen_before_joins_them() -> None:
    broker, clock = FakeBroker({ROUTER: "right"}), FakeClock()
    auth = Authenticator(broker, ttl_s=30, failure_delay_s=5.0, max_pending_per_user=GATE, clock=clock)

    async def scenario() -> None:
        router = BasicCredentials(ROUTER, "right")
        assert await auth.authenticate(router)
        broker.passwords[ROUTER] = "rotated"
        clock.now += 31
        assert not await auth.authenticate(router)  # refused by the broker: no longer known good
        guesses = await fill_the_gate(auth)
        try:
            with pytest.raises(TooManyAttempts):  # now a guess like any other, in the full gate
                await auth.authenticate(router)
            # A credential never seen good cannot be told from a guess: it queues in the gate too.
            with pytest.raises(TooManyAttempts):
                await auth.authenticate(BasicCredentials(ROUTER, "rotated"))
        finally:
            await stop(guesses)

    asyncio.run(scenario())
