"""The ACLs of a namespace as a pure function of the catalogue. No Kafka here.

Kafka denies by default (``StandardAuthorizer``, ``allow.everyone.if.no.acl.found=false``), so
these rules are everything anyone but the admin super user may do. Every rule is ALLOW, host ``*``.
``<ns>`` is the namespace, ``<regns>`` the schema registry's (the same unless the registry is shared).

Systems (principal ``User:<ns>.<system>``), one per catalogue system:

- a provider WRITEs and DESCRIBEs the source topic (``<ns>.src.<class>``, literal) of each class
  whose ``system`` it is, and no other;
- every system READs and DESCRIBEs its own delivery topic (``<ns>.dlv.<system>``, literal): every
  system has one, and a grant can make any system a consumer, subscribed or not;
- every system READs (and DESCRIBEs) the consumer groups under ``<ns>.<system>.`` (prefixed);
- nothing else: no control topic (grants, API keys, hand-over, backfill, held, audit facts, audit,
  anchors, disputes, the registry's log), no other source or delivery topic, no dead letters, no other group.

Bus services (principal ``User:<ns>-<service>``): ``SERVICE_TABLE`` below is the whole table, one
row per resource, and ``docs/security.md`` shows it rendered (``service_table_markdown``; a unit
test keeps the two equal). In short:

- router: reads the sources, grants, held, hand-over and backfill topics; writes the deliveries,
  dead letters, held, hand-over, backfill and audit facts; creates the topics it provisions today
  (the catalogue's, its own, grants, the audit topics); Faust's internal topics ``<ns>-router-*``;
  its groups ``<ns>-router`` (the data path) and ``<ns>-router-faust``;
- auditor: reads the audit facts, writes the audit trail in transactions (transactional id and
  group ``<ns>-auditor``), writes the anchors;
- gateway: writes the sources (publishes for the systems it authenticated), reads the deliveries
  (feeds, batches), reads and writes grants and API keys, writes audit facts and backfill requests;
  reads the audit trail (its index of who received which record, for disputes) and reads and writes
  the disputes;
- monitor: DESCRIBEs the source, delivery and facts topics and the router's, auditor's and systems' groups (lag);
- operator (the bureau's CLI): reads dead letters, the audit trail and its anchors, reads and
  writes grants, API keys and backfill requests, reads the sources (freshness) and writes them
  (dead-letter replay), reads the disputes (escalations and the assessment report);
- portal (the department portal): reads and writes grants, reads the deliveries (live preview of
  the signed-in department's systems), writes audit facts, reads the audit trail and its anchors
  (chain status, the assessment) and the disputes;
- registry: its own log ``<regns>._schemas``.

Each service also READs the groups under ``<ns>-<service>.`` (its readers' private groups,
``KafkaAccess.private_group``). Services use PREFIXED rules over a family of the namespace's topics
(``<ns>.src.``, ``<ns>.dlv.``) so that their rules do not grow with the catalogue; systems get
LITERAL rules, so that theirs name exactly their classes. A namespace with a service's name as a
part (``<other>-router-x``) is refused (``sharebus_access.namespaces``): those prefixes would cover it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from sharebus_access.namespaces import check_namespace
from sharebus_core.catalogue import Catalogue
from sharebus_core.principals import SERVICES, Principals, Service
from sharebus_core.topics import TopicNames


class ResourceType(StrEnum):
    TOPIC = "TOPIC"
    GROUP = "GROUP"
    TRANSACTIONAL_ID = "TRANSACTIONAL_ID"
    CLUSTER = "CLUSTER"


class PatternType(StrEnum):
    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


class Operation(StrEnum):
    """Kafka's ACL operations (all of them, so any binding read from the broker has a name here)."""

    ALL = "ALL"
    READ = "READ"
    WRITE = "WRITE"
    CREATE = "CREATE"
    DELETE = "DELETE"
    ALTER = "ALTER"
    DESCRIBE = "DESCRIBE"
    CLUSTER_ACTION = "CLUSTER_ACTION"
    DESCRIBE_CONFIGS = "DESCRIBE_CONFIGS"
    ALTER_CONFIGS = "ALTER_CONFIGS"
    IDEMPOTENT_WRITE = "IDEMPOTENT_WRITE"


class Permission(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"


@dataclass(frozen=True, order=True, slots=True)
class AclRule:
    """One ACL binding. Ordered by principal, then resource, so listings group by who."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern: PatternType
    operation: Operation
    permission: Permission = Permission.ALLOW
    host: str = "*"

    @property
    def username(self) -> str:
        return self.principal.removeprefix("User:")

    def __str__(self) -> str:
        where = "" if self.host == "*" else f" from {self.host}"
        return (
            f"{self.principal} {self.permission.value} {self.operation.value} "
            f"{self.resource_type.value}:{self.pattern.value}:{self.resource_name}{where}"
        )


READ, WRITE, CREATE, DESCRIBE = Operation.READ, Operation.WRITE, Operation.CREATE, Operation.DESCRIBE
TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
LITERAL, PREFIXED = PatternType.LITERAL, PatternType.PREFIXED
# READ implies DESCRIBE in Kafka; it is said out loud so a listing shows every right a principal has.
READS = (READ, DESCRIBE)
WRITES = (WRITE, DESCRIBE)
READS_WRITES = (READ, WRITE, DESCRIBE)


def anchors_topic(topics: TopicNames) -> str:
    """The auditor's signed chain-head anchors."""
    return topics.audit_anchors


@dataclass(frozen=True, slots=True)
class Need:
    """One row of the service table: what a service may do on one resource, and why."""

    service: Service
    resource_type: ResourceType
    name: str
    pattern: PatternType
    operations: tuple[Operation, ...]
    why: str


def _router(t: TopicNames, own: str) -> list[Need]:
    def need(name: str, ops: tuple[Operation, ...], why: str, pattern: PatternType = LITERAL) -> Need:
        return Need("router", TOPIC, name, pattern, ops, why)

    return [
        need(t.source(""), (*READS, CREATE), "routes every source topic; creates the catalogue's", PREFIXED),
        need(
            t.delivery(""),
            (*WRITES, CREATE),
            "delivers to each system and to the public (<ns>.dlv._public); creates the delivery topics",
            PREFIXED,
        ),
        need(t.dead_letter, (*WRITES, CREATE), "dead letters"),
        need(t.held, (*READS_WRITES, CREATE), "holds periodic records and reads windows back"),
        need(t.handover, (*READS_WRITES, CREATE), "hand-over points of live delivery"),
        need(t.backfill, (*READS_WRITES, CREATE), "serves backfill requests and logs their outcome"),
        need(t.grants, (*READS, CREATE), "follows the grants (creates the topic if first)"),
        need(t.audit_facts, (*WRITES, CREATE), "one decision fact per record"),
        need(t.audit, (CREATE,), "provisions the audit topics with the catalogue's; never reads them"),
        need(anchors_topic(t), (CREATE,), "provisions the anchors topic with the audit topics; never reads it"),
        need(f"{own}-", (*READS_WRITES, CREATE), "Faust's internal topics (the `periods` changelog)", PREFIXED),
        Need("router", GROUP, own, LITERAL, READS, "the data path's group on the sources; its offsets (hand-over)"),
        Need("router", GROUP, t.router_faust_id, LITERAL, READS, "Faust's group (held, backfill, control topics)"),
    ]


def _auditor(t: TopicNames, own: str) -> list[Need]:
    return [
        Need("auditor", TOPIC, t.audit_facts, LITERAL, (*READS, CREATE), "chains the decision facts"),
        Need("auditor", TOPIC, t.audit, LITERAL, (*READS_WRITES, CREATE), "the audit trail (chain heads read back)"),
        Need("auditor", TOPIC, anchors_topic(t), LITERAL, (*READS_WRITES, CREATE), "signed chain-head anchors"),
        Need("auditor", GROUP, own, LITERAL, READS, "its group; offsets committed in the transaction"),
        Need("auditor", ResourceType.TRANSACTIONAL_ID, own, LITERAL, WRITES, "events and offsets in one transaction"),
    ]


def _gateway(t: TopicNames, own: str) -> list[Need]:
    def need(name: str, ops: tuple[Operation, ...], why: str, pattern: PatternType = LITERAL) -> Need:
        return Need("gateway", TOPIC, name, pattern, ops, why)

    return [
        need(t.source(""), WRITES, "publishes for the system whose API key it checked", PREFIXED),
        need(
            t.delivery(""),
            READS,
            "feeds and batches of the system whose API key it checked; follows <ns>.dlv._public for /open/v1",
            PREFIXED,
        ),
        need(t.grants, (*READS_WRITES, CREATE), "the grant workflow over HTTP"),
        need(t.api_keys, (*READS_WRITES, CREATE), "follows the API keys (and creates their topic)"),
        need(t.audit_facts, (*WRITES, CREATE), "refused requests, as facts for the auditor"),
        need(t.audit, (*READS, CREATE), "indexes who received which record (disputes); provisions the audit topics"),
        need(anchors_topic(t), (CREATE,), "provisions the anchors topic with the audit topics; never reads it"),
        need(t.backfill, READS_WRITES, "backfill requests and their outcomes"),
        need(t.disputes, (*READS_WRITES, CREATE), "the dispute workflow over HTTP; follows the disputes"),
        Need(
            "gateway",
            ResourceType.TRANSACTIONAL_ID,
            f"{own}.",
            PREFIXED,
            WRITES,
            "one Kafka transaction per publish request (a batch is all or nothing)",
        ),
    ]


def _monitor(t: TopicNames, p: Principals) -> list[Need]:
    return [
        Need("monitor", TOPIC, t.source(""), PREFIXED, (DESCRIBE,), "end offsets of the source topics (lag)"),
        Need("monitor", TOPIC, t.delivery(""), PREFIXED, (DESCRIBE,), "end offsets of the delivery topics (lag)"),
        Need("monitor", GROUP, t.router_app_id, LITERAL, (DESCRIBE,), "the router's committed offsets (lag)"),
        Need("monitor", TOPIC, t.audit_facts, LITERAL, (DESCRIBE,), "end offsets of the facts topic (auditor lag)"),
        Need("monitor", GROUP, t.auditor_app_id, LITERAL, (DESCRIBE,), "the auditor's committed offsets (lag)"),
        Need("monitor", GROUP, f"{p.namespace}.", PREFIXED, (DESCRIBE,), "the systems' committed offsets (lag)"),
    ]


def _operator(t: TopicNames) -> list[Need]:
    def need(name: str, ops: tuple[Operation, ...], why: str, pattern: PatternType = LITERAL) -> Need:
        return Need("operator", TOPIC, name, pattern, ops, why)

    return [
        need(t.source(""), READS_WRITES, "`freshness` reads the newest records; `dlq replay` re-publishes", PREFIXED),
        need(t.dead_letter, READS, "`dlq list` and `dlq replay`"),
        need(t.audit, READS, "`audit verify`, `audit who`, `report`"),
        need(anchors_topic(t), READS, "`audit verify` checks the signed anchors"),
        need(t.grants, (*READS_WRITES, CREATE), "`grant`; `report` counts the applications answered in time"),
        need(t.api_keys, (*READS_WRITES, CREATE), "`apikey`"),
        need(t.backfill, READS_WRITES, "`backfill request` and `backfill list`"),
        need(t.disputes, READS, "`dispute overdue` (the bureau's escalations); `report` counts the disputes"),
    ]


def _portal(t: TopicNames) -> list[Need]:
    def need(name: str, ops: tuple[Operation, ...], why: str, pattern: PatternType = LITERAL) -> Need:
        return Need("portal", TOPIC, name, pattern, ops, why)

    return [
        need(t.grants, (*READS_WRITES, CREATE), "the grant workflow for signed-in officials (follows the grants)"),
        need(t.delivery(""), READS, "the live preview of the signed-in department's own systems' feeds", PREFIXED),
        need(t.audit_facts, WRITES, "refused pages and failed sign-ins, as facts for the auditor"),
        need(t.audit, READS, "the bureau page's audit chain status (checked in the background)"),
        need(anchors_topic(t), READS, "the audit chain status checks the signed anchors"),
        need(t.disputes, (*READS, CREATE), "the disputes page follows the disputes; the assessment counts them"),
    ]


def _registry(regns: str) -> list[Need]:
    topic = TopicNames(regns).schemas
    ops = (*READS_WRITES, CREATE, Operation.DESCRIBE_CONFIGS)
    return [Need("registry", TOPIC, topic, LITERAL, ops, "its log: every schema, subject and config")]


def service_needs(namespace: str, registry_namespace: str | None = None) -> tuple[Need, ...]:
    """The service table: every row, service by service (in ``SERVICES`` order).

    ``NamespaceClash`` for a namespace whose names another namespace's service prefixes would cover.
    """
    regns = check_namespace(registry_namespace or namespace)
    check_namespace(namespace)
    t, p = TopicNames(namespace), Principals(namespace)
    rows: dict[Service, list[Need]] = {
        "registry": _registry(regns),
        "router": _router(t, p.service("router")),
        "auditor": _auditor(t, p.service("auditor")),
        "gateway": _gateway(t, p.service("gateway")),
        "monitor": _monitor(t, p),
        "operator": _operator(t),
        "portal": _portal(t),
    }
    needs: list[Need] = []
    for service in SERVICES:
        own = Principals(regns if service == "registry" else namespace).service(service)
        needs += [*rows[service], Need(service, GROUP, f"{own}.", PREFIXED, READS, "its readers' own groups")]
    return tuple(needs)


def _principal_of(need: Need, namespace: str, registry_namespace: str | None) -> str:
    own = Principals(registry_namespace or namespace) if need.service == "registry" else Principals(namespace)
    return f"User:{own.service(need.service)}"


def service_acls(namespace: str, registry_namespace: str | None = None) -> frozenset[AclRule]:
    return frozenset(
        AclRule(_principal_of(need, namespace, registry_namespace), need.resource_type, need.name, need.pattern, op)
        for need in service_needs(namespace, registry_namespace)
        for op in need.operations
    )


def _system_rules(catalogue: Catalogue, namespace: str, system: str) -> Iterator[AclRule]:
    t, p = TopicNames(namespace), Principals(namespace)
    principal = f"User:{p.system(system)}"
    for code, entry in catalogue.data_classes.items():
        if entry.system == system:
            for op in WRITES:
                yield AclRule(principal, TOPIC, t.source(code), LITERAL, op)
    for op in READS:
        yield AclRule(principal, TOPIC, t.delivery(system), LITERAL, op)
        yield AclRule(principal, GROUP, p.consumer_group_prefix(system), PREFIXED, op)


def system_acls(catalogue: Catalogue, namespace: str, systems: Iterable[str] | None = None) -> frozenset[AclRule]:
    """The rules of the catalogue's systems (or of ``systems`` among them)."""
    chosen = catalogue.systems if systems is None else systems
    return frozenset(rule for system in chosen for rule in _system_rules(catalogue, namespace, system))


def desired_acls(catalogue: Catalogue, namespace: str, registry_namespace: str | None = None) -> frozenset[AclRule]:
    """Every ACL of the namespace: the systems' and the bus services'. Deterministic: a set of values."""
    return system_acls(catalogue, namespace) | service_acls(namespace, registry_namespace)
