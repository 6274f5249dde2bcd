"""A thin layer over grafana-foundation-sdk: every panel gets a unique id and the one provisioned datasource."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import BigValueGraphMode, VizOrientation

# The uid the datasource provisioning file gives Prometheus; every panel and variable refers to it.
DATASOURCE_UID = "sharebus-prometheus"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

Panel = timeseries.Panel | stat.Panel | table.Panel | bargauge.Panel


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    # Tables and bar gauges show the value now (instant); graphs show a range.
    instant: bool = False


def _target(query: Query, ref_id: str) -> Dataquery:
    target = Dataquery().expr(query.expr).ref_id(ref_id).datasource(DATASOURCE)
    if query.legend:
        target = target.legend_format(query.legend)
    return target.instant() if query.instant else target.range()


class Board:
    def __init__(self, uid: str, title: str, description: str) -> None:
        self.builder = (
            Dashboard(title)
            .uid(uid)
            .description(description)
            .tags(["sharebus", "generated"])
            .time("now-1h", "now")
            .refresh("30s")
            .timezone("browser")
            .readonly()
        )
        self._ids = itertools.count(1)

    def variable(self, name: str, label: str, metric: str, label_name: str) -> Board:
        self.builder = self.builder.with_variable(
            QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query({"query": f"label_values({metric}, {label_name})", "refId": "PrometheusVariableQueryEditor"})
            .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
        )
        return self

    def row(self, title: str) -> Board:
        self.builder = self.builder.with_row(Row(title).id(next(self._ids)))
        return self

    def _add(self, panel: Panel, title: str, description: str, queries: tuple[Query, ...], width: int) -> Board:
        refs = (chr(ord("A") + i) for i in range(len(queries)))
        panel = panel.id(next(self._ids)).title(title).description(description).datasource(DATASOURCE)
        panel = panel.span(width).height(8)
        for query, ref in zip(queries, refs, strict=True):
            panel = panel.with_target(_target(query, ref))
        self.builder = self.builder.with_panel(panel)
        return self

    def graph(self, title: str, description: str, unit: str, *queries: Query, width: int = 12) -> Board:
        return self._add(timeseries.Panel().unit(unit).fill_opacity(10), title, description, queries, width)

    def stat(
        self, title: str, description: str, unit: str, *queries: Query, width: int = 6, time_from: str = ""
    ) -> Board:
        panel = stat.Panel().unit(unit).graph_mode(BigValueGraphMode.NONE)
        if time_from:
            # A relative time of its own, e.g. "now/d" for "today so far".
            panel = panel.time_from(time_from)
        return self._add(panel, title, description, queries, width)

    def table(self, title: str, description: str, *queries: Query, width: int = 12) -> Board:
        # One row per series: labels as columns, the value as the last one.
        labels_to_fields = model.DataTransformerConfig(id_val="labelsToFields", options={"mode": "columns"})
        merge = model.DataTransformerConfig(id_val="merge", options={})
        panel = table.Panel().with_transformation(labels_to_fields).with_transformation(merge)
        return self._add(panel, title, description, queries, width)

    def bars(self, title: str, description: str, unit: str, *queries: Query, width: int = 12) -> Board:
        panel = bargauge.Panel().unit(unit).orientation(VizOrientation.HORIZONTAL)
        return self._add(panel, title, description, queries, width)

    def build(self) -> Any:
        return self.builder.build()
