"""Keeps the broker's ACLs in step with the catalogue: read, compare, create what is missing and
delete what is extra, within one namespace only (see ``sharebus_access.plan.Scope``).

Runs with the admin super user's access: only it may read and change ACLs. ``Reconciler`` runs the
check on start, when poked (a catalogue change) and on a timer, in a thread of its own, and exports
the drift it finds and how each run ended. Each run also reports the credentials the catalogue no
longer backs (``sharebus_access.stale``): it does not revoke them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Self, TypeVar

from confluent_kafka import KafkaException

# The ACL types are not re-exported by name from confluent_kafka.admin (for the type checker).
from confluent_kafka.admin._acl import AclBinding, AclBindingFilter, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType
from confluent_kafka.admin._resource import ResourceType as KafkaResourceType
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from sharebus_access.acls import AclRule, Operation, PatternType, Permission, ResourceType, desired_acls
from sharebus_access.errors import AclError, AclsUnreadable
from sharebus_access.mirrors import mirror_rights
from sharebus_access.plan import AclPlan, Scope, make_plan
from sharebus_access.scram import ScramUsers
from sharebus_access.stale import CredentialWatch
from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import ADMIN_USER

log = logging.getLogger("sharebus.access")
_T = TypeVar("_T")

CLUSTER_NAME = "kafka-cluster"
# Each ACL is one controller record, and the controller refuses an operation of more than 10,000
# ("excessively large batch operation"); a city catalogue needs tens of thousands of ACLs.
ACLS_PER_REQUEST = 2_000
# librdkafka calls Kafka's CLUSTER resource type BROKER.
_TO_KAFKA_TYPE = {
    ResourceType.TOPIC: KafkaResourceType.TOPIC,
    ResourceType.GROUP: KafkaResourceType.GROUP,
    ResourceType.TRANSACTIONAL_ID: KafkaResourceType.TRANSACTIONAL_ID,
    ResourceType.CLUSTER: KafkaResourceType.BROKER,
}
_FROM_KAFKA_TYPE = {kafka: ours for ours, kafka in _TO_KAFKA_TYPE.items()}
# None matches any name, principal and host (documented; the stubs only say str).
_EVERYTHING = AclBindingFilter(
    KafkaResourceType.ANY,
    None,  # type: ignore[arg-type]
    ResourcePatternType.ANY,
    None,  # type: ignore[arg-type]
    None,  # type: ignore[arg-type]
    AclOperation.ANY,
    AclPermissionType.ANY,
)


def to_binding(rule: AclRule) -> AclBinding:
    return AclBinding(
        _TO_KAFKA_TYPE[rule.resource_type],
        rule.resource_name,
        ResourcePatternType[rule.pattern.value],
        rule.principal,
        rule.host,
        AclOperation[rule.operation.value],
        AclPermissionType[rule.permission.value],
    )


def _exact_filter(rule: AclRule) -> AclBindingFilter:
    """A filter matching exactly this binding (never a MATCH pattern, which would reach further)."""
    b = to_binding(rule)
    return AclBindingFilter(
        b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
    )


def _name(value: Enum | str | int) -> str:
    # The binding's constructor normalises these to enums; the stubs allow the raw forms too.
    return value.name if isinstance(value, Enum) else str(value)


def from_binding(binding: AclBinding) -> AclRule | None:
    """Our form of a broker binding; None for kinds this project never writes (delegation tokens...)."""
    restype = binding.restype
    kind = _FROM_KAFKA_TYPE.get(restype) if isinstance(restype, KafkaResourceType) else None
    pattern, operation = _name(binding.resource_pattern_type), _name(binding.operation)
    permission = _name(binding.permission_type)
    known = (
        pattern in PatternType.__members__,
        operation in Operation.__members__,
        permission in Permission.__members__,
    )
    if kind is None or not all(known):
        return None
    return AclRule(
        binding.principal,
        kind,
        binding.name,
        PatternType[pattern],
        Operation[operation],
        Permission[permission],
        binding.host,
    )


class AclAdmin:
    """The broker's ACLs, read and changed with the admin access."""

    def __init__(self, access: KafkaAccess, timeout_s: float = 30.0) -> None:
        self._admin = access.admin()
        self._timeout_s = timeout_s
        self._principal = access.principal
        self._secured = access.secured

    def _check_may_describe(self) -> None:
        """Refuses a principal without DESCRIBE on the cluster.

        The broker answers such a principal's ACL listing with an empty list, not an error, and an
        empty list reads as "no ACLs": a plan would call every rule missing, and try to create them.
        """
        if not self._secured:
            return  # the plaintext debugging mode has no authorizer: the listing itself fails
        try:
            asked = self._admin.describe_cluster(include_authorized_operations=True, request_timeout=self._timeout_s)
            allowed = set(asked.result().authorized_operations or ())
        except KafkaException as exc:
            raise AclError(f"cannot ask the cluster what {self._principal} may do: {exc}") from exc
        if AclOperation.DESCRIBE not in allowed:
            raise AclsUnreadable(
                f"{self._principal} may not read the cluster's ACLs (no DESCRIBE on the cluster): "
                f"only the admin credential ({ADMIN_USER}) may read and change them"
            )

    def current(self) -> frozenset[AclRule]:
        """Every ACL of the cluster (the caller narrows it to a namespace); ``AclsUnreadable`` when not allowed."""
        self._check_may_describe()
        try:
            bindings = self._admin.describe_acls(_EVERYTHING, request_timeout=self._timeout_s).result()
        except KafkaException as exc:
            raise AclError(f"cannot read the ACLs: {exc}") from exc
        return frozenset(rule for b in bindings if (rule := from_binding(b)) is not None)

    def create(self, rules: Iterable[AclRule]) -> None:
        bindings = [to_binding(rule) for rule in sorted(set(rules))]
        try:
            for chunk in chunked(bindings, ACLS_PER_REQUEST):
                futures = self._admin.create_acls(chunk, request_timeout=self._timeout_s)
                for future in futures.values():
                    future.result()
        except KafkaException as exc:
            raise AclError(f"cannot create ACLs: {exc}") from exc

    def delete(self, rules: Iterable[AclRule]) -> None:
        filters = [_exact_filter(rule) for rule in sorted(set(rules))]
        try:
            for chunk in chunked(filters, ACLS_PER_REQUEST):
                futures = self._admin.delete_acls(chunk, request_timeout=self._timeout_s)
                for future in futures.values():
                    future.result()
        except KafkaException as exc:
            raise AclError(f"cannot delete ACLs: {exc}") from exc


def chunked(items: Sequence[_T], size: int) -> Iterator[list[_T]]:
    """Consecutive slices of at most ``size`` items (none for an empty sequence)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def read_plan(admin: AclAdmin, catalogue: Catalogue, scope: Scope) -> AclPlan:
    """What the broker lacks and has too much of, for the namespace of ``scope``."""
    desired = desired_acls(catalogue, scope.namespace, scope.registry_namespace)
    return make_plan(desired, admin.current(), scope, mirror_rights(catalogue, scope.namespace))


def apply_plan(admin: AclAdmin, plan: AclPlan) -> None:
    """Creates first, then deletes: a rule being replaced is never absent in between."""
    admin.create(plan.missing)
    admin.delete(plan.extra)


def reconcile(
    admin_access: KafkaAccess, catalogue: Catalogue, namespace: str, registry_namespace: str | None = None
) -> AclPlan:
    """One pass: returns the plan it found and applied."""
    admin = AclAdmin(admin_access)
    plan = read_plan(admin, catalogue, Scope(namespace, registry_namespace))
    apply_plan(admin, plan)
    return plan


class AccessMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.drift = Gauge(
            "sharebus_acl_drift",
            "ACL rules the last check found missing or extra in the namespace (before repairing them)",
            ["kind"],
            registry=registry,
        )
        self.runs = Counter("sharebus_acl_reconcile", "ACL reconciliations by outcome", ["outcome"], registry=registry)
        self.changes = Counter(
            "sharebus_acl_changes", "ACL rules created or deleted by the reconciler", ["kind"], registry=registry
        )
        self.last_success = Gauge(
            "sharebus_acl_last_success_timestamp_seconds",
            "When the ACLs were last checked (and repaired) successfully",
            registry=registry,
        )
        for kind in ("missing", "extra"):
            self.drift.labels(kind)
        for outcome in ("in_step", "repaired", "failed"):
            self.runs.labels(outcome)
        for kind in ("created", "deleted"):
            self.changes.labels(kind)


@dataclass(frozen=True, slots=True)
class Health:
    runs: int
    last_success: float | None
    last_error: str | None
    last_error_at: float | None
    last_plan: AclPlan | None
    # Systems the catalogue no longer has whose credential still logs in, as the last success found.
    removed_credentials: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        """The last run succeeded."""
        if self.last_success is None:
            return False
        return self.last_error_at is None or self.last_success >= self.last_error_at


class Reconciler:
    """Runs ``reconcile`` on start, on ``poke()`` and every ``interval_s``, in a background thread.

    ``catalogue`` is called on every run, so a catalogue that changed on disk is picked up by the
    next run (poke it to run now). A run that fails (the broker, an invalid catalogue)
    is retried on the next tick; ``health()`` tells the last success and error.
    """

    def __init__(
        self,
        admin_access: KafkaAccess,
        catalogue: Callable[[], Catalogue],
        namespace: str,
        registry_namespace: str | None = None,
        interval_s: float = 30.0,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.admin = AclAdmin(admin_access)
        self.catalogue = catalogue
        self.scope = Scope(namespace, registry_namespace)
        self.interval_s = interval_s
        self.metrics = AccessMetrics(registry)
        self.credentials = CredentialWatch(ScramUsers(admin_access), namespace, registry)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name=f"acl-reconciler-{namespace}", daemon=True)
        self._health = Health(0, None, None, None, None)

    def run_once(self) -> AclPlan:
        """One check and repair; returns the plan found. Raises on failure (after recording it)."""
        try:
            catalogue = self.catalogue()
            plan = read_plan(self.admin, catalogue, self.scope)
            self.metrics.drift.labels("missing").set(len(plan.missing))
            self.metrics.drift.labels("extra").set(len(plan.extra))
            apply_plan(self.admin, plan)
            removed = self.credentials.check(catalogue)
        except Exception as exc:
            self.metrics.runs.labels("failed").inc()
            self._record(error=f"{type(exc).__name__}: {exc}")
            raise
        if not plan.in_step:
            log.warning("ACLs of %s drifted; repaired (%s)", self.scope.namespace, plan.summary())
            for line in plan.lines():
                log.info("acl %s", line)
        self.metrics.changes.labels("created").inc(len(plan.missing))
        self.metrics.changes.labels("deleted").inc(len(plan.extra))
        self.metrics.runs.labels("in_step" if plan.in_step else "repaired").inc()
        self.metrics.last_success.set_to_current_time()
        self._record(plan=plan, removed=removed)
        return plan

    def _record(self, plan: AclPlan | None = None, error: str | None = None, removed: tuple[str, ...] = ()) -> None:
        with self._done:
            h, now = self._health, time.time()
            if error is None:
                self._health = Health(h.runs + 1, now, h.last_error, h.last_error_at, plan, removed)
            else:
                self._health = Health(h.runs + 1, h.last_success, error, now, h.last_plan, h.removed_credentials)
            self._done.notify_all()

    def health(self) -> Health:
        with self._done:
            return self._health

    def wait_runs(self, runs: int, timeout_s: float) -> bool:
        """Waits until at least ``runs`` runs have ended (successfully or not)."""
        with self._done:
            return self._done.wait_for(lambda: self._health.runs >= runs, timeout_s)

    def poke(self) -> None:
        """Run now (e.g. the catalogue changed), without waiting for the timer."""
        self._wake.set()

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            # Cleared before the run, not after the wait: a poke that lands while a run is under way
            # (or just after the wait) always gets a run that starts after it.
            self._wake.clear()
            try:
                self.run_once()
            except Exception:
                log.exception("ACL reconciliation of %s failed; retrying in %gs", self.scope.namespace, self.interval_s)
            self._wake.wait(self.interval_s)
