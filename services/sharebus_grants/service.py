"""Reads the current grant from the log, applies one pure workflow step, and appends the result.

A short-lived caller (the CLI, the demo) reads the whole log per call. A long-running service (the
gateway) passes a ``GrantSource``, a view it follows (``sharebus_grants.followed.FollowedGrants``):
requests then answer from memory, every write waits until the view has read it back, and decisions
are taken one at a time, so each is checked against a state that holds every earlier one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

from pydantic import Field

from sharebus_core.catalogue import Catalogue
from sharebus_core.deadline_zone import deadline_zone
from sharebus_core.errors import SharebusError
from sharebus_core.grant_log import GrantLogError, read_grants, write_grant
from sharebus_core.grants import Grant, GrantState
from sharebus_core.kafka import KafkaAccess
from sharebus_core.produce import Written
from sharebus_core.settings import BusSettings, shared_config
from sharebus_core.signing import ControlKeys
from sharebus_rules import grant_workflow as workflow
from sharebus_rules.grant_workflow import GrantRefused
from sharebus_rules.parties import current_parties
from sharebus_rules.routing import shown_state

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class GrantNotFound(SharebusError, LookupError):
    pass


class GrantNotConfirmed(GrantLogError):
    """The event is on the grants log, but this service's view has not read it back in time.

    Not a failure to answer again: a caller told "unavailable" would retry, and a retried application
    is a second one. The caller is told it was recorded (``grant``, as written) and where to look. For
    a decision, the log's order settles whether it took effect (another process may have decided first);
    the grant's next read says which.
    """

    def __init__(self, grant: Grant, why: str) -> None:
        super().__init__(f"grant {grant.grant_id} was recorded on the grants log (do not send it again), but {why}")
        self.grant = grant


class GrantSource(Protocol):
    """A followed view of the grants log (``FollowedGrants``); both raise ``GrantLogError`` when it cannot answer."""

    wait_s: float

    def grants(self) -> Mapping[str, Grant]: ...
    def get(self, grant_id: str) -> Grant | None: ...
    def took(self, grant: Grant) -> bool: ...
    def written(self, at: Written) -> None: ...


def visible_to(grant: Grant, department: str) -> bool:
    """Who sees a grant: the department that provides its class and the one that consumes it (API and portal)."""
    return department in (grant.provider, grant.consumer_department)


def with_current_parties(catalogue: Catalogue, grant: Grant) -> Grant:
    """The grant with the provider and consumer department the catalogue names now.

    The new provider must be able to see and revoke the access, and the old one no longer decide on it
    (``current_parties``). Every reader that shows or decides by a grant's parties (the service, the
    portal's view) goes through here.
    """
    provider, consumer_department = current_parties(
        catalogue, grant.data_class, grant.provider, grant.consumer, grant.consumer_department
    )
    if (provider, consumer_department) == (grant.provider, grant.consumer_department):
        return grant
    return grant.model_copy(update={"provider": provider, "consumer_department": consumer_department})


class GrantsSettings(BusSettings):
    """Env prefix ``SHAREBUS_GRANTS_``. The deadline's calendar is ``BusSettings.grants_deadline_zone``
    (``SHAREBUS_GRANTS_DEADLINE_TIMEZONE``, else ``SHAREBUS_DEADLINE_TIMEZONE``), as every service reads it."""

    model_config = shared_config("SHAREBUS_GRANTS_")

    # The national measures give providers 10 working days to answer (some provinces: 5).
    answer_deadline_working_days: int = Field(default=workflow.DEFAULT_ANSWER_DEADLINE_WORKING_DAYS, ge=1)


class GrantService:
    def __init__(
        self,
        catalogue: Catalogue,
        access: KafkaAccess,
        topic: str,
        *,
        control: ControlKeys,
        clock: Clock = utc_now,
        answer_deadline_working_days: int = workflow.DEFAULT_ANSWER_DEADLINE_WORKING_DAYS,
        deadline_timezone: str | None = None,
        source: GrantSource | None = None,
    ) -> None:
        """``deadline_timezone``: None reads the setting (``BusSettings.grants_deadline_zone``), so that every
        process that builds a service (gateway, portal, demo) counts the same calendar's working days.
        ``source``: a followed view to read instead of the whole log per call (see the module)."""
        self.catalogue = catalogue
        self.access = access
        self.topic = topic
        # Reads trust only events the control plane signed; writes are signed (refused without a signer).
        self.control = control
        self.clock = clock
        self.deadline = answer_deadline_working_days
        # The calendar the deadline's working days are counted on.
        self.deadline_zone: dt.tzinfo = (
            deadline_zone(deadline_timezone) if deadline_timezone is not None else GrantsSettings().grants_deadline_zone
        )
        self.source = source
        self._deciding = threading.Lock()

    def _read(self) -> Mapping[str, Grant]:
        """Every grant's latest verified state, with the parties the log recorded."""
        if self.source is not None:
            return self.source.grants()
        return read_grants(self.access, self.topic, self.control.verifier)

    def latest(self) -> Mapping[str, Grant]:
        """Every grant's latest verified state, with the parties the log recorded (the view's, when followed)."""
        return self._read()

    @contextlib.contextmanager
    def _decision(self) -> Iterator[None]:
        """One decision at a time over a followed view: the next one reads the view after the last one's
        write (two at once on one grant would both pass the workflow's checks, and the second be answered
        as done while the log's readers keep the first)."""
        if self.source is None:
            yield
            return
        if not self._deciding.acquire(timeout=self.source.wait_s):
            raise GrantLogError(
                f"another grant decision is being recorded; none started within {self.source.wait_s:g} s"
            )
        try:
            yield
        finally:
            self._deciding.release()

    def _current(self) -> dict[str, Grant]:
        """Every grant, with its parties as the catalogue names them now (``with_current_parties``)."""
        return {grant_id: with_current_parties(self.catalogue, grant) for grant_id, grant in self._read().items()}

    def _write(self, grant: Grant) -> None:
        at = write_grant(self.access, self.topic, grant, self.control.signing())
        if self.source is None:
            return
        try:
            self.source.written(at)
        except GrantLogError as exc:
            raise GrantNotConfirmed(grant, str(exc)) from exc
        if not self.source.took(grant):
            # Another process decided first (the log's order settles it, GrantHistory): every reader keeps
            # that decision and ignores this event, so the caller must not be told this one was taken.
            # Asked of the view's history, not its latest state: a later step written after ours (the CLI
            # revoking our approval) leaves ours taken, and the caller must not be told it was refused.
            taken = self.source.get(grant.grant_id)
            now = "gone" if taken is None else taken.state.value
            raise GrantRefused(f"grant {grant.grant_id} was decided elsewhere at the same time and is {now}")

    def _check_department(self, department: str) -> None:
        if department not in self.catalogue.departments:
            raise GrantRefused(f"unknown department {department!r}")

    def _check_listed(self, grant: Grant) -> None:
        # Fail closed: a class that left the catalogue has no fields, rules or provider the bus still
        # vouches for, so no access to it is signed. Rejecting and revoking stay possible.
        if grant.data_class not in self.catalogue.data_classes:
            gone = f"data class {grant.data_class} is no longer in the catalogue"
            raise GrantRefused(f"{gone}: grant {grant.grant_id} cannot be approved")

    def _visible(self, grant: Grant, department: str) -> bool:
        return visible_to(grant, department)

    def _get(self, grant_id: str, department: str) -> Grant:
        self._check_department(department)
        grant = self._current().get(grant_id)
        # A grant another department cannot see is reported as missing, so its existence does not leak.
        if grant is None or not self._visible(grant, department):
            raise GrantNotFound(f"no grant {grant_id!r} visible to {department}")
        return grant

    def apply(
        self,
        *,
        department: str,
        requester: str,
        consumer: str,
        data_class: str,
        purpose: str,
        scenario: str,
        fields: Sequence[str] = (),
        masked_fields: Sequence[str] = (),
        valid_until: dt.datetime | None = None,
    ) -> Grant:
        self._check_department(department)
        grant = workflow.apply(
            self.catalogue,
            grant_id=f"g-{uuid.uuid4().hex[:12]}",
            acting_department=department,
            requester=requester,
            consumer=consumer,
            data_class=data_class,
            purpose=purpose,
            scenario=scenario,
            fields=fields,
            masked_fields=masked_fields,
            valid_until=valid_until,
            now=self.clock(),
        )
        self._write(grant)
        return grant

    def approve(
        self,
        grant_id: str,
        *,
        department: str,
        valid_until: dt.datetime | None = None,
        reason: str | None = None,
        fields: Sequence[str] | None = None,
        masked_fields: Sequence[str] | None = None,
        decider: str | None = None,
    ) -> Grant:
        with self._decision():
            application = self._get(grant_id, department)
            self._check_listed(application)
            grant = workflow.approve(
                application,
                acting_department=department,
                now=self.clock(),
                valid_until=valid_until,
                reason=reason,
                fields=fields,
                masked_fields=masked_fields,
                decider=decider,
            )
            self._write(grant)
        return grant

    def reject(self, grant_id: str, *, department: str, reason: str, decider: str | None = None) -> Grant:
        with self._decision():
            grant = workflow.reject(
                self._get(grant_id, department),
                acting_department=department,
                now=self.clock(),
                reason=reason,
                decider=decider,
            )
            self._write(grant)
        return grant

    def revoke(self, grant_id: str, *, department: str, reason: str) -> Grant:
        with self._decision():
            grant = workflow.revoke(
                self._get(grant_id, department), acting_department=department, now=self.clock(), reason=reason
            )
            self._write(grant)
        return grant

    def show(self, grant_id: str, *, department: str) -> Grant:
        return self._get(grant_id, department)

    def list(self, *, department: str, state: GrantState | None = None, overdue_only: bool = False) -> list[Grant]:
        """The grants a department provides or consumes, newest first; states as seen now (``shown_state``:
        an automatic grant that lapsed is ``LAPSED``, never ``APPROVED``)."""
        self._check_department(department)
        now = self.clock()
        grants = [g for g in self._current().values() if self._visible(g, department)]
        if state is not None:
            grants = [g for g in grants if shown_state(g, self.catalogue, now) is state]
        if overdue_only:
            grants = [g for g in grants if self.is_overdue(g)]
        return sorted(grants, key=lambda g: g.applied_at, reverse=True)

    def is_overdue(self, grant: Grant) -> bool:
        return workflow.is_overdue(grant, self.clock(), self.deadline, self.deadline_zone)

    def days_left(self, grant: Grant, now: dt.datetime | None = None) -> int:
        """Working days to the application's answer deadline on this service's calendar (negative once overdue)."""
        return workflow.working_days_left(grant, now or self.clock(), self.deadline, self.deadline_zone)
