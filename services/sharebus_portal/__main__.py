"""``python -m sharebus_portal``: serve the department portal (uvicorn)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from sharebus_core.catalogue import CatalogueError, load_catalogue
from sharebus_core.exposition import lean_exposition
from sharebus_core.signing import SigningKeyError
from sharebus_portal.app import create_app
from sharebus_portal.settings import PortalSettings


def main() -> int:
    lean_exposition()
    settings = PortalSettings()
    logging.basicConfig(level=settings.log_level.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    try:
        catalogue = load_catalogue(settings.catalogue_dir)
    except CatalogueError as exc:
        print(f"sharebus-portal: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(settings, catalogue)
    except SigningKeyError as exc:
        print(f"sharebus-portal: refusing to start: {exc}", file=sys.stderr)
        return 2
    print(f"sharebus-portal: serving on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
