"""Each registry's own id range, as it tells it (``GET /v1/metadata/id-range``), and the check of two.

A schema id means one schema on every bus only while the buses' registries hand out disjoint ranges
(``SHAREBUS_REGISTRY_FIRST_ID``). A district registry left at the default (1, the city's) hands out
the city's ids for its own schemas: the down import of a city projection is then refused, and the
district's subscribers resolve the city's id to the district's own schema. Nothing else notices, so
the follower reads both ranges on every pass and imports nothing while they overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from sharebus_federation.schemas import RegistryEnd, SchemaImportError, whole

ID_RANGE_PATH = "/v1/metadata/id-range"  # sharebus_registry.api_config


class IdRangeError(SchemaImportError):
    """The two registries' own ranges overlap, or one would not tell its range."""


@dataclass(frozen=True, slots=True)
class IdRange:
    first: int
    last: int

    def __contains__(self, schema_id: object) -> bool:
        return isinstance(schema_id, int) and self.first <= schema_id <= self.last

    def overlaps(self, other: IdRange) -> bool:
        return self.first <= other.last and other.first <= self.last

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"


def read_range(end: RegistryEnd) -> IdRange:
    """The ids ``end``'s registry hands out itself; ``IdRangeError`` when it cannot say."""
    try:
        with end.client() as client:
            response = client.get(ID_RANGE_PATH)
            response.raise_for_status()
            document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise IdRangeError(f"cannot read the id range of the registry at {end.url}: {exc}") from exc
    if not isinstance(document, dict):
        raise IdRangeError(f"the registry at {end.url} answered its id range with {str(document)[:200]}")
    first, last = document.get("first_id"), document.get("last_id")
    if not (whole(first) and whole(last) and 1 <= first <= last):
        raise IdRangeError(f"the registry at {end.url} answered its id range with {str(document)[:200]}")
    return IdRange(first, last)


def disjoint_ranges(city: RegistryEnd, district: RegistryEnd, district_code: str) -> tuple[IdRange, IdRange]:
    """Both registries' ranges; ``IdRangeError``, naming both and the setting, when they overlap."""
    city_range, district_range = read_range(city), read_range(district)
    if city_range.overlaps(district_range):
        raise IdRangeError(
            f"the schema id ranges overlap: the city's registry ({city.url}) hands out {city_range}, district "
            f"{district_code}'s ({district.url}) {district_range}; one id would mean two schemas, so nothing is "
            f"imported. Start the district's registry with its own SHAREBUS_REGISTRY_FIRST_ID "
            f"(docs/federation.md)"
        )
    return city_range, district_range


__all__ = ["ID_RANGE_PATH", "IdRange", "IdRangeError", "disjoint_ranges", "read_range"]
