"""Which namespace names may share a cluster without one's rules reaching into another's names.

Principal names put a bus service's names in the same space as namespace names: namespace ``<ns>``
grants its services PREFIXED rules on ``<ns>-router-`` (Faust's internal topics), ``<ns>-<service>.``
(their readers' groups) and ``<ns>-gateway.`` (transactional ids), and its reconciler owns (and
deletes the rules on) every name under ``<ns>-<service>.`` and ``<ns>-<service>-``. A namespace
called ``<ns>-router-x`` names its topics ``<ns>-router-x.src.<class>``: the first namespace's
router could read and write them, and its reconciler would delete their rules.

So no namespace may have a bus service's name as a ``-``-separated part after its first: then no
namespace's names start with ``<other>-<service>``, whatever the other is. (Namespaces have no dot,
and a service's name is never followed by ``_`` in a prefix, so ``<ns>-router_x`` stays apart.)
"""

from __future__ import annotations

from sharebus_access.errors import NamespaceClash
from sharebus_core.principals import SERVICES


def namespace_problem(namespace: str) -> str | None:
    """Why ``namespace`` could be taken for another namespace's service names, or None when it cannot."""
    parts = namespace.split("-")
    at = next((i for i, part in enumerate(parts) if i > 0 and part in SERVICES), None)
    if at is None:
        return None
    owner, service = "-".join(parts[:at]), parts[at]
    return (
        f"namespace {namespace!r} has the bus service name {service!r} as a part: its topics and groups "
        f"would fall under the service prefixes of namespace {owner!r} ({owner}-{service}...); "
        f"choose a name without -{'/-'.join(SERVICES)} parts"
    )


def check_namespace(namespace: str) -> str:
    """``namespace`` itself, or ``NamespaceClash`` saying why no bus may run in it."""
    problem = namespace_problem(namespace)
    if problem is not None:
        raise NamespaceClash(problem)
    return namespace
