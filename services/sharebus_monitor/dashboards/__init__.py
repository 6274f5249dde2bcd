"""Grafana dashboards generated from code with grafana-foundation-sdk (``python -m sharebus_monitor.dashboards``).

The generated JSON in ``deploy/grafana/dashboards`` is committed; a unit test regenerates it and requires
it to be identical, and the Prometheus integration test runs every panel's query from it.
"""

from sharebus_monitor.dashboards.panels import DATASOURCE_UID
from sharebus_monitor.dashboards.render import GRAFANA_DIR, panel_queries, render_all, template_variables

__all__ = ["DATASOURCE_UID", "GRAFANA_DIR", "panel_queries", "render_all", "template_variables"]
