"""``python -m sharebus_federation``: one district's federation with the city bus, until SIGTERM.

Exit codes: 0 stopped on request; 1 MirrorMaker 2 failed or exited; 2 a setting, credential file
or catalogue is missing or invalid (nothing was started).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from pydantic import ValidationError

from sharebus_core.catalogue import CatalogueError
from sharebus_core.errors import SharebusError
from sharebus_core.exposition import lean_exposition
from sharebus_federation.service import FederationService
from sharebus_federation.settings import FederationSettings


def main() -> int:
    lean_exposition()
    logging.basicConfig(level="INFO", format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    # The schema follower asks both registries every second: one log line per request would drown the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = FederationSettings()
        service = FederationService(settings)
    except ValidationError as exc:
        print(f"sharebus-federation: invalid settings (SHAREBUS_FEDERATION_*): {exc}", file=sys.stderr)
        return 2
    except (CatalogueError, SharebusError) as exc:
        print(f"sharebus-federation: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()
        # MirrorMaker 2's start-up blocks for minutes: a signal then must end the wait too.
        if service.starting:
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(
        f"sharebus-federation: district {settings.district} <-> city, flows {service.plan.flows()}; metrics on "
        f"http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        flush=True,
    )
    try:
        return service.run(stop)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
