"""``python -m sharebus_monitor``: sample consumer lag and serve it on /metrics until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from prometheus_client import REGISTRY

from sharebus_core.catalogue import CatalogueError, load_catalogue
from sharebus_core.exposition import lean_exposition
from sharebus_core.probe_server import serve_probes
from sharebus_core.scrape_auth import ScrapeTokenError
from sharebus_core.topics import TopicNames
from sharebus_monitor.catalogue_info import CatalogueCollector
from sharebus_monitor.collector import LagCollector, LagSampler, run_sampler
from sharebus_monitor.lag import GrowthTracker
from sharebus_monitor.offsets import OffsetReader
from sharebus_monitor.settings import MonitorSettings


def main() -> int:
    lean_exposition()
    settings = MonitorSettings()
    logging.basicConfig(level="INFO", format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    try:
        token = settings.scrape_auth()  # /metrics answers only its holders: no token, no start
        catalogue = load_catalogue(settings.catalogue_dir)
    except (CatalogueError, ScrapeTokenError) as exc:
        print(f"sharebus-monitor: {exc}", file=sys.stderr)
        return 2
    topics = TopicNames(settings.namespace)
    REGISTRY.register(CatalogueCollector(catalogue))
    collector = LagCollector(REGISTRY)
    sampler = LagSampler(
        OffsetReader(settings.kafka, settings.request_timeout_s),
        topics,
        [topics.source(code) for code in catalogue.data_classes],
        GrowthTracker(settings.growth_window_s),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Served in shards on request (sharebus_core.exposition): the lag of every class's topic is city-sized.
    serve_probes(settings.metrics_host, settings.metrics_port, REGISTRY, {}, "monitor-http", token)
    print(
        f"sharebus-monitor: lag of {topics.router_app_id} and {settings.namespace}.* groups every "
        f"{settings.interval_s:g}s; metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        flush=True,
    )
    run_sampler(sampler, collector, settings.interval_s, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
