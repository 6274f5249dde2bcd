"""``python -m sharebus_router``: provision topics and schemas from the catalogue, then run the worker."""

from __future__ import annotations

import logging
import sys

from sharebus_core import native
from sharebus_core.catalogue import CatalogueError, load_catalogue
from sharebus_core.exposition import lean_exposition
from sharebus_core.grant_log import ensure_grant_topic
from sharebus_core.scrape_auth import ScrapeTokenError
from sharebus_core.signing import SigningKeyError
from sharebus_core.topics import TopicNames
from sharebus_provision import (
    ProvisionError,
    catalogue_topics,
    provision_bus,
    router_topics,
)
from sharebus_router.app import build_app, make_worker
from sharebus_router.settings import RouterSettings


def main() -> int:  # noqa: RET503 - the worker never returns; it exits the process
    lean_exposition()
    settings = RouterSettings()
    logging.basicConfig(level=settings.log_level.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    if native.in_checkout() and (stale := native.check()) is not None:
        # Still the same rules, from an older build of the sources: said loudly, not refused (the sources
        # may differ only in a comment), and `make run` builds them before it starts anything.
        logging.getLogger("sharebus_router").warning("%s", stale)
    try:
        catalogue = load_catalogue(settings.catalogue_dir)
    except CatalogueError as exc:
        print(f"sharebus-router: {exc}", file=sys.stderr)
        return 2
    try:
        settings.control_keys()
        settings.scrape_auth()  # /metrics answers only the scrape token's holders: none, no start
    except (SigningKeyError, ScrapeTokenError) as exc:
        print(f"sharebus-router: refusing to start: {exc}", file=sys.stderr)
        return 2
    topics = TopicNames(settings.namespace)
    try:
        specs = catalogue_topics(
            catalogue,
            topics,
            settings.delivery_partitions,
            settings.delivery_retention_hours,
            settings.dead_letter_retention_hours,
        ) + router_topics(topics, settings.held_partitions, settings.held_retention_hours)
        provisioned = provision_bus(
            settings.kafka,
            specs,
            catalogue,
            topics,
            settings.registry_url,
            settings.registry_auth,
            public=settings.public_delivery,
        )
        ensure_grant_topic(settings.kafka, topics.grants)
    except ProvisionError as exc:
        print(f"sharebus-router: {exc}", file=sys.stderr)
        return 3
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings, catalogue, provisioned.schemas.ids)
    print(
        f"sharebus-router: routing {len(catalogue.data_classes)} data classes; metrics on "
        f"http://{settings.web_host}:{settings.web_port}/metrics",
        flush=True,
    )
    worker = make_worker(app, settings.log_level)
    worker.execute_from_commandline()


if __name__ == "__main__":
    sys.exit(main())
