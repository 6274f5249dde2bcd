"""``python -m sharebus_access``: keep the namespace's ACLs in step with the catalogue until SIGTERM.

Checks and repairs on start, every ``SHAREBUS_ACCESS_INTERVAL_S``, and at once when a catalogue file
changes (or on SIGHUP). Runs with the admin credential.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from pydantic import ValidationError

from sharebus_access.reconcile import Reconciler
from sharebus_access.server import serve
from sharebus_access.settings import AccessSettings
from sharebus_core.catalogue import Catalogue, CatalogueError, load_catalogue
from sharebus_core.exposition import lean_exposition
from sharebus_core.kafka import KafkaAccessError
from sharebus_core.scrape_auth import ScrapeTokenError

log = logging.getLogger("sharebus.access")


def catalogue_fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the catalogue's files: changes when any file does."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def watch_catalogue(directory: Path, reconciler: Reconciler, every_s: float, stop: threading.Event) -> None:
    seen = catalogue_fingerprint(directory)
    while not stop.wait(every_s):
        current = catalogue_fingerprint(directory)
        if current != seen:
            log.info("the catalogue changed; reconciling the ACLs now")
            seen = current
            reconciler.poke()


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

    loaded: dict[tuple[tuple[str, int, int], ...], Catalogue] = {}

    def catalogue() -> Catalogue:
        # Parsed again only when a file changed: a city-scale catalogue takes seconds to load.
        fingerprint = catalogue_fingerprint(settings.catalogue_dir)
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
    server = serve(settings.metrics_host, settings.metrics_port, reconciler.health, token)
    reconciler.start()
    print(
        f"sharebus-access: keeping the ACLs of {settings.namespace} in step with {settings.catalogue_dir} "
        f"(every {settings.interval_s:g}s and on change); metrics on "
        f"http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        flush=True,
    )
    try:
        watch_catalogue(settings.catalogue_dir, reconciler, settings.catalogue_poll_s, stop)
    finally:
        reconciler.stop()
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
