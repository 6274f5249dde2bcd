"""``python -m sharebus_access``: keep the namespace's ACLs in step with the catalogue until SIGTERM.

Checks and repairs on start, every ``SHAREBUS_ACCESS_INTERVAL_S``, and at once when a catalogue file
changes (or on SIGHUP; the watcher, ``sharebus_access.watch``, outlives what a pass meets). Runs with
the admin credential.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from pydantic import ValidationError

from sharebus_access.reconcile import Reconciler
from sharebus_access.server import serve
from sharebus_access.settings import AccessSettings
from sharebus_access.watch import CatalogueFiles, CatalogueWatch, Fingerprint
from sharebus_core.catalogue import Catalogue, CatalogueError, load_catalogue
from sharebus_core.exposition import lean_exposition
from sharebus_core.kafka import KafkaAccessError
from sharebus_core.scrape_auth import ScrapeTokenError

log = logging.getLogger("sharebus.access")


def main() -> int:
    lean_exposition()
    try:
        settings = AccessSettings()
    except ValidationError as exc:
        # e.g. a namespace that another namespace's service prefixes would cover (namespaces.py)
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"sharebus-access: {problems}", file=sys.stderr)
        return 2
    logging.basicConfig(level="INFO", format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    try:
        token = settings.scrape_auth()  # /metrics answers only its holders: no token, no start
        load_catalogue(settings.catalogue_dir)
        settings.kafka.check()
    except (CatalogueError, KafkaAccessError, ScrapeTokenError) as exc:
        print(f"sharebus-access: {exc}", file=sys.stderr)
        return 2

    loaded: dict[Fingerprint, Catalogue] = {}
    files = CatalogueFiles(settings.catalogue_dir)  # the reconciler's thread's alone

    def catalogue() -> Catalogue:
        # Parsed again only when a file changed (a district's too): a city-scale catalogue takes seconds.
        fingerprint = files.fingerprint()
        if fingerprint not in loaded:
            loaded.clear()
            loaded[fingerprint] = load_catalogue(settings.catalogue_dir)
        return loaded[fingerprint]

    reconciler = Reconciler(
        settings.kafka, catalogue, settings.namespace, settings.registry_namespace, settings.interval_s
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reconciler.poke())
    watch = CatalogueWatch(settings.catalogue_dir, reconciler.poke)
    server = serve(settings.metrics_host, settings.metrics_port, reconciler.health, token, watch=watch.health)
    reconciler.start()
    print(
        f"sharebus-access: keeping the ACLs of {settings.namespace} in step with {settings.catalogue_dir} "
        f"(every {settings.interval_s:g}s and on change); metrics on "
        f"http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        flush=True,
    )
    try:
        watch.run(settings.catalogue_poll_s, stop)
    finally:
        reconciler.stop()
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
