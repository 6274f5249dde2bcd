"""The one naming scheme for every topic of the bus."""

from __future__ import annotations

from dataclasses import dataclass

# The consumer name of the public: the router delivers open classes to it, projected to their fields
# that are not sensitive, and the gateway's open path serves them. A system code cannot start with "_",
# so no department's system can ever be the public.
PUBLIC_CONSUMER = "_public"


def class_slug(code: str) -> str:
    """A data class code (``301001001/000001``) as a topic-safe token (``301001001.000001``)."""
    return code.replace("/", ".")


@dataclass(frozen=True, slots=True)
class TopicNames:
    namespace: str = "sharebus"

    def source(self, class_code: str) -> str:
        """Where the provider publishes records of one data class."""
        return f"{self.namespace}.src.{class_slug(class_code)}"

    def delivery(self, system_code: str) -> str:
        """Where one consumer system receives everything it is entitled to."""
        return f"{self.namespace}.dlv.{system_code}"

    @property
    def public(self) -> str:
        """Open classes for the public, without their sensitive fields (the gateway's /open/v1)."""
        return self.delivery(PUBLIC_CONSUMER)

    @property
    def schemas(self) -> str:
        """The schema registry's log (compacted)."""
        return f"{self.namespace}._schemas"

    @property
    def dead_letter(self) -> str:
        return f"{self.namespace}.dlq"

    @property
    def grants(self) -> str:
        """Grant events, keyed by grant id (compacted)."""
        return f"{self.namespace}.grants"

    @property
    def api_keys(self) -> str:
        """Gateway API keys (hashes only), keyed by key id (compacted)."""
        return f"{self.namespace}.apikeys"

    @property
    def audit_facts(self) -> str:
        """The router's decisions per record, before the auditor chains them."""
        return f"{self.namespace}.audit.facts"

    @property
    def audit(self) -> str:
        """The hash-chained audit trail: one event per delivery or denial."""
        return f"{self.namespace}.audit"

    @property
    def audit_anchors(self) -> str:
        """The auditor's signed chain heads (partition, offset, hash), against truncation and re-chaining."""
        return f"{self.namespace}.audit.anchors"

    @property
    def held(self) -> str:
        """Records of periodic classes waiting for their release, keyed by class code, with release markers."""
        return f"{self.namespace}.held"

    @property
    def backfill(self) -> str:
        """Backfill requests and their outcomes, keyed by request id."""
        return f"{self.namespace}.backfill"

    @property
    def handover(self) -> str:
        """Per (consumer, class, basis): the source offsets where live delivery began (compacted)."""
        return f"{self.namespace}.handover"

    @property
    def disputes(self) -> str:
        """Dispute events (opened, refused, answered, corrected, rejected, overdue), keyed by dispute id."""
        return f"{self.namespace}.disputes"

    @property
    def auditor_app_id(self) -> str:
        return f"{self.namespace}-auditor"

    @property
    def router_app_id(self) -> str:
        """The router's group on the source topics (its data path): their committed offsets are its progress."""
        return f"{self.namespace}-router"

    @property
    def router_faust_id(self) -> str:
        """The Faust app of the router's control side (periods table, control agents); its topics' prefix."""
        return f"{self.namespace}-router-faust"

    def projection_subject(self, consumer: str, class_code: str) -> str:
        """Registry subject of the schema a consumer receives a class in (its granted fields)."""
        return f"{self.delivery(consumer)}.{class_slug(class_code)}-value"

    def value_subject(self, class_code: str) -> str:
        """Registry subject of a class's schema (Confluent TopicNameStrategy on its source topic)."""
        return f"{self.source(class_code)}-value"
