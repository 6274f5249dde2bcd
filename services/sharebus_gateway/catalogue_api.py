"""Browse the catalogue: departments, systems, data classes, schemas and share types; search by name or code.

The catalogue is the directory every department applies from, so every authenticated system sees all of it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from sharebus_core.catalogue import DataClass, Department, ShareType, UpdateMode
from sharebus_gateway.auth import CallerDep
from sharebus_gateway.publish import known_class
from sharebus_gateway.state import Gateway, gateway
from sharebus_gateway.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/catalogue", tags=["catalogue"], route_class=StrictJsonRoute)


def _department(dept: Department) -> dict[str, Any]:
    return {
        "code": dept.code,
        "name": dept.name,
        "name_zh": dept.name_zh,
        "systems": [{"code": s.code, "name": s.name} for s in dept.systems],
    }


def _class_summary(entry: DataClass) -> dict[str, Any]:
    return {
        "code": entry.code,
        "name": entry.name,
        "name_zh": entry.name_zh,
        "provider": entry.provider,
        "share_type": entry.share_type.value,
        "update_mode": entry.update.mode.value,
        "period": entry.update.period.value if entry.update.period else None,
        "open_type": entry.open_type.value,
    }


def matches(entry: DataClass, query: str) -> bool:
    """Case-insensitive substring of the code (either form), the English or the Chinese name."""
    needle = query.strip().lower()
    haystack = (entry.code, entry.code.replace("/", "."), entry.name.lower(), entry.name_zh or "")
    return any(needle in text for text in haystack)


@router.get("/departments", summary="Departments and their systems")
def departments(_who: CallerDep, gw: Annotated[Gateway, Depends(gateway)]) -> list[dict[str, Any]]:
    return [_department(d) for d in gw.catalogue.departments.values()]


@router.get("/departments/{code}", summary="One department", responses={404: {"description": "no such department"}})
def department(code: str, _who: CallerDep, gw: Annotated[Gateway, Depends(gateway)]) -> dict[str, Any]:
    dept = gw.catalogue.departments.get(code)
    if dept is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such department in the catalogue")
    return {**_department(dept), "provides": [c.code for c in gw.catalogue.classes_of(code)]}


@router.get("/share-types", summary="The share types, what each means, and how many classes have it")
def share_types(_who: CallerDep, gw: Annotated[Gateway, Depends(gateway)]) -> list[dict[str, Any]]:
    meaning = {
        ShareType.UNCONDITIONAL: "delivered to every subscriber, without the sensitive fields",
        ShareType.CONDITIONAL: "delivered only under an approved grant, with the granted fields",
        ShareType.NONE: "never shared; applications are refused with the legal basis",
    }
    return [
        {
            "share_type": t.value,
            "meaning": meaning[t],
            "classes": sum(1 for c in gw.catalogue.data_classes.values() if c.share_type is t),
        }
        for t in ShareType
    ]


@router.get("/classes", summary="Data classes, filtered and searched by name or code")
def classes(
    _who: CallerDep,
    gw: Annotated[Gateway, Depends(gateway)],
    q: Annotated[str | None, Query(max_length=200, description="part of the code or the name")] = None,
    provider: Annotated[str | None, Query(max_length=16)] = None,
    share_type: ShareType | None = None,
    update_mode: UpdateMode | None = None,
) -> list[dict[str, Any]]:
    found = gw.catalogue.data_classes.values()
    return [
        _class_summary(c)
        for c in found
        if (q is None or matches(c, q))
        and (provider is None or c.provider == provider)
        and (share_type is None or c.share_type is share_type)
        and (update_mode is None or c.update.mode is update_mode)
    ]


@router.get(
    "/classes/{class_code:path}/schema",
    summary="A data class's Avro schema, as registered",
    responses={404: {"description": "no such class"}},
)
def class_schema(class_code: str, _who: CallerDep, gw: Annotated[Gateway, Depends(gateway)]) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(gw.catalogue.schema(known_class(gw, class_code).code).text)
    return schema


@router.get(
    "/classes/{class_code:path}",
    summary="One data class: share and update policy, fields, sensitive fields, subscribers",
    responses={404: {"description": "no such class"}},
)
def data_class(class_code: str, _who: CallerDep, gw: Annotated[Gateway, Depends(gateway)]) -> dict[str, Any]:
    entry = known_class(gw, class_code)
    return {
        **_class_summary(entry),
        "abstract": entry.abstract,
        "system": entry.system,
        "key_field": entry.key_field,
        "legal_basis": entry.legal_basis,
        "share_conditions": entry.share_conditions,
        "sensitive_fields": list(entry.sensitive_fields),
        "fields": list(gw.catalogue.schema(entry.code).field_names),
        "subscribers": [s.system for s in gw.catalogue.subscriptions_of(entry.code)],
        "topic": gw.topics.source(entry.code),
    }
