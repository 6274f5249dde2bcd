"""``sharebus catalogue``: check the catalogue, list and show departments and data classes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sharebus_core.catalogue import Catalogue, CatalogueError, load_catalogue
from sharebus_core.topics import TopicNames
from sharebus_gateway.settings import GatewaySettings
from sharebus_gateway.standards_api import addresses
from sharebus_rules.dcat import Addresses, catalogue_dcat, choose_publisher


def add_generate_parser(sub: Any) -> None:
    generate_parser = sub.add_parser(
        "generate", help="write a generated catalogue with the city platform's proportions (for scale tests)"
    )
    from sharebus_demo.city_catalogue import SCALES

    generate_parser.add_argument("--scale", choices=tuple(SCALES), default="city")
    generate_parser.add_argument("--out", required=True, help="directory to write catalogue.yaml and avro/ into")
    generate_parser.add_argument("--seed", type=int, default=13)
    generate_parser.add_argument("--partitions", type=int, default=3, help="partitions per source topic")


def generate(args: argparse.Namespace) -> tuple[str, int]:
    """Writes the catalogue, then loads it with the services' own loader, so what is written is valid."""
    from sharebus_demo.city_catalogue import GenerateError
    from sharebus_demo.city_catalogue import generate as write_catalogue

    try:
        write_catalogue(args.scale, args.out, seed=args.seed, partitions=args.partitions)
        catalogue = load_catalogue(args.out)
    except (GenerateError, CatalogueError) as exc:
        return f"sharebus: {exc}", 2
    except OSError as exc:
        return f"sharebus: cannot write the catalogue to {args.out}: {exc}", 2
    return (
        f"wrote {args.out}: {len(catalogue.departments)} departments, {len(catalogue.systems)} systems, "
        f"{len(catalogue.data_classes)} data classes, {len(catalogue.subscriptions)} subscriptions "
        f"(use it with SHAREBUS_CATALOGUE_DIR={args.out})",
        0,
    )


def list_classes(catalogue: Catalogue) -> str:
    modes = {
        code: entry.mode.value + (f"/{entry.update.period.value}" if entry.update.period else "")
        for code, entry in catalogue.data_classes.items()
    }
    width = max([len("mode"), *map(len, modes.values())])  # periodic/monthly is the widest
    rows = [f"{'code':<17} {'provider':<8} {'share':<13} {'mode':<{width}} {'subs':>4}  name"]
    for code, entry in catalogue.data_classes.items():
        rows.append(
            f"{code:<17} {entry.provider:<8} {entry.share_type.value:<13} {modes[code]:<{width}} "
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
