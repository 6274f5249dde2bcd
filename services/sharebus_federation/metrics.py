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
from sharebus_federation.mirror import MirrorHealth, MirrorMaker
from sharebus_federation.plan import CITY
from sharebus_federation.schemas import SchemaFollower


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
        levels = GaugeMetricFamily(
            "sharebus_department_level_info",
            "The level of each department of the city catalogue (city, or a district's)",
            labels=["department", "level", "district"],
        )
        for department in sorted(self.catalogue.departments):
            level, of = self.catalogue.level_of(department)
            levels.add_metric([department, level, of], 1.0)
        yield levels


__all__ = ["FederationCollector"]
