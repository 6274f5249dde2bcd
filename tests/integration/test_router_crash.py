"""At-least-once across a killed router: every record arrives after a restart; repeats are deduplicated."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import FIXTURE_CATALOGUE, Bus
from tests.support.kafka import end_offsets, eventually, metric
from tests.support.records import ENTERPRISE, publish_enterprises
from tests.support.registry import RegistryProcess
from tests.support.router import start_router
from tests.support.subscribe import collect

COUNT = 3000


def test_a_killed_router_loses_nothing(bus: Bus, shared_registry: RegistryProcess, tmp_path: Path) -> None:
    half = COUNT // 2
    publish_enterprises(bus.settings, range(half))
    routed = eventually(
        lambda: metric(bus.router.metrics_url, "sharebus_records_received_total"), lambda v: v >= COUNT // 4
    )
    assert routed >= COUNT // 4
    # SIGKILL: no flush, no commit, no goodbye to the group. The second half is published while no
    # router runs, so the kill always falls mid-stream.
    assert bus.router.service.kill() == -9
    publish_enterprises(bus.settings, range(half, COUNT))

    replacement = start_router(
        bus.services["router"], bus.namespace, shared_registry.url, FIXTURE_CATALOGUE, tmp_path / "replacement"
    )
    try:
        received = collect(bus.settings, "tax-levy", COUNT, idle_timeout_s=60)
        duplicates = received.duplicates
        seqs = sorted(v["seq"] for v in received.values)
        missing = sorted(set(range(COUNT)) - set(seqs))
        assert not missing, (
            f"{len(missing)} records never arrived (first {missing[:10]}); the source holds "
            f"{end_offsets(bus.access, bus.topics.source(ENTERPRISE))}, tax-levy's delivery topic "
            f"{end_offsets(bus.access, bus.topics.delivery('tax-levy'))}, the dead letters "
            f"{end_offsets(bus.access, bus.topics.dead_letter)}; the replacement router counted "
            f"{metric(replacement.metrics_url, 'sharebus_records_received_total')} received, "
            f"{metric(replacement.metrics_url, 'sharebus_records_total')} delivered (all systems); its log ends:\n"
            f"{replacement.service.tail(60)}\nthe killed router's log ends:\n{bus.router.service.tail(40)}"
        )
        assert seqs == list(range(COUNT))
        written = end_offsets(bus.access, bus.topics.delivery("tax-levy"))
        # Records routed but not committed before the kill are routed again: repeats, never gaps,
        # and the subscriber hands each record out once.
        assert written >= COUNT
        assert duplicates <= written - COUNT
    finally:
        replacement.stop()
