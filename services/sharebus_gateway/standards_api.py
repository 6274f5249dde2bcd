"""The catalogue and the grants in standard vocabularies: DCAT-AP for harvesters, ODRL for policy engines.

Built by the pure exports in ``sharebus_rules.dcat`` and ``sharebus_rules.odrl``; this module only
chooses the addresses and what the caller may see (every class, as in ``/v1/catalogue``; only the
grants its department provides or consumes, as in ``/v1/grants``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import JSONResponse

from sharebus_core.grant_log import GrantLogError
from sharebus_core.grants import GrantState
from sharebus_gateway.auth import CallerDep
from sharebus_gateway.settings import GatewaySettings
from sharebus_gateway.state import Gateway, gateway
from sharebus_gateway.strict_json import StrictJsonRoute
from sharebus_rules.dcat import Addresses, catalogue_dcat, choose_publisher
from sharebus_rules.odrl import grant_policies

router = APIRouter(prefix="/v1", tags=["standards"], route_class=StrictJsonRoute)
GwDep = Annotated[Gateway, Depends(gateway)]
JSON_LD = "application/ld+json"


def addresses(settings: GatewaySettings) -> Addresses:
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return Addresses(base, settings.bootstrap_servers, settings.namespace)


@router.get(
    "/catalogue.jsonld",
    summary="The catalogue as DCAT-AP 3 (JSON-LD): departments, classes, distributions",
    response_class=JSONResponse,
    responses={200: {"content": {JSON_LD: {}}}},
)
def catalogue_jsonld(_who: CallerDep, gw: GwDep) -> JSONResponse:
    settings = gw.settings
    document = catalogue_dcat(
        gw.catalogue, addresses(settings), choose_publisher(gw.catalogue, settings.catalogue_publisher)
    )
    return JSONResponse(document, media_type=JSON_LD)


@router.get(
    "/policies.jsonld",
    summary="Your department's active grants as ODRL agreements (JSON-LD)",
    response_class=JSONResponse,
    responses={200: {"content": {JSON_LD: {}}}, 503: {"description": "the grants log cannot be read now"}},
)
def policies_jsonld(who: CallerDep, gw: GwDep) -> JSONResponse:
    try:
        # Approved as shown now: neither expired nor lapsed (an automatic grant the router no longer honours).
        grants = gw.grants.list(department=who.department, state=GrantState.APPROVED)
    except GrantLogError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"the grants log cannot be read now: {exc}") from exc
    # The fields and masks the router delivers under each now (an automatic grant gives none marked
    # sensitive since), as the grant page shows them.
    document = grant_policies(grants, gw.grants.catalogue, gw.grants.clock(), addresses(gw.settings))
    return JSONResponse(document, media_type=JSON_LD)
