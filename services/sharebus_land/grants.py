"""Which of the system's grants have ended, as the gateway tells the system (with its own API key).

A system may read no control topic, so the sink asks the gateway, as the department's own CLI
does. A class counts as ended when the system had a grant for it that is now revoked, expired or
lapsed, and no grant for it is active. Unconditional classes need no grant and never end here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from sharebus_land.errors import LandError

# "lapsed": an automatic grant the router no longer honours (its class is no longer unconditional).
ENDED = {"revoked", "expired", "lapsed"}


@dataclass(frozen=True, slots=True)
class GrantStanding:
    """What the gateway says of the system's grants now."""

    ended: set[str]  # classes whose grants all ended
    active: set[str]  # classes with an approved grant in force
    # The ids of the system's grants that are revoked, expired or lapsed: a delivery under another grant id was
    # made under a grant in force (the router names the grant it delivers under).
    ended_grants: set[str]


class GrantWatch:
    def __init__(self, gateway_url: str, api_key: SecretStr, system: str) -> None:
        self.system = system
        self._client = httpx.Client(
            base_url=gateway_url, headers={"Authorization": f"Bearer {api_key.get_secret_value()}"}, timeout=10
        )

    def ended_classes(self) -> GrantStanding:
        """The classes whose grants ended, those with an active grant, and the ended grants' ids."""
        try:
            response = self._client.get("/v1/grants")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise LandError(f"the gateway did not list {self.system}'s grants: {exc}") from exc
        states: dict[str, set[str]] = defaultdict(set)
        ended_grants: set[str] = set()
        try:
            for view in response.json():
                grant = view["grant"]
                if grant["consumer"] == self.system:
                    states[grant["data_class"]].add(view["effective_state"])
                    if view["effective_state"] in ENDED:
                        ended_grants.add(grant["grant_id"])
        except (ValueError, KeyError, TypeError) as exc:  # not the gateway's grant list (a proxy's page, say)
            raise LandError(f"the gateway's list of {self.system}'s grants is not one: {exc!r}") from exc
        active = {code for code, seen in states.items() if "approved" in seen}
        ended = {code for code, seen in states.items() if seen & ENDED} - active
        return GrantStanding(ended, active, ended_grants)

    def close(self) -> None:
        self._client.close()
