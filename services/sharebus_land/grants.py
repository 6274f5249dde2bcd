"""Which of the system's grants have ended, as the gateway tells the system (with its own API key).

A system may read no control topic, so the sink asks the gateway, as the department's own CLI
does. A class counts as ended when the system had a grant for it that is now revoked or expired,
and no grant for it is active. Unconditional classes need no grant and never end here.
"""

from __future__ import annotations

from collections import defaultdict

import httpx
from pydantic import SecretStr

from sharebus_land.errors import LandError

ENDED = {"revoked", "expired"}


class GrantWatch:
    def __init__(self, gateway_url: str, api_key: SecretStr, system: str) -> None:
        self.system = system
        self._client = httpx.Client(
            base_url=gateway_url, headers={"Authorization": f"Bearer {api_key.get_secret_value()}"}, timeout=10
        )

    def ended_classes(self) -> tuple[set[str], set[str]]:
        """(classes whose grants ended, classes with an active grant) for this system."""
        try:
            response = self._client.get("/v1/grants")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise LandError(f"the gateway did not list {self.system}'s grants: {exc}") from exc
        states: dict[str, set[str]] = defaultdict(set)
        for view in response.json():
            grant = view["grant"]
            if grant["consumer"] == self.system:
                states[grant["data_class"]].add(view["effective_state"])
        active = {code for code, seen in states.items() if "approved" in seen}
        ended = {code for code, seen in states.items() if seen & ENDED} - active
        return ended, active

    def close(self) -> None:
        self._client.close()
