"""MirrorMaker 2's principal and ACLs on each cluster, made with that cluster's admin."""

from __future__ import annotations

from sharebus_access.credentials import ScramUsers, new_password, wait_usable
from sharebus_access.reconcile import AclAdmin
from sharebus_core.kafka import KafkaAccess
from sharebus_federation.plan import CITY, Federation


def provision_mirror(plan: Federation, city_admin: KafkaAccess, district_admin: KafkaAccess) -> dict[str, KafkaAccess]:
    """(Re)creates the principal on both clusters with a fresh password and grants it only its rules.

    Returns the cluster alias -> MirrorMaker 2's access there. Rules of an earlier federation with
    more topics are removed, so narrowing the federation narrows the rights.
    """
    accesses: dict[str, KafkaAccess] = {}
    for cluster, admin in ((CITY, city_admin), (plan.district, district_admin)):
        user = plan.user_on(cluster)
        password = new_password()
        ScramUsers(admin).upsert({user: password})
        acls = AclAdmin(admin)
        wanted = plan.acl_rules(cluster)
        held = {rule for rule in acls.current() if rule.principal == f"User:{user}"}
        acls.create(wanted - held)
        acls.delete(held - wanted)
        access = admin.as_user(user, password)
        wait_usable(access)
        accesses[cluster] = access
    return accesses


def revoke_mirror(plan: Federation, city_admin: KafkaAccess, district_admin: KafkaAccess) -> None:
    """Removes the principal and its rules from both clusters: the federation stops at once."""
    for cluster, admin in ((CITY, city_admin), (plan.district, district_admin)):
        user = plan.user_on(cluster)
        acls = AclAdmin(admin)
        acls.delete({rule for rule in acls.current() if rule.principal == f"User:{user}"})
        ScramUsers(admin).delete(user)


__all__ = ["provision_mirror", "revoke_mirror"]
