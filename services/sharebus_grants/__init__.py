"""The grant workflow as a service over the grants log: what the CLI (and later the gateway) call."""

from sharebus_grants.followed import FollowedGrants, GrantViewUnavailable
from sharebus_grants.service import (
    GrantNotConfirmed,
    GrantNotFound,
    GrantService,
    GrantSource,
    GrantsSettings,
    visible_to,
    with_current_parties,
)

__all__ = [
    "FollowedGrants",
    "GrantNotConfirmed",
    "GrantNotFound",
    "GrantService",
    "GrantSource",
    "GrantViewUnavailable",
    "GrantsSettings",
    "visible_to",
    "with_current_parties",
]
