"""The grant workflow as a service over the grants log: what the CLI (and later the gateway) call."""

from sharebus_grants.followed import FollowedGrants, GrantViewUnavailable
from sharebus_grants.service import (
    GrantNotFound,
    GrantService,
    GrantSource,
    GrantsSettings,
    visible_to,
    with_current_parties,
)

__all__ = [
    "FollowedGrants",
    "GrantNotFound",
    "GrantService",
    "GrantSource",
    "GrantViewUnavailable",
    "GrantsSettings",
    "visible_to",
    "with_current_parties",
]
