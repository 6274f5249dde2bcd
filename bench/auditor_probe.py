"""The auditor beside the router in the forward benchmark: does it keep up?

The router's facts go to ``<ns>.audit.facts``; the auditor commits its offsets there in the same
transaction as the trail's events. Its lag is the facts' end offsets minus those commits. Reported:
the lag when the router has drained the backlog, at the start and the end of the steady phase
(keeping up means it does not grow there), and how long the auditor takes to catch up at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench.measure import high_watermarks
from bench.rig import Probe, Rig
from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.offsets import committed_offsets


@dataclass
class AuditorFigures:
    lag_when_drained: list[int] = field(default_factory=list)
    steady_lag_start: list[int] = field(default_factory=list)
    steady_lag_end: list[int] = field(default_factory=list)
    catch_up_s: list[float] = field(default_factory=list)
    # Facts messages on the topic when caught up (each holds a batch's facts): the lag is not vacuous.
    facts_messages: list[int] = field(default_factory=list)


class AuditorProbe(Probe):
    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.figures = AuditorFigures()
        self.child: Child | None = None

    def start(self) -> AuditorProbe:
        port = free_port()
        env = {**self.rig.auditor_env, "SHAREBUS_AUDITOR_METRICS_PORT": str(port)}
        url = f"http://127.0.0.1:{port}/metrics"
        self.child = start_child("auditor", "sharebus_audit", env, self.rig.work / "auditor.log", url, 120)
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()

    def lag(self) -> int:
        topics = self.rig.topics
        ends = sum(tp.offset for tp in high_watermarks(self.rig.access, topics.audit_facts))
        done = committed_offsets(self.rig.access, topics.auditor_app_id, [topics.audit_facts])
        return ends - sum(done.values())

    def drained(self) -> None:
        self.figures.lag_when_drained.append(self.lag())

    def steady_started(self) -> None:
        self.figures.steady_lag_start.append(self.lag())

    def steady_ended(self) -> None:
        self.figures.steady_lag_end.append(self.lag())

    def catch_up(self, timeout_s: float = 600.0, *, record: bool = True) -> None:
        """Waits until the auditor has chained every fact (after the router stopped); records how long
        unless ``record`` is False (a warm-up round's)."""
        start = time.monotonic()
        while self.lag() > 0:
            if time.monotonic() - start > timeout_s or (self.child is not None and not self.child.alive()):
                raise SystemExit(f"the auditor did not catch up within {timeout_s:.0f} s: lag {self.lag()}")
            time.sleep(0.5)
        if not record:
            return
        self.figures.catch_up_s.append(time.monotonic() - start)
        self.figures.facts_messages.append(
            sum(tp.offset for tp in high_watermarks(self.rig.access, self.rig.topics.audit_facts))
        )
