"""The grant workflow as a service over the grants log: what the CLI (and later the gateway) call."""

from sharebus_grants.service import GrantNotFound, GrantService, GrantsSettings, visible_to, with_current_parties

__all__ = ["GrantNotFound", "GrantService", "GrantsSettings", "visible_to", "with_current_parties"]
