"""What MirrorMaker 2 mirrors between a district bus and the city bus, as a district's catalogue says. Pure.

Both buses use the same namespace on separate clusters, and MirrorMaker 2 runs with
``IdentityReplicationPolicy``: a mirrored topic keeps its name, so the receiving router reads it as
it reads its own (no router change). Identity names cannot tell a mirrored record from a local one,
so the two directions must never share a topic (a topic mirrored both ways would loop):

- up (district -> city): the source topics of the district's classes marked ``federate: city``;
- down (city -> district): the delivery topics of the district's systems (what the city granted them,
  already projected and masked by the city's router).

MirrorMaker 2 runs as its own principal on each cluster, ``<ns>-mm2-<peer>``. The plan's shape and
that principal's rights (``Federation``, ``CITY``) are ``sharebus_access.mirror_plan``'s, re-exported
here: the namespace's reconciler judges the principal's rules by them, and the access package must
not import this service (the federation already imports the access package to provision it).
"""

from __future__ import annotations

import re
from typing import Literal

from sharebus_access.mirror_plan import CITY, Federation
from sharebus_core.catalogue import Catalogue, ShareType
from sharebus_core.errors import SharebusError
from sharebus_core.topics import TopicNames

Direction = Literal["up", "down"]


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
