"""Which classes the system's grants no longer bring it, from the grants the gateway lists to the system.

A system may read no control topic, so the sink asks the gateway (with the system's own API key), as the
department's own CLI does. Whether a class still reaches the system is then the router's own rule
(``sharebus_rules.routing.plan_routes``) applied to those grants and the catalogue: a class ends when the
system had a grant for it that has ended (revoked, expired or lapsed) and the router delivers it nothing
now. A class the system subscribes to and that is shared unconditionally is delivered by the subscription,
whatever becomes of a grant for it, so it never ends here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from sharebus_core.catalogue import Catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_land.errors import LandError
from sharebus_rules.routing import plan_routes, shown_state

# LAPSED: an automatic grant the router no longer honours (shown_state).
ENDED = frozenset({GrantState.REVOKED, GrantState.EXPIRED, GrantState.LAPSED})


@dataclass(frozen=True, slots=True)
class GrantStanding:
    """What the system's grants bring it now."""

    ended: set[str]  # classes it had a grant for that ended, and that the router delivers it nothing now
    active: set[str]  # classes it holds a grant for that the router delivers it now (by grant or subscription)
    # The ids of the system's grants that are revoked, expired or lapsed: a delivery under another grant id was
    # made under a grant in force (the router names the grant it delivers under).
    ended_grants: set[str]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def standing(catalogue: Catalogue, system: str, grants: Iterable[Grant], now: dt.datetime) -> GrantStanding:
    """The standing of the system's ``grants`` (others' are ignored) under ``catalogue`` at ``now``."""
    held: dict[str, list[Grant]] = defaultdict(list)
    for grant in grants:
        if grant.consumer == system:
            held[grant.data_class].append(grant)
    ended: set[str] = set()
    active: set[str] = set()
    ended_grants: set[str] = set()
    for code, of_class in held.items():
        entry = catalogue.data_classes.get(code)
        gone = {g.grant_id for g in of_class if shown_state(g, entry, now) in ENDED}
        ended_grants |= gone
        if entry is None:
            continue  # the router routes no class outside its catalogue, and the sink has no place for one
        plan = plan_routes(catalogue, code, {system: of_class}, now)
        if any(d.consumer == system for d in plan.deliveries):
            active.add(code)
        elif gone:
            ended.add(code)
    return GrantStanding(ended, active, ended_grants)


class GrantWatch:
    def __init__(
        self,
        gateway_url: str,
        api_key: SecretStr,
        system: str,
        catalogue: Catalogue,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        """``catalogue``: the catalogue the sink was started with, the router's (its classes' share types,
        subscriptions and sensitive fields decide what a grant still brings)."""
        self.system, self.catalogue, self.clock = system, catalogue, clock
        self._client = httpx.Client(
            base_url=gateway_url, headers={"Authorization": f"Bearer {api_key.get_secret_value()}"}, timeout=10
        )

    def ended_classes(self) -> GrantStanding:
        """The classes whose grants ended, those the system receives under a grant now, the ended grants' ids."""
        try:
            response = self._client.get("/v1/grants")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise LandError(f"the gateway did not list {self.system}'s grants: {exc}") from exc
        try:
            grants = [Grant.model_validate(view["grant"]) for view in response.json()]
        except (ValueError, KeyError, TypeError) as exc:  # not the gateway's grant list (a proxy's page, say)
            raise LandError(f"the gateway's list of {self.system}'s grants is not one: {exc!r}") from exc
        return standing(self.catalogue, self.system, grants, self.clock())

    def close(self) -> None:
        self._client.close()
