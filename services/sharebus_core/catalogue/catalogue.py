"""The loaded catalogue: validated entries plus the indexes the services look things up by."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sharebus_core.catalogue.models import DataClass, Department, Subscription, System
from sharebus_core.catalogue.schema import AvroSchema
from sharebus_core.errors import SharebusError


class UnknownDataClass(SharebusError, KeyError):
    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"unknown data class {code!r}: it is not in the catalogue")


class UnknownSystem(SharebusError, KeyError):
    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"unknown system {code!r}: it is not in the catalogue")


@dataclass(frozen=True)
class Catalogue:
    source: Path
    departments: Mapping[str, Department]
    systems: Mapping[str, System]
    department_of_system: Mapping[str, str]
    data_classes: Mapping[str, DataClass]
    schemas: Mapping[str, AvroSchema]
    subscriptions: tuple[Subscription, ...]
    _subscribers: Mapping[str, tuple[Subscription, ...]] = field(repr=False, default_factory=dict)
    # Department -> the district bus it belongs to; departments of the city itself are not in it.
    district_of_department: Mapping[str, str] = field(default_factory=dict)

    def data_class(self, code: str) -> DataClass:
        try:
            return self.data_classes[code]
        except KeyError:
            raise UnknownDataClass(code) from None

    def schema(self, code: str) -> AvroSchema:
        try:
            return self.schemas[code]
        except KeyError:
            raise UnknownDataClass(code) from None

    def system(self, code: str) -> System:
        try:
            return self.systems[code]
        except KeyError:
            raise UnknownSystem(code) from None

    def subscriptions_of(self, class_code: str) -> tuple[Subscription, ...]:
        """The subscriptions to one class, in catalogue order."""
        return self._subscribers.get(class_code, ())

    def classes_of(self, department: str) -> tuple[DataClass, ...]:
        return tuple(c for c in self.data_classes.values() if c.provider == department)

    def level_of(self, department: str) -> tuple[str, str]:
        """(level, district) of a department, bounded labels for metrics and audit: ("city", "")
        or ("district", its code)."""
        district = self.district_of_department.get(department)
        return ("district", district) if district else ("city", "")

    def federated_up(self) -> tuple[DataClass, ...]:
        """In a district's catalogue: the classes it federates up to the city."""
        return tuple(c for c in self.data_classes.values() if c.federate == "city")
