"""Which ACLs a namespace owns, and the difference between what is and what should be. Pure.

The reconciler deletes what is extra, so what it owns must never reach into another namespace
(tests share one broker between many). A rule is the namespace's when:

- its principal is one of the namespace's: a system (``<ns>.<system>``, namespace names have no
  dot, so no other namespace has such users) or exactly one of its services (``<ns>-<service>``);
- or its resource is: a name under ``<ns>.``, or a service's own names (``<ns>-<service>`` itself,
  or under ``<ns>-<service>.`` / ``<ns>-<service>-``);
- for a registry of another namespace, only its principal, its log and its groups;
- or its principal is one of MirrorMaker 2's (``<ns>-mm2-<peer>``): the federation grants those rules,
  and the plan keeps those the catalogue backs (``sharebus_access.mirrors``), never creating one.

Principal names put a service's names (``<ns>-router.x``) in the same space as the names of a
namespace called ``<ns>-router``: such a namespace is refused (``sharebus_access.namespaces``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sharebus_access.acls import AclRule, ResourceType
from sharebus_access.namespaces import check_namespace, mirror_user_prefix
from sharebus_core.principals import SERVICES, Principals
from sharebus_core.topics import TopicNames


def _service_names_own(name: str, user: str) -> bool:
    return name == user or name.startswith((f"{user}.", f"{user}-"))


@dataclass(frozen=True, slots=True)
class Scope:
    namespace: str
    registry_namespace: str | None = None

    def __post_init__(self) -> None:
        # Its reconciler would own, and delete the rules on, another namespace's names (namespaces.py).
        check_namespace(self.namespace)
        if self.registry_namespace is not None:
            check_namespace(self.registry_namespace)

    @property
    def service_users(self) -> frozenset[str]:
        principals = Principals(self.namespace)
        users = {principals.service(s) for s in SERVICES}
        if self.registry_namespace and self.registry_namespace != self.namespace:
            users.discard(principals.service("registry"))
        return frozenset(users)

    @property
    def registry_user(self) -> str:
        return Principals(self.registry_namespace or self.namespace).service("registry")

    def owns_principal(self, username: str) -> bool:
        return (
            username.startswith(f"{self.namespace}.")
            or username in self.service_users
            or username == self.registry_user
            or self.is_mirror(username)
        )

    def is_mirror(self, username: str) -> bool:
        """One of the namespace's MirrorMaker 2 principals (no namespace has ``-mm2-`` in its name)."""
        return username.startswith(mirror_user_prefix(self.namespace))

    def owns_resource(self, resource_type: ResourceType, name: str) -> bool:
        if resource_type is ResourceType.CLUSTER:
            return False  # one cluster for every namespace: only its principals' cluster rules are ours
        if name.startswith(f"{self.namespace}."):
            return True
        if any(_service_names_own(name, user) for user in self.service_users):
            return True
        return name == TopicNames(self.registry_namespace or self.namespace).schemas or _service_names_own(
            name, self.registry_user
        )

    def owns(self, rule: AclRule) -> bool:
        return self.owns_principal(rule.username) or self.owns_resource(rule.resource_type, rule.resource_name)


@dataclass(frozen=True, slots=True)
class AclPlan:
    """What to create (``missing``) and delete (``extra``) to bring the broker in step."""

    missing: frozenset[AclRule]
    extra: frozenset[AclRule]

    @property
    def in_step(self) -> bool:
        return not self.missing and not self.extra

    def lines(self) -> list[str]:
        """``+ rule`` for each missing rule, ``- rule`` for each extra one, in a stable order."""
        return [f"+ {rule}" for rule in sorted(self.missing)] + [f"- {rule}" for rule in sorted(self.extra)]

    def summary(self) -> str:
        if self.in_step:
            return "ACLs in step with the catalogue"
        return f"{len(self.missing)} missing, {len(self.extra)} extra"


def make_plan(
    desired: Iterable[AclRule], current: Iterable[AclRule], scope: Scope, mirrors: Iterable[AclRule] = ()
) -> AclPlan:
    """The difference within ``scope``; rules of other namespaces in ``current`` are not looked at.

    ``mirrors``: the rules MirrorMaker 2's principals may keep (``mirror_rights``): never missing (the
    federation grants them), never extra. Any other rule of such a principal is extra: none without them.
    """
    wanted = frozenset(desired)
    owned = frozenset(rule for rule in current if scope.owns(rule))
    return AclPlan(missing=wanted - owned, extra=owned - wanted - frozenset(mirrors))
