"""``python -m sharebus_monitor.dashboards``: (re)writes deploy/grafana from the code in this package."""

from __future__ import annotations

import sys

from sharebus_monitor.dashboards.render import GRAFANA_DIR, render_all


def main() -> int:
    for relative, text in render_all().items():
        path = GRAFANA_DIR / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
