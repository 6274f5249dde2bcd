"""The catalogue as typed, frozen models: departments, systems, data classes, subscriptions."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from sharebus_core.catalogue.quality import QualityPolicy

DepartmentCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{1,15}$")]
SystemCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,40}$")]
# National catalogue guide shape: class (1) + item (2) + subitem (3) + detail (3), "/", sequence (6).
ClassCode = Annotated[str, StringConstraints(pattern=r"^[1-3]\d{8}/\d{6}$")]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
# A district's code: its MirrorMaker 2 cluster alias and its metrics label (docs/federation.md).
DistrictCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]{1,30}$")]


class ShareType(StrEnum):
    UNCONDITIONAL = "unconditional"
    CONDITIONAL = "conditional"
    NONE = "none"


class UpdateMode(StrEnum):
    REALTIME = "realtime"
    PERIODIC = "periodic"


class Period(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class OpenType(StrEnum):
    OPEN = "open"
    CONDITIONAL_OPEN = "conditional_open"
    NOT_OPEN = "not_open"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class System(_Entry):
    code: SystemCode
    name: Text


class Department(_Entry):
    code: DepartmentCode
    name: Text
    name_zh: Text | None = None
    systems: tuple[System, ...] = Field(min_length=1)


class UpdatePolicy(_Entry):
    mode: UpdateMode
    period: Period | None = None
    release_at: dt.time | None = None
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _period_matches_mode(self) -> UpdatePolicy:
        if self.mode is UpdateMode.PERIODIC and self.period is None:
            raise ValueError("a periodic class needs a period (hourly, daily, weekly or monthly)")
        if self.mode is UpdateMode.REALTIME and (self.period is not None or self.release_at is not None):
            raise ValueError("a realtime class has no period or release_at")
        return self


class DataClass(_Entry):
    code: ClassCode
    name: Text
    name_zh: Text | None = None
    abstract: Text | None = None
    provider: DepartmentCode
    system: SystemCode
    schema_path: Text = Field(alias="schema")
    key_field: Text
    share_type: ShareType
    legal_basis: Text | None = None
    share_conditions: Text | None = None
    update: UpdatePolicy
    open_type: OpenType
    sensitive_fields: tuple[Text, ...] = ()
    partitions: int = Field(default=3, ge=1, le=64)
    retention_hours: int | None = Field(default=None, ge=1)
    # Field rules checked by the router on every record (sharebus_core.catalogue.quality).
    quality: QualityPolicy | None = None
    # In a district's catalogue: the class is federated up to the city bus (docs/federation.md).
    federate: Literal["city"] | None = None

    @model_validator(mode="after")
    def _legal_basis_when_restricted(self) -> DataClass:
        if self.share_type is not ShareType.UNCONDITIONAL and self.legal_basis is None:
            raise ValueError(f"a {self.share_type.value} class must cite its legal basis (legal_basis)")
        return self

    @property
    def mode(self) -> UpdateMode:
        return self.update.mode


class Subscription(_Entry):
    system: SystemCode
    data_class: ClassCode
    purpose: Text | None = None


class DistrictBus(_Entry):
    """In the city's catalogue: a district bus federated with it, and where its catalogue is."""

    code: DistrictCode
    catalogue: Text  # a directory, relative to the city catalogue's


class CatalogueDocument(_Entry):
    """The catalogue file as written, before cross-references are checked."""

    districts: tuple[DistrictBus, ...] = ()

    departments: tuple[Department, ...] = Field(min_length=1)
    data_classes: tuple[DataClass, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
