"""A grant lets one consumer system receive one data class, for a purpose, with chosen fields, until it expires."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


class GrantState(StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"
    # Never stored: an approved grant past its expiry is *seen* as expired (see effective_state).
    EXPIRED = "expired"
    # Never stored: an approved automatic grant that confers nothing under the catalogue of now is *seen*
    # as lapsed (sharebus_rules.routing.shown_state, which needs the catalogue this model does not have).
    LAPSED = "lapsed"


# The states readers derive from a recorded one and the time or the catalogue, which no event may claim:
# a signed event that did would be a grant nobody can tell the recorded state of, so it is unreadable
# (and closes its grant, sharebus_core.grant_log) rather than taken as a final state the workflow never writes.
DERIVED_STATES = frozenset({GrantState.EXPIRED, GrantState.LAPSED})


class Grant(BaseModel):
    """One grant, as the latest event on the grants topic describes it (keyed by ``grant_id``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grant_id: Text
    data_class: Text
    provider: Text
    consumer: Text
    consumer_department: Text
    requester: Text
    purpose: Text
    scenario: Text
    fields: tuple[Text, ...] = Field(min_length=1)
    masked_fields: tuple[Text, ...] = ()
    state: GrantState
    # Times carry their zone: a naive one cannot be compared with the readers' clocks, and once made
    # a router unable to build any route. Such an event is now an unreadable one (see grant_log).
    applied_at: AwareDatetime
    valid_until: AwareDatetime | None = None
    decided_at: AwareDatetime | None = None
    decided_by: Text | None = None
    reason: Text | None = None
    # Set when the bus granted it by itself: unconditional classes are granted on request.
    automatic: bool = False

    @field_validator("state")
    @classmethod
    def _recorded(cls, state: GrantState) -> GrantState:
        if state in DERIVED_STATES:
            raise ValueError(f"{state.value!r} is a state readers derive, never one a grant event records")
        return state

    def effective_state(self, now: dt.datetime) -> GrantState:
        if self.state is GrantState.APPROVED and self.valid_until is not None and self.valid_until <= now:
            return GrantState.EXPIRED
        return self.state

    def is_active(self, now: dt.datetime) -> bool:
        return self.effective_state(now) is GrantState.APPROVED
