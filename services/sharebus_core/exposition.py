"""How every sharebus process exposes its Prometheus metrics."""

from __future__ import annotations

import prometheus_client


def lean_exposition() -> None:
    """Leaves prometheus-client's ``*_created`` companion series out of this process's ``/metrics``.

    Nothing reads them (the project's Prometheus dropped them at scrape time), and they are one
    series per counter and histogram child: at city scale, tens of thousands of lines per scrape.
    """
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
