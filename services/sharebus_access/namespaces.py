"""Which namespace names may share a cluster without one's rules reaching into another's names.

Principal names put a bus service's names in the same space as namespace names: namespace ``<ns>``
grants its services PREFIXED rules on ``<ns>-router-`` (Faust's internal topics), ``<ns>-<service>.``
(their readers' groups) and ``<ns>-gateway.`` (transactional ids), and its reconciler owns (and
deletes the rules on) every name under ``<ns>-<service>.`` and ``<ns>-<service>-``. A namespace
called ``<ns>-router-x`` names its topics ``<ns>-router-x.src.<class>``: the first namespace's
router could read and write them, and its reconciler would delete their rules.

MirrorMaker 2 (``sharebus_federation``) is one more such name: its principal ``<ns>-mm2-<peer>``
holds PREFIXED rules on the topics and groups ``<ns>-mm2-<peer>.`` (its Connect worker's state), and
the reconciler of ``<ns>`` judges every rule of a ``<ns>-mm2-*`` principal (``sharebus_access.mirrors``).
A namespace called ``<ns>-mm2-yubei`` would be read and written by that principal (and its own
reconciler would delete the principal's rules, under its names); ``<ns>-mm2``'s service principals
(``<ns>-mm2-router``) would be taken for mirrors by the reconciler of ``<ns>`` and lose their rules.

So no namespace may have a bus service's name, or ``mm2``, as a ``-``-separated part after its
first: then no namespace's names start with ``<other>-<service>`` or ``<other>-mm2``, whatever the
other is. (Namespaces have no dot, and such a name is never followed by ``_`` in a prefix, so
``<ns>-router_x`` stays apart.)
"""

from __future__ import annotations

from sharebus_access.errors import NamespaceClash
from sharebus_core.principals import SERVICES

# The part of MirrorMaker 2's principal names, ``<ns>-mm2-<peer>`` (sharebus_access.mirror_plan).
MIRROR = "mm2"
RESERVED: tuple[str, ...] = (*SERVICES, MIRROR)


def mirror_user_prefix(namespace: str) -> str:
    """What every MirrorMaker 2 principal of ``namespace`` starts with: ``<ns>-mm2-``."""
    return f"{namespace}-{MIRROR}-"


def namespace_problem(namespace: str) -> str | None:
    """Why ``namespace`` could be taken for another namespace's service names, or None when it cannot."""
    parts = namespace.split("-")
    at = next((i for i, part in enumerate(parts) if i > 0 and part in RESERVED), None)
    if at is None:
        return None
    owner, part = "-".join(parts[:at]), parts[at]
    avoid = f"choose a name without -{'/-'.join(RESERVED)} parts"
    if part == MIRROR:
        return (
            f"namespace {namespace!r} has {MIRROR!r} (MirrorMaker 2's principals) as a part: its names would "
            f"fall under those of the MirrorMaker 2 principals of namespace {owner!r} ({owner}-{MIRROR}-<peer>.), "
            "which could read and write its topics, and each namespace's reconciler would take rules of the "
            f"other's for its own and delete them; {avoid}"
        )
    return (
        f"namespace {namespace!r} has the bus service name {part!r} as a part: its topics and groups "
        f"would fall under the service prefixes of namespace {owner!r} ({owner}-{part}...); {avoid}"
    )


def check_namespace(namespace: str) -> str:
    """``namespace`` itself, or ``NamespaceClash`` saying why no bus may run in it."""
    problem = namespace_problem(namespace)
    if problem is not None:
        raise NamespaceClash(problem)
    return namespace
