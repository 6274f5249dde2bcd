"""The catalogue: the single source of truth for every data class."""

from sharebus_core.catalogue.catalogue import Catalogue, UnknownDataClass, UnknownSystem
from sharebus_core.catalogue.errors import CatalogueError, Problem
from sharebus_core.catalogue.loader import load_catalogue
from sharebus_core.catalogue.models import (
    DataClass,
    Department,
    OpenType,
    Period,
    ShareType,
    Subscription,
    System,
    UpdateMode,
    UpdatePolicy,
)
from sharebus_core.catalogue.schema import AvroSchema, SchemaParseError

__all__ = [
    "AvroSchema",
    "Catalogue",
    "CatalogueError",
    "DataClass",
    "Department",
    "OpenType",
    "Period",
    "Problem",
    "SchemaParseError",
    "ShareType",
    "Subscription",
    "System",
    "UnknownDataClass",
    "UnknownSystem",
    "UpdateMode",
    "UpdatePolicy",
    "load_catalogue",
]
