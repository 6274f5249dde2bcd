"""``sharebus catalogue``: check the catalogue, list and show departments and data classes."""

from __future__ import annotations

import json

from sharebus_core.catalogue import Catalogue
from sharebus_core.topics import TopicNames
from sharebus_gateway.settings import GatewaySettings
from sharebus_gateway.standards_api import addresses
from sharebus_rules.dcat import Addresses, catalogue_dcat, choose_publisher


def list_classes(catalogue: Catalogue) -> str:
    rows = [f"{'code':<17} {'provider':<8} {'share':<13} {'mode':<9} {'subs':>4}  name"]
    for code, entry in catalogue.data_classes.items():
        period = f"/{entry.update.period.value}" if entry.update.period else ""
        rows.append(
            f"{code:<17} {entry.provider:<8} {entry.share_type.value:<13} {entry.mode.value + period:<9} "
            f"{len(catalogue.subscriptions_of(code)):>4}  {entry.name}"
        )
    return "\n".join(rows)


def list_departments(catalogue: Catalogue) -> str:
    rows = []
    for dept in catalogue.departments.values():
        systems = ", ".join(s.code for s in dept.systems)
        rows.append(f"{dept.code:<6} {dept.name} ({dept.name_zh or ''})\n       systems: {systems}")
    return "\n".join(rows)


def show_class(catalogue: Catalogue, code: str, namespace: str) -> str:
    entry = catalogue.data_class(code)
    topics = TopicNames(namespace)
    document = {
        **entry.model_dump(mode="json", by_alias=True),
        "source_topic": topics.source(code),
        "subject": topics.value_subject(code),
        "subscribers": [s.system for s in catalogue.subscriptions_of(code)],
        "fields": list(catalogue.schema(code).field_names),
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def export(catalogue: Catalogue, base_url: str | None, publisher: str | None) -> str:
    """The catalogue as DCAT-AP JSON-LD, with the addresses the gateway itself would serve it with."""
    settings = GatewaySettings()
    at = addresses(settings)
    if base_url:
        at = Addresses(base_url, at.kafka_bootstrap, at.namespace)
    chosen = publisher or choose_publisher(catalogue, settings.catalogue_publisher)
    return json.dumps(catalogue_dcat(catalogue, at, chosen), ensure_ascii=False, indent=2)
