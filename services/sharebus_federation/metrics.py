"""Prometheus view of a federation, computed when scraped. Every label is bounded: a district code
(from the city catalogue), a direction (up, down) and a level (city, district).

``sharebus_department_level_info`` joins the routers' per-provider and per-consumer series to levels
without a new label on every router series, e.g. records the city delivered from each district::

    sum by (district) (sharebus_records_total
      * on (provider) group_left (level, district)
        label_replace(sharebus_department_level_info{level="district"}, "provider", "$1", "department", "(.+)"))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sharebus_core.catalogue import Catalogue
from sharebus_federation.follower import DIRECTIONS, SchemaFollower
from sharebus_federation.mirror import MirrorHealth, MirrorMaker
from sharebus_federation.plan import CITY


class FederationCollector(Collector):
    def __init__(
        self,
        city_catalogue: Catalogue,
        mirror: MirrorMaker,
        follower: SchemaFollower,
        health: Callable[[], MirrorHealth] | None = None,
    ) -> None:
        """``health``: where a scrape reads MirrorMaker 2's health (default: read it now)."""
        self.catalogue = city_catalogue
        self.mirror = mirror
        self.follower = follower
        self.health = health or mirror.health

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        district = self.mirror.plan.district
        health = self.health()
        mirroring = GaugeMetricFamily(
            "sharebus_federation_mirroring",
            "1 while MirrorMaker 2 runs every flow of the district",
            labels=["district"],
        )
        mirroring.add_metric([district], 1.0 if health.mirroring else 0.0)
        yield mirroring
        flows = GaugeMetricFamily(
            "sharebus_federation_flow_running",
            "1 while the flow's source task reports RUNNING (up: district to city; down: city to district)",
            labels=["district", "direction"],
        )
        for (_source, target), state in sorted(health.flows.items()):
            flows.add_metric([district, "up" if target == CITY else "down"], 1.0 if state == "RUNNING" else 0.0)
        yield flows
        imported = CounterMetricFamily(
            "sharebus_federation_schemas_imported",
            "Schemas imported into a registry with their ids",
            labels=["district"],
        )
        imported.add_metric([district], float(self.follower.imported))
        yield imported
        yield from self._follower_trouble(district)
        levels = GaugeMetricFamily(
            "sharebus_department_level_info",
            "The level of each department of the city catalogue (city, or a district's)",
            labels=["department", "level", "district"],
        )
        for department in sorted(self.catalogue.departments):
            level, of = self.catalogue.level_of(department)
            levels.add_metric([department, level, of], 1.0)
        yield levels

    def _follower_trouble(self, district: str) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """What the schema follower could not import: refused versions, and ranges that overlap."""
        state = self.follower.state
        refusals = CounterMetricFamily(
            "sharebus_federation_schema_import_refusals",
            "Schema versions whose import was refused, once per pass it was tried (each pass tries again)",
            labels=["district", "direction"],
        )
        refused_now = GaugeMetricFamily(
            "sharebus_federation_schemas_refused",
            "Schema versions the last pass could not import (the others were imported)",
            labels=["district", "direction"],
        )
        totals = dict(self.follower.refusals_total)
        for direction in DIRECTIONS:
            refusals.add_metric([district, direction], float(totals[direction]))
            refused_now.add_metric([district, direction], float(sum(d == direction for d, _r in state.refused)))
        yield refusals
        yield refused_now
        disjoint = GaugeMetricFamily(
            "sharebus_federation_id_ranges_disjoint",
            "1 when the last pass read both registries' id ranges and they do not overlap (else nothing is imported)",
            labels=["district"],
        )
        disjoint.add_metric([district], 1.0 if state.ranges is not None else 0.0)
        yield disjoint


__all__ = ["FederationCollector"]
