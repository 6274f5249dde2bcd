"""A federation's shape: which topics MirrorMaker 2 mirrors up and down, and its principal's rights. Pure.

It lives in ``sharebus_access`` because both sides need it and the dependency must go one way: the
federation (``sharebus_federation``) provisions MirrorMaker 2's principal with the access package's
admin tools, and this namespace's reconciler (``sharebus_access.mirrors``) must judge that principal's
rules by the same shapes without importing the federation service. ``sharebus_federation.plan``
builds a ``Federation`` from a district's catalogue and re-exports these names.

MirrorMaker 2 runs as its own principal on each cluster, ``<ns>-mm2-<peer>``, whose rights are
only: read the topics it mirrors out, create and write the topics it mirrors in, and its own
Connect worker state (topics ``<ns>-mm2-<peer>.*`` and group ``<ns>-mm2-<peer>``) on that cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from sharebus_access.acls import AclRule, Operation, PatternType, ResourceType

CITY = "city"


@dataclass(frozen=True, slots=True)
class Federation:
    namespace: str
    district: str
    up: tuple[str, ...]
    down: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.district == CITY:
            raise ValueError("a district cannot be called 'city' (the city bus's alias)")
        both = set(self.up) & set(self.down)
        if both:
            raise ValueError(f"topics mirrored both ways would loop: {sorted(both)}")

    @property
    def clusters(self) -> tuple[str, str]:
        return (CITY, self.district)

    def peer(self, cluster: str) -> str:
        return self.district if cluster == CITY else CITY

    def user_on(self, cluster: str) -> str:
        """MirrorMaker 2's principal on ``cluster``: named after the bus it comes from."""
        return f"{self.namespace}-mm2-{self.peer(cluster)}"

    def incoming(self, cluster: str) -> tuple[str, ...]:
        return self.up if cluster == CITY else self.down

    def outgoing(self, cluster: str) -> tuple[str, ...]:
        return self.down if cluster == CITY else self.up

    def internal_topic(self, cluster: str, kind: str) -> str:
        """The Connect worker's state for the flow into ``cluster``, kept on ``cluster``."""
        return f"{self.user_on(cluster)}.{kind}"

    def flows(self) -> list[tuple[str, str]]:
        """Enabled (source, target) pairs: a direction with no topic is not started at all."""
        pairs = [(self.district, CITY)] if self.up else []
        return pairs + ([(CITY, self.district)] if self.down else [])

    def acl_rules(self, cluster: str) -> frozenset[AclRule]:
        """Every right of MirrorMaker 2's principal on ``cluster``; Kafka denies the rest."""
        principal = f"User:{self.user_on(cluster)}"

        def rule(kind: ResourceType, name: str, op: Operation, pattern: PatternType = PatternType.LITERAL) -> AclRule:
            return AclRule(principal, kind, name, pattern, op)

        topic, group = ResourceType.TOPIC, ResourceType.GROUP
        rules = {
            rule(topic, t, op)
            for t in self.outgoing(cluster)
            for op in (Operation.READ, Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS)
        }
        rules |= {
            rule(topic, t, op)
            for t in self.incoming(cluster)
            for op in (Operation.CREATE, Operation.WRITE, Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS)
        }
        own = self.user_on(cluster)
        rules |= {
            rule(topic, f"{own}.", op, PatternType.PREFIXED)
            for op in (
                Operation.CREATE,
                Operation.READ,
                Operation.WRITE,
                Operation.DESCRIBE,
                Operation.DESCRIBE_CONFIGS,
            )
        }
        # The worker's group, and the private groups of its health reader (KafkaAccess.private_group).
        rules |= {rule(group, own, op) for op in (Operation.READ, Operation.DESCRIBE)}
        rules |= {rule(group, f"{own}.", Operation.READ, PatternType.PREFIXED)}
        return frozenset(rules)


__all__ = ["CITY", "Federation"]
