"""``sharebus stats``: the bureau's assessment table, one row per department.

From Prometheus over a period when it answers (``--prometheus``, default the one ``make run`` starts), else from
the router's own counters, which count since the router started.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sharebus_core.catalogue import Catalogue
from sharebus_core.errors import SharebusError
from sharebus_core.scrape_auth import TOKEN_FILE_ENV, scrape_headers

COLUMNS = ("provided", "consumed", "calls", "denials", "overdue")
_BY_DEPT = "* on (consumer) group_left (department) sharebus_catalogue_system_info"
# Per department; the consumer-side figures are joined to the consuming system's department.
QUERIES = {
    "provided": "sum by (provider) (increase(sharebus_records_received_total[{p}]))",
    "consumed": f"sum by (department) (increase(sharebus_records_total[{{p}}]) {_BY_DEPT})",
    "calls": f"sum by (department) (increase(sharebus_calls_total[{{p}}]) {_BY_DEPT})",
    "denials": f"sum by (department) (increase(sharebus_denials_total[{{p}}]) {_BY_DEPT})",
    # Periods a periodic class was overdue: hourly samples of the flag over the period.
    "overdue": "sum by (provider) (sum_over_time(sharebus_freshness_overdue[{p}:1h]))",
}
Table = dict[str, dict[str, float]]


class StatsUnavailable(SharebusError, RuntimeError):
    pass


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stats = commands.add_parser("stats", help="assessment table per department: provided, consumed, calls...")
    stats.add_argument("--period", default="1d", help="Prometheus duration, e.g. 1d, 7d, 30d (default 1d)")
    stats.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL")
    stats.add_argument("--router", default="http://127.0.0.1:6066/metrics", help="router metrics, the fallback")


def from_prometheus(base_url: str, period: str) -> Table:
    table: Table = defaultdict(dict)
    for column, template in QUERIES.items():
        try:
            body = httpx.get(f"{base_url}/api/v1/query", params={"query": template.format(p=period)}, timeout=10).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise StatsUnavailable(f"Prometheus at {base_url} does not answer: {exc}") from exc
        if body.get("status") != "success":
            raise StatsUnavailable(f"Prometheus refused the query: {body.get('error')}")
        for sample in body["data"]["result"]:
            labels = sample["metric"]
            table[labels.get("department") or labels["provider"]][column] = float(sample["value"][1])
    return table


def from_router(metrics_text: str, department_of_system: Mapping[str, str]) -> Table:
    """The same figures from the router's counters (since it started); overdue is the number of classes now."""
    table: Table = defaultdict(lambda: defaultdict(float))
    consumer_side = {"sharebus_records_total": "consumed", "sharebus_calls_total": "calls"}
    consumer_side["sharebus_denials_total"] = "denials"
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "sharebus_records_received_total":
                table[labels["provider"]]["provided"] += sample.value
            elif sample.name in consumer_side and labels.get("consumer") in department_of_system:
                table[department_of_system[labels["consumer"]]][consumer_side[sample.name]] += sample.value
            elif sample.name == "sharebus_freshness_overdue":
                table[labels["provider"]]["overdue"] += sample.value
    return {dept: dict(row) for dept, row in table.items()}


def render(table: Table, catalogue: Catalogue, source: str) -> str:
    lines = [source, f"{'department':<10} " + " ".join(f"{c:>10}" for c in COLUMNS)]
    for code in sorted(catalogue.departments):
        row = table.get(code, {})
        lines.append(f"{code:<10} " + " ".join(f"{round(row.get(c, 0.0)):>10}" for c in COLUMNS))
    return "\n".join(lines)


def run(args: argparse.Namespace, catalogue: Catalogue) -> str:
    try:
        table = from_prometheus(args.prometheus, args.period)
        return render(table, catalogue, f"from Prometheus {args.prometheus}, last {args.period}")
    except StatsUnavailable as prometheus_error:
        try:
            # The router's /metrics answers only the scrape token (SHAREBUS_SCRAPE_TOKEN_FILE; make run prints it).
            response = httpx.get(args.router, timeout=5, headers=scrape_headers())
            response.raise_for_status()
            text = response.text
        except httpx.HTTPStatusError as exc:
            raise StatsUnavailable(
                f"{prometheus_error}; the router at {args.router} answered {exc.response.status_code}"
                + (f" (set {TOKEN_FILE_ENV} to the bus's scrape token)" if exc.response.status_code == 401 else "")
            ) from exc
        except httpx.HTTPError as exc:
            raise StatsUnavailable(f"{prometheus_error}; the router at {args.router} does not answer either") from exc
        table = from_router(text, catalogue.department_of_system)
        return render(table, catalogue, f"from the router's counters since it started ({prometheus_error})")
