"""``python -m sharebus_cli.compose_prometheus``: docker-compose.yml's ``prometheus-config`` service.

Writes the Prometheus config compose's Prometheus runs with: the project's own (deploy/prometheus),
scraping the compose services by name and, over a large catalogue, the router and the monitor in
parts, as ``sharebus run`` does (docs/metrics.md, "Scrapes in shards"). A scrape of the whole city's
router in one part is more than 1 MB; the part count depends on the catalogue the bus runs with,
so it is worked out where that catalogue is, in the project's image.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sharebus_cli.prometheus import compose_config
from sharebus_core.catalogue import CatalogueError, load_catalogue
from sharebus_core.settings import BusSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sharebus_cli.compose_prometheus")
    parser.add_argument("--out", type=Path, required=True, help="the config file to write")
    parser.add_argument("--rules-dir", default="/etc/sharebus", help="where Prometheus finds alerts.yml")
    parser.add_argument(
        "--token-file",
        default="/etc/sharebus-secrets/scrape-token",
        help="where Prometheus reads the bus's scrape token (bus-init writes it into its secrets volume)",
    )
    args = parser.parse_args(argv)
    catalogue_dir = BusSettings().catalogue_dir
    try:
        catalogue = load_catalogue(catalogue_dir)
    except CatalogueError as exc:
        print(f"prometheus-config: {exc}", file=sys.stderr)
        return 2
    text = compose_config(len(catalogue.data_classes), args.rules_dir, args.token_file)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial")
    partial.write_text(text)
    partial.chmod(0o644)  # Prometheus runs as another uid (nobody) and only reads it
    os.replace(partial, args.out)
    print(f"prometheus-config: {args.out} for {len(catalogue.data_classes)} data classes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
