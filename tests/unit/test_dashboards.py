"""The committed Grafana files are exactly what the code generates, and every dashboard is self-consistent."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from sharebus_monitor.dashboards import DATASOURCE_UID, GRAFANA_DIR, panel_queries, render_all, template_variables

DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def test_committed_files_match_the_generator() -> None:
    generated = render_all()
    stale = [name for name, text in generated.items() if (GRAFANA_DIR / name).read_text() != text]
    assert stale == [], f"regenerate with: python -m sharebus_monitor.dashboards ({stale})"
    committed = {f"dashboards/{path.name}" for path in DASHBOARDS}
    assert committed == {name for name in generated if name.startswith("dashboards/")}


def test_the_provisioned_datasource_has_the_uid_dashboards_use() -> None:
    provisioning = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/sharebus.yml").read_text())
    assert [(d["uid"], d["type"]) for d in provisioning["datasources"]] == [(DATASOURCE_UID, "prometheus")]
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/sharebus.yml").read_text())
    assert providers["providers"][0]["type"] == "file"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_datasource_reference_resolves_to_the_provisioned_one(path: Any) -> None:
    dashboard = json.loads(path.read_text())
    refs = [panel["datasource"] for panel in _panels(dashboard) if panel["type"] != "row"]
    refs += [target["datasource"] for panel in _panels(dashboard) for target in panel.get("targets", [])]
    refs += [variable["datasource"] for variable in dashboard.get("templating", {}).get("list", [])]
    assert refs
    assert {(ref["type"], ref["uid"]) for ref in refs} == {("prometheus", DATASOURCE_UID)}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panel_ids_are_unique_and_every_panel_has_a_query(path: Any) -> None:
    dashboard = json.loads(path.read_text())
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids)), ids
    empty = [p["title"] for p in _panels(dashboard) if p["type"] != "row" and not p.get("targets")]
    assert empty == []
    assert dashboard["uid"].startswith("sharebus-")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_template_variable_used_is_defined(path: Any) -> None:
    dashboard = json.loads(path.read_text())
    defined = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    used: set[str] = set()
    for panel in _panels(dashboard):
        used |= template_variables(panel.get("title", "")) | template_variables(panel.get("description", ""))
    for _, expr in panel_queries(dashboard):
        used |= template_variables(expr)
    assert used <= defined, f"undefined: {used - defined}"
    # A defined variable nobody uses is a dropdown that does nothing.
    assert defined <= used, f"unused: {defined - used}"


def test_variables_are_queried_from_the_monitors_catalogue_metrics() -> None:
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text()).get("templating", {}).get("list", []):
            assert variable["query"]["query"].startswith("label_values(sharebus_catalogue_")


def test_template_variables_parser_ignores_grafana_builtins() -> None:
    assert template_variables('rate(x{a="$department"}[$__rate_interval]) ${data_class}') == {
        "department",
        "data_class",
    }
