"""A grant as an ODRL 2.2 agreement: the consumer may use the class for the purpose, the fields, until expiry.

Pure, like the DCAT-AP export it sits beside: the provider department is the assigner, the consumer
system the assignee, the dataset the target. ODRL has no left operand for "which fields", so the
sharebus profile adds one (``<base>/ns/odrl#field``); masked fields are prohibitions on their
unmasked values. The fields and masks are those the router delivers under the grant now
(``sharebus_rules.conferred``), not those recorded: a field an automatic grant gave that is sensitive
now, or one the class's schema no longer has, is no part of the agreement; a grant nothing is
delivered under now is no agreement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sharebus_core.catalogue import Catalogue
from sharebus_core.grants import Grant
from sharebus_rules.conferred import Conferred, conferred_in
from sharebus_rules.dcat import CONTEXT, Addresses


def profile(at: Addresses) -> str:
    return at.iri("ns", "odrl")


def _constraint(left: str, operator: str, right: Any) -> dict[str, Any]:
    return {"odrl:leftOperand": {"@id": left}, "odrl:operator": {"@id": operator}, "odrl:rightOperand": right}


def grant_policy(grant: Grant, conferred: Conferred, at: Addresses) -> dict[str, Any]:
    """One grant as an odrl:Agreement node, with what it ``conferred`` now."""
    target = {"@id": at.dataset(grant.data_class)}
    assigner = {"@id": at.department(grant.provider)}
    assignee = {"@id": at.system(grant.consumer)}
    field_term = f"{profile(at)}#field"
    constraints = [
        _constraint("odrl:purpose", "odrl:eq", grant.purpose),
        _constraint(field_term, "odrl:isAnyOf", [{"@value": f} for f in conferred.fields]),
    ]
    if grant.valid_until is not None:
        until = {"@value": grant.valid_until.isoformat(), "@type": "xsd:dateTime"}
        constraints.append(_constraint("odrl:dateTime", "odrl:lteq", until))
    policy: dict[str, Any] = {
        "@id": at.iri("id", "grants", grant.grant_id),
        "@type": "odrl:Agreement",
        "odrl:uid": {"@id": at.iri("id", "grants", grant.grant_id)},
        "odrl:profile": {"@id": profile(at)},
        "odrl:permission": [
            {
                "odrl:target": target,
                "odrl:assigner": assigner,
                "odrl:assignee": assignee,
                "odrl:action": {"@id": "odrl:use"},
                "odrl:constraint": constraints,
            }
        ],
    }
    if conferred.masked:
        # Each masked field: delivered masked, so its unmasked value may not be used (nor rebuilt).
        policy["odrl:prohibition"] = [
            {
                "odrl:target": target,
                "odrl:assigner": assigner,
                "odrl:assignee": assignee,
                "odrl:action": {"@id": "odrl:use"},
                "odrl:constraint": [_constraint(f"{profile(at)}#unmaskedField", "odrl:eq", field)],
            }
            for field in conferred.masked
        ]
    return policy


def grant_policies(grants: Iterable[Grant], catalogue: Catalogue, now: dt.datetime, at: Addresses) -> dict[str, Any]:
    """The grants the router delivers under at ``now`` (under ``catalogue``, the bus's of now) as one JSON-LD
    document of ODRL agreements."""
    graph = []
    for grant in grants:
        conferred = conferred_in(grant, catalogue, now)
        if conferred is not None:
            graph.append(grant_policy(grant, conferred, at))
    return {"@context": dict(CONTEXT), "@graph": graph}
