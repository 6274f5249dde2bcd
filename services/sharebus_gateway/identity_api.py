"""``GET /v1/whoami``: the system and department an API key acts for (the CLI checks ``--as`` against it)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from sharebus_gateway.auth import CallerDep
from sharebus_gateway.strict_json import StrictJsonRoute

router = APIRouter(tags=["identity"], route_class=StrictJsonRoute)


class Identity(BaseModel):
    system: str
    department: str
    key_id: str


@router.get("/v1/whoami", summary="The system and department your API key acts for")
def whoami(who: CallerDep) -> Identity:
    return Identity(system=who.system, department=who.department, key_id=who.key_id)
