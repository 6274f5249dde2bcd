"""The rules MirrorMaker 2's principals may keep on the namespace's cluster, as its catalogue says. Pure.

The federation (``sharebus_federation``) grants them when it starts (``provision_mirror``) and checks
them only then; the namespace's reconciler keeps those the catalogue still backs and deletes every
other rule of a ``<ns>-mm2-*`` principal as drift: a right the federation never gives (WRITE on the
grants, READ on a city system's deliveries) and one the catalogue no longer backs (a system that is no
longer the district's) do not stay. It never creates them: that stays the federation's.

The rules are ``Federation.acl_rules`` itself (``sharebus_access.mirror_plan``, the shapes the federation
grants), over the topics the catalogue gives each mirror, as the federation decides them:

- a city's catalogue (it names districts): MirrorMaker 2 of district ``d`` is ``<ns>-mm2-<d>``; it may
  write the source topics of ``d``'s federated classes (up) and read the delivery topics of ``d``'s
  systems (down): what ``check_accepted`` lets ``d``'s plan name;
- any other catalogue (a district's own, or a bus without districts: nothing in a catalogue tells them
  apart): MirrorMaker 2 of the city is ``<ns>-mm2-city``; it may read the source topics of the
  ``federate: city`` classes and write the delivery topics of every system, as ``plan_for`` gives.

A class shared with nobody is never federated (``plan_for`` refuses it), so no right on it is kept.
Any other ``<ns>-mm2-*`` principal may keep nothing.
"""

from __future__ import annotations

from sharebus_access.acls import AclRule
from sharebus_access.mirror_plan import CITY, Federation
from sharebus_core.catalogue import Catalogue, ShareType
from sharebus_core.topics import TopicNames

# The district's own code is not in its catalogue, and nothing of MirrorMaker 2's rules on a district's
# cluster names it (its principal and Connect state are named after the peer, the city).
_THIS_DISTRICT = "district"


def _city_side(catalogue: Catalogue, namespace: str, district: str) -> frozenset[AclRule]:
    topics = TopicNames(namespace)
    own = {code for code, d in catalogue.district_of_department.items() if d == district}
    up = tuple(
        sorted(
            topics.source(c.code)
            for c in catalogue.data_classes.values()
            if c.provider in own and c.share_type is not ShareType.NONE
        )
    )
    down = tuple(sorted(topics.delivery(s) for s, dept in catalogue.department_of_system.items() if dept in own))
    return Federation(namespace, district, up=up, down=down).acl_rules(CITY)


def _district_side(catalogue: Catalogue, namespace: str) -> frozenset[AclRule]:
    topics = TopicNames(namespace)
    up = tuple(topics.source(c.code) for c in catalogue.federated_up() if c.share_type is not ShareType.NONE)
    down = tuple(topics.delivery(system) for system in sorted(catalogue.systems))
    return Federation(namespace, _THIS_DISTRICT, up=up, down=down).acl_rules(_THIS_DISTRICT)


def mirror_rights(catalogue: Catalogue, namespace: str) -> frozenset[AclRule]:
    """Every rule a MirrorMaker 2 principal of ``namespace`` may keep on the cluster of ``catalogue``."""
    districts = set(catalogue.district_of_department.values())
    if not districts:
        return _district_side(catalogue, namespace)
    # A district called "city" cannot be federated (the city bus's alias): its mirror has no rights.
    return frozenset[AclRule]().union(*(_city_side(catalogue, namespace, d) for d in sorted(districts - {CITY})))


__all__ = ["mirror_rights"]
