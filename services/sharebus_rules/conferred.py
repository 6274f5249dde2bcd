"""What the router delivers under a grant now, and which of its granted fields it withholds, and why.

A grant records the fields of the day it was decided; the router delivers what ``routing.decide`` gives
under today's catalogue. An automatic grant gives no field marked sensitive since (``routing._conferred``),
and no grant delivers a field the class's schema no longer has. Every reader that says what a grant lets
its consumer use (the ODRL policies, the portal's grant page) shows this, the router's own decision, so
that none promises a field the router does not deliver.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sharebus_core.catalogue import AvroSchema, Catalogue, DataClass
from sharebus_core.grants import Grant
from sharebus_rules.decision import Deliver
from sharebus_rules.routing import decide


class Withheld(StrEnum):
    """Why a granted field is not delivered now."""

    # Marked sensitive since an automatic grant gave it: the unconditional share gives no sensitive field.
    SENSITIVE = "sensitive"
    # The class's schema no longer has it.
    NOT_IN_SCHEMA = "not_in_schema"


@dataclass(frozen=True, slots=True)
class Conferred:
    """The fields delivered under a grant now (in the schema's order), those of them masked, and the
    granted fields withheld, each with its reason (in the grant's order)."""

    fields: tuple[str, ...]
    masked: tuple[str, ...]
    withheld: tuple[tuple[str, Withheld], ...]


def conferred_now(grant: Grant, entry: DataClass, schema: AvroSchema, now: dt.datetime) -> Conferred | None:
    """What the router delivers under ``grant`` at ``now`` (``entry`` and ``schema``: its class's, today);
    None when it delivers nothing under it (not approved, expired, lapsed, the class not shared)."""
    # With no subscription: what the grant itself brings, never what a subscription would deliver instead.
    decision = decide(entry, schema, None, grant, now)
    if not isinstance(decision, Deliver) or decision.grant_id != grant.grant_id:
        return None
    fields = schema.field_names if decision.fields is None else decision.fields
    masked = tuple(f for f in fields if f in decision.masked)
    withheld = tuple(
        (f, Withheld.SENSITIVE if grant.automatic and f in entry.sensitive_fields else Withheld.NOT_IN_SCHEMA)
        for f in grant.fields
        if f not in fields
    )
    return Conferred(fields, masked, withheld)


def conferred_in(grant: Grant, catalogue: Catalogue, now: dt.datetime) -> Conferred | None:
    """``conferred_now`` under ``catalogue``; None too when the grant's class is not in it (the router routes
    no class outside its catalogue)."""
    entry = catalogue.data_classes.get(grant.data_class)
    if entry is None:
        return None
    return conferred_now(grant, entry, catalogue.schema(grant.data_class), now)
