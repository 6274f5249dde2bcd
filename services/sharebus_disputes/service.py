"""The dispute workflow with its I/O: the delivery index proves receipt, the log records every step,
each step is audited and counted, and a sweeper escalates what is left unanswered.

Runs inside the gateway (which authenticates the caller); one instance per gateway process. Several
gateways may each write the same ``overdue`` escalation: ``fold`` keeps the first, so every reader
sees one state (the report counts distinct dispute ids).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry

from sharebus_core.audit_fact import AuditFact
from sharebus_core.catalogue import Catalogue
from sharebus_core.clock import Clock
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_disputes.audit import dispute_fact
from sharebus_disputes.deliveries import DeliveryIndex, IndexBehind, Receipt
from sharebus_disputes.log import DisputeView, ensure_dispute_topic, write_event
from sharebus_disputes.metrics import DisputeMetrics
from sharebus_disputes.settings import DisputeSettings
from sharebus_rules import disputes as rules
from sharebus_rules.disputes import Dispute, DisputeEvent, DisputeRefused, DisputeState
from sharebus_rules.parties import current_parties

log = logging.getLogger(__name__)

UNKNOWN = "unknown"


class NotReceived(SharebusError, PermissionError):
    """The caller's system never received the record; ``event`` is the ``refused`` event written."""

    def __init__(self, event: DisputeEvent) -> None:
        super().__init__(
            f"{event.consumer} did not receive record {event.record_id}: the audit trail holds no delivery of it "
            f"to {event.consumer}, and only a system that received a record may dispute it"
        )
        self.event = event


class DisputeNotFound(SharebusError, LookupError):
    pass


def with_current_parties(catalogue: Catalogue, dispute: Dispute) -> Dispute:
    """The dispute with its provider and consumer department as the catalogue names them now
    (``current_parties``): who sees it, who answers it, and what its next event records."""
    latest = dispute.latest
    provider, consumer_department = current_parties(
        catalogue, latest.data_class, latest.provider, latest.consumer, latest.consumer_department
    )
    if (provider, consumer_department) == (latest.provider, latest.consumer_department):
        return dispute
    update = {"provider": provider, "consumer_department": consumer_department}
    return dispute.model_copy(update={"latest": latest.model_copy(update=update)})


class DisputeService:
    def __init__(
        self,
        catalogue: Catalogue,
        access: KafkaAccess,
        topics: TopicNames,
        settings: DisputeSettings,
        audit: Callable[[AuditFact], None],
        registry: CollectorRegistry,
    ) -> None:
        self.catalogue = catalogue
        self.access = access
        self.topics = topics
        self.settings = settings
        self.audit = audit
        self.metrics = DisputeMetrics(registry)
        self.clock = Clock(settings.clock_skew_file)
        index_file = settings.index_dir / f"deliveries-{topics.namespace}.sqlite"
        self.index = DeliveryIndex(
            access, topics.audit, index_file, settings.index_batch, on_indexed=self.metrics.indexed.inc
        )
        self.view = DisputeView(access, topics.disputes)
        self.principal = access.username or "sharebus"
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="dispute-sweeper", daemon=True)

    def start(self) -> None:
        # Created here as a plain (not compacted) topic before the follower looks at it.
        ensure_dispute_topic(self.access, self.topics)
        self.view.follower.start()
        self.index.start()
        self._sweeper.start()

    def stop(self) -> None:
        self._stop.set()
        self._sweeper.join(timeout=10)
        self.view.follower.stop()
        self.index.stop()

    def now(self) -> dt.datetime:
        self.clock.refresh()
        return self.clock.now()

    def _current(self) -> list[Dispute]:
        """Every dispute of the view, with its parties as the catalogue names them now."""
        return [with_current_parties(self.catalogue, d) for d in self.view.all()]

    def _record(self, event: DisputeEvent) -> DisputeEvent:
        """Appends the step, audits and counts it, and folds it into this gateway's view at once."""
        write_event(self.access, self.topics.disputes, event)
        self.audit(dispute_fact(event))
        self.metrics.events.labels(event.type).inc()
        self.view.apply(event)
        return event

    def _receipts(self, record_id: str, system: str, data_class: str | None) -> list[Receipt]:
        """``system``'s own receipts of the record id (of ``data_class`` when named)."""
        return [
            r
            for r in self.index.receipts(record_id)
            if r.consumer == system and (data_class is None or r.data_class == data_class)
        ]

    def _receipt(self, record_id: str, system: str, data_class: str | None = None) -> Receipt | None:
        """``system``'s own receipt of the record, or None when the trail shows no delivery of it to ``system``.

        Record ids are unique within a class only: when ``system`` received the id in several classes,
        the claim must name the class (``DisputeRefused``), or it would be opened on another record,
        with another provider, than the one meant."""
        mine = self._receipts(record_id, system, data_class)
        if not mine:
            # Received a moment ago? Its delivery may not be chained and indexed yet: wait for the index.
            if not self.index.wait_current(self.settings.index_wait_s):
                raise IndexBehind("the index of deliveries is catching up with the audit trail; try again shortly")
            mine = self._receipts(record_id, system, data_class)
        if len(mine) > 1:
            classes = ", ".join(sorted(r.data_class or UNKNOWN for r in mine))
            raise DisputeRefused(
                f"{system} received records {record_id} of several classes ({classes}): name the class disputed"
            )
        return mine[0] if mine else None

    def open(
        self,
        *,
        system: str,
        department: str,
        record_id: str,
        fields: Sequence[str],
        reason: str,
        data_class: str | None = None,
    ) -> DisputeEvent:
        """Opens a dispute on a record ``system`` received (of ``data_class``, which an id received in
        several classes needs); raises ``NotReceived`` (after writing the ``refused`` event) when the
        audit trail shows no delivery of it to ``system``."""
        mine = self._receipt(record_id, system, data_class)
        # Only the caller's own receipt names the class and provider: taken from another system's, a
        # refused event would tell the caller what the record is and who provides it (and land in that
        # provider's list), for any record id it guesses.
        received_class = (mine.data_class if mine else None) or UNKNOWN
        known_class = received_class in self.catalogue.data_classes
        schema_fields = self.catalogue.schema(received_class).field_names if known_class else ()
        recorded = (mine.provider if mine else None) or UNKNOWN
        # The department that provides the class now answers (``with_current_parties``), and the
        # event says so from the start, so its audit fact and the report name that department too.
        provider = current_parties(self.catalogue, received_class, recorded, system, department)[0] if mine else UNKNOWN
        event = rules.open_dispute(
            dispute_id=f"d-{uuid.uuid4().hex[:12]}",
            record_id=record_id,
            data_class=received_class,
            provider=provider,
            consumer=system,
            consumer_department=department,
            fields=fields,
            reason=reason,
            schema_fields=schema_fields,
            received=mine is not None,
            now=self.now(),
            working_days=self.settings.deadline_working_days,
            tz=self.settings.deadline_zone,
        )
        self._record(event)
        if event.type == "refused":
            raise NotReceived(event)
        return event

    def visible(self, dispute_id: str, department: str) -> Dispute:
        """The dispute, if ``department`` is its provider or its consumer's; else ``DisputeNotFound``
        (so that its existence does not leak)."""
        found = self.view.get(dispute_id)
        dispute = with_current_parties(self.catalogue, found) if found is not None else None
        if dispute is None or department not in (dispute.latest.provider, dispute.latest.consumer_department):
            raise DisputeNotFound(f"no dispute {dispute_id!r} visible to {department}")
        return dispute

    def answer(self, dispute: Dispute, *, system: str, department: str, confirm: bool, text: str) -> DisputeEvent:
        event = rules.answer(
            dispute, acting_department=department, confirm=confirm, text=text, now=self.now(), by=system
        )
        return self._record(event)

    def corrected(self, dispute: Dispute, *, system: str, department: str, correction_record_id: str) -> DisputeEvent:
        event = rules.corrected(
            dispute, acting_department=department, correction_record_id=correction_record_id, now=self.now(), by=system
        )
        return self._record(event)

    def listing(
        self, department: str, *, role: str | None = None, state: DisputeState | None = None, overdue: bool = False
    ) -> list[Dispute]:
        """Disputes ``department`` provides (``role="provider"``: its inbox), raised (``"consumer"``) or
        either; newest first. ``overdue``: only those unanswered past their deadline."""
        now = self.now()
        found = []
        for d in self._current():
            as_provider = d.latest.provider == department
            as_consumer = d.latest.consumer_department == department
            if not ((role != "consumer" and as_provider) or (role != "provider" and as_consumer)):
                continue
            if (state is not None and d.state is not state) or (overdue and not d.is_past_deadline(now)):
                continue
            found.append(d)
        return sorted(found, key=lambda d: d.latest.opened_at, reverse=True)

    def sweep(self) -> list[DisputeEvent]:
        """Escalates every open dispute past its deadline (an ``overdue`` event each)."""
        now = self.now()
        written = []
        for dispute in rules.due_for_escalation(self._current(), now):
            event = rules.overdue(dispute, now=now, by=self.principal)
            if event is not None:
                written.append(self._record(event))
        disputes = self.view.all()
        self.metrics.overdue.set(sum(1 for d in disputes if d.is_past_deadline(now)))
        self.metrics.open.set(sum(1 for d in disputes if d.state in (DisputeState.OPEN, DisputeState.OVERDUE)))
        return written

    def _sweep_loop(self) -> None:
        # Only once the view holds the whole log: an answer not yet read must not look overdue.
        while not self._stop.wait(self.settings.overdue_check_s):
            if not self.view.follower.caught_up.is_set():
                continue
            try:
                self.sweep()
            except Exception:
                log.exception("dispute sweep failed; trying again in %.0f s", self.settings.overdue_check_s)
