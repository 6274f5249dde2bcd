"""``python -m sharebus_gateway``: serve the HTTP gateway (uvicorn)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from sharebus_core.catalogue import CatalogueError, load_catalogue
from sharebus_core.exposition import lean_exposition
from sharebus_core.scrape_auth import ScrapeTokenError
from sharebus_core.signing import SigningKeyError
from sharebus_gateway.app import create_app
from sharebus_gateway.settings import GatewaySettings


def main() -> int:
    lean_exposition()
    settings = GatewaySettings()
    logging.basicConfig(level=settings.log_level.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    try:
        catalogue = load_catalogue(settings.catalogue_dir)
    except CatalogueError as exc:
        print(f"sharebus-gateway: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(settings, catalogue)
    except (SigningKeyError, ScrapeTokenError) as exc:
        print(f"sharebus-gateway: refusing to start: {exc}", file=sys.stderr)
        return 2
    print(f"sharebus-gateway: serving on http://{settings.host}:{settings.port} (docs at /docs)", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, ws="websockets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
