"""``python -m sharebus_land [--once] [--plan]``: the sink as a process, configured by SHAREBUS_LAND_*."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from sharebus_core.catalogue import load_catalogue
from sharebus_core.exposition import lean_exposition
from sharebus_core.probe_server import serve_probes
from sharebus_core.scrape_auth import ScrapeTokenError
from sharebus_land.errors import DatabaseUrlInvalid, LandError, ThemeInvalid
from sharebus_land.plan import plan
from sharebus_land.settings import LandSettings
from sharebus_land.sink import Sink
from sharebus_land.store import LandStore

log = logging.getLogger("sharebus.land")


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def quiet_http_clients() -> None:
    """The registry and gateway clients log every request at INFO: the status line says what matters."""
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run(settings: LandSettings, *, once: bool = False, show_plan: bool = False) -> int:
    """Lands (or plans); returns the exit code: 2 for a setting that cannot work, 6 when the database or
    the delivery topic cannot be used, each named on stderr."""
    try:
        return _run(settings, once=once, show_plan=show_plan)
    except (ThemeInvalid, DatabaseUrlInvalid) as exc:
        print(f"sharebus land: {exc}", file=sys.stderr)
        return 2
    except ScrapeTokenError as exc:
        print(f"sharebus land: refusing to serve metrics: {exc}", file=sys.stderr)
        return 2
    except LandError as exc:
        print(f"sharebus land: {exc}", file=sys.stderr)
        return 6


def _run(settings: LandSettings, *, once: bool, show_plan: bool) -> int:
    if not settings.system:
        print("sharebus land: name the system (--system, or SHAREBUS_LAND_SYSTEM)", file=sys.stderr)
        return 2
    # /metrics answers only the scrape token's holders: asked for metrics without a token, nothing starts.
    token = settings.scrape_auth() if settings.metrics_port is not None and not show_plan else None
    catalogue = load_catalogue(settings.catalogue_dir)
    catalogue.system(settings.system)  # UnknownSystem names it
    _ensure_sqlite_dir(settings.database_url)
    store = LandStore(settings.database_url)
    if show_plan:
        print(plan(settings, catalogue, settings.system, store))
        store.dispose()
        return 0
    sink = Sink(settings, settings.system, catalogue, store)
    if settings.metrics_port is not None and token is not None:
        probes = {"/healthz": lambda: (200, {"status": "ok"})}
        serve_probes(settings.metrics_host, settings.metrics_port, sink.metrics.registry, probes, "land-http", token)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sink.run(once=once, stop=stop, report=lambda line: print(line, flush=True))
    finally:
        sink.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    lean_exposition()
    parser = argparse.ArgumentParser(prog="python -m sharebus_land")
    parser.add_argument("--once", action="store_true", help="land what is there, then exit")
    parser.add_argument("--plan", action="store_true", help="print the DDL, apply nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    quiet_http_clients()
    return run(LandSettings(), once=args.once, show_plan=args.plan)


if __name__ == "__main__":
    sys.exit(main())
