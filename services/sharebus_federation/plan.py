"""What MirrorMaker 2 mirrors between a district bus and the city bus, and the rights it needs. Pure.

Both buses use the same namespace on separate clusters, and MirrorMaker 2 runs with
``IdentityReplicationPolicy``: a mirrored topic keeps its name, so the receiving router reads it as
it reads its own (no router change). Identity names cannot tell a mirrored record from a local one,
so the two directions must never share a topic (a topic mirrored both ways would loop):

- up (district -> city): the source topics of the district's classes marked ``federate: city``;
- down (city -> district): the delivery topics of the district's systems (what the city granted them,
  already projected and masked by the city's router).

MirrorMaker 2 runs as its own principal on each cluster, ``<ns>-mm2-<peer>``, whose rights are
only: read the topics it mirrors out, create and write the topics it mirrors in, and its own
Connect worker state (topics ``<ns>-mm2-<peer>.*`` and group ``<ns>-mm2-<peer>``) on that cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sharebus_access.acls import AclRule, Operation, PatternType, ResourceType
from sharebus_core.catalogue import Catalogue, ShareType
from sharebus_core.errors import SharebusError
from sharebus_core.topics import TopicNames

CITY = "city"
Direction = Literal["up", "down"]
_READ_WRITE = (Operation.READ, Operation.WRITE, Operation.DESCRIBE)


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


class NotFederable(SharebusError, ValueError):
    """A district's catalogue federates a class that is shared with nobody."""


def plan_for(namespace: str, district: str, catalogue: Catalogue) -> Federation:
    """The federation of a district, from its own catalogue: its ``federate: city`` classes go up,
    and each of its systems' deliveries comes down (whatever the city grants them).

    A not-shared class goes to nobody, so it is refused: mirrored up, its records would sit on the city's
    cluster (its router denying each one), outside the district that holds their legal basis."""
    topics = TopicNames(namespace)
    unshared = sorted(c.code for c in catalogue.federated_up() if c.share_type is ShareType.NONE)
    if unshared:
        raise NotFederable(
            f"district {district} federates class(es) shared with nobody (share_type: none): {', '.join(unshared)}"
        )
    up = tuple(topics.source(c.code) for c in catalogue.federated_up())
    down = tuple(topics.delivery(system) for system in sorted(catalogue.systems))
    return Federation(namespace, district, up=up, down=down)


class NotTheDistricts(SharebusError, ValueError):
    """The district's catalogue claims a topic the city's catalogue does not give that district."""


def check_accepted(plan: Federation, city: Catalogue) -> Federation:
    """``plan`` (from the district's own catalogue), refused unless the city's catalogue gives this
    district every topic in it: up, the source topics of this district's federated classes; down, the
    delivery topics of this district's systems. The plan becomes MirrorMaker 2's rights on the city's
    cluster, so a district catalogue naming a city's (or another district's) system or class would
    otherwise read that system's deliveries or write that class's source topic as the city."""
    topics = TopicNames(plan.namespace)
    own = {code for code, district in city.district_of_department.items() if district == plan.district}
    up = {topics.source(c.code) for c in city.data_classes.values() if c.provider in own}
    down = {topics.delivery(s) for s, department in city.department_of_system.items() if department in own}
    foreign = sorted(set(plan.up) - up) + sorted(set(plan.down) - down)
    if foreign:
        raise NotTheDistricts(
            f"district {plan.district}'s catalogue names topics the city's catalogue does not give it: "
            f"{', '.join(foreign)} (a class or system of the city or of another district, or a catalogue "
            "other than the one the city's names)"
        )
    return plan


def schema_subjects(plan: Federation, direction: Direction) -> tuple[str, ...]:
    """Registry subject prefixes that travel with each direction's records (schemas.py): up, the
    federated classes' own subjects; down, the city's projections for the district's systems."""
    if direction == "up":
        return tuple(f"{topic}-value" for topic in plan.up)
    return tuple(f"{topic}." for topic in plan.down)


def topics_regex(topics: tuple[str, ...]) -> str:
    """MirrorMaker's ``topics`` is a list of regexes: each name matched exactly."""
    return ",".join(f"^{re.escape(t)}$" for t in sorted(topics))


__all__ = [
    "CITY",
    "Direction",
    "Federation",
    "NotFederable",
    "NotTheDistricts",
    "check_accepted",
    "plan_for",
    "schema_subjects",
    "topics_regex",
]
