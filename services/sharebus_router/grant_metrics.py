"""Gauges over the router's live grant view, computed when Prometheus scrapes (nothing per record)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sharebus_core.catalogue import Catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_core.settings import BusSettings
from sharebus_rules.grant_workflow import is_overdue
from sharebus_rules.routing import shown_state


class GrantCollector(Collector):
    def __init__(
        self,
        grants: Callable[[], Iterable[Grant]],
        clock: Callable[[], dt.datetime],
        deadline_working_days: int,
        zone: dt.tzinfo | None = None,
        *,
        catalogue: Callable[[], Catalogue],
    ) -> None:
        """``zone``: the calendar of the working days; None reads the setting (``BusSettings.grants_deadline_zone``),
        so the gauge counts the days the grant service does. ``catalogue``: the router's catalogue, which
        decides whether an automatic grant lapsed (``shown_state``)."""
        self.grants = grants
        self.catalogue = catalogue
        self.clock = clock
        self.deadline = deadline_working_days
        self.zone = zone if zone is not None else BusSettings().grants_deadline_zone

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        grants = list(self.grants())
        catalogue = self.catalogue()
        # As every reader shows them: an automatic grant the router delivers nothing under is "lapsed",
        # never "approved".
        states = Counter(shown_state(g, catalogue, now).value for g in grants)
        by_state = GaugeMetricFamily(
            "sharebus_grants", "Grants by state, as the router sees them now", labels=["state"]
        )
        for state in GrantState:
            by_state.add_metric([state.value], states.get(state.value, 0))
        yield by_state
        overdue = Counter(g.provider for g in grants if is_overdue(g, now, self.deadline, self.zone))
        late = GaugeMetricFamily(
            "sharebus_grant_applications_overdue",
            "Applications the provider has not answered within the deadline (working days)",
            labels=["provider"],
        )
        for provider, count in sorted(overdue.items()):
            late.add_metric([provider], count)
        yield late
