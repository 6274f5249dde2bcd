"""``sharebus land --plan``: the DDL the sink would run for what the system receives, without running it.

The schema of each class is the one the system is delivered now: the latest registered under its
projection subject (its grant's fields, masked), else the class's own subject (an unconditional
share delivers the record whole), else the catalogue's file.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from confluent_kafka.schema_registry.error import SchemaRegistryError

from sharebus_core.catalogue import Catalogue
from sharebus_core.registry_client import registry_client
from sharebus_core.topics import TopicNames
from sharebus_land.layout import plan_placements
from sharebus_land.settings import LandSettings
from sharebus_land.shapes import ClassShape
from sharebus_land.store import LandStore

log = logging.getLogger("sharebus.land")


def classes_of(catalogue: Catalogue, system: str, settings: LandSettings) -> list[str]:
    """The classes the system subscribes to, and every class of its themes."""
    wanted = [s.data_class for s in catalogue.subscriptions if s.system == system]
    wanted += [code for members in settings.themes.values() for code in members]
    return list(dict.fromkeys(wanted))


def delivered_schema(settings: LandSettings, catalogue: Catalogue, system: str, code: str) -> dict[str, Any]:
    topics = TopicNames(settings.namespace)
    client = registry_client(settings.registry_url, settings.registry_auth)
    for subject in (topics.projection_subject(system, code), topics.value_subject(code)):
        try:
            document: dict[str, Any] = json.loads(client.get_latest_version(subject).schema.schema_str or "{}")
        except SchemaRegistryError:
            continue  # no such subject: the next candidate
        except Exception as exc:  # noqa: BLE001 - the client raises its bundled HTTP library's errors
            log.warning("the registry did not answer for %s (%s): planning from the catalogue's schema", code, exc)
            break
        return document
    catalogued: dict[str, Any] = json.loads(catalogue.schema(code).text)
    return catalogued


def plan(settings: LandSettings, catalogue: Catalogue, system: str, store: LandStore, offline: bool = False) -> str:
    store.read_columns()
    classes = classes_of(catalogue, system, settings)
    placements = plan_placements(catalogue, classes, settings.themes)
    lines = [f"-- sharebus land --plan: system {system} into {store.dialect}"]
    for code in classes:
        schema = (
            json.loads(catalogue.schema(code).text) if offline else delivered_schema(settings, catalogue, system, code)
        )
        shape = ClassShape.from_schema(code, catalogue.data_class(code).key_field, schema)
        statements = store.ddl(placements[code], shape)
        store.pretend(placements[code], shape)  # so that a theme's second class shows ALTERs, not a second CREATE
        lines.append(f"-- {code} ({catalogue.data_class(code).name}) -> {placements[code].table}")
        lines += [f"{statement};" for statement in statements] or ["-- up to date"]
    return "\n".join(lines)
