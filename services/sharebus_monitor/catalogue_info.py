"""The catalogue as info metrics (value 1), so that queries can join counters to departments.

The router counts consumers by system; ``sharebus_catalogue_system_info`` says which department owns
each system, which is what the department dashboard and ``sharebus stats`` need. Bounded by the
catalogue: ~900 systems and 3,170 classes at city scale.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sharebus_core.catalogue import Catalogue


class CatalogueCollector(Collector):
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        systems = GaugeMetricFamily(
            "sharebus_catalogue_system_info",
            "A system of the catalogue (as the consumer label of the router's counters) and its department",
            labels=["consumer", "department"],
        )
        for system, department in sorted(self.catalogue.department_of_system.items()):
            systems.add_metric([system, department], 1)
        yield systems
        classes = GaugeMetricFamily(
            "sharebus_catalogue_data_class_info",
            "A data class of the catalogue: its provider, share type and update mode",
            labels=["data_class", "provider", "share_type", "mode"],
        )
        for code, entry in sorted(self.catalogue.data_classes.items()):
            classes.add_metric([code, entry.provider, entry.share_type.value, entry.mode.value], 1)
        yield classes
        subscriptions = GaugeMetricFamily(
            "sharebus_catalogue_subscriptions",
            "Subscriptions per data class in the catalogue",
            labels=["data_class"],
        )
        for code in sorted(self.catalogue.data_classes):
            subscriptions.add_metric([code], len(self.catalogue.subscriptions_of(code)))
        yield subscriptions
