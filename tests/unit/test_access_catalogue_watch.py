"""The reconciler's catalogue watcher outlives what a pass meets (``sharebus_access.watch``).

It runs in the service's main thread with nothing around it: before, an editor's temporary file that
vanished between the directory's listing and its ``stat`` raised FileNotFoundError out of it, and the
reconciler process ended. Now such a file is skipped, and any other error of a pass is logged, counted,
shown on ``/readyz`` and tried again at the next pass. No sleeps: passes are called one by one.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sharebus_access.reconcile import Health
from sharebus_access.server import health_body
from sharebus_access.watch import CatalogueWatch, catalogue_fingerprint, district_dirs


def vanishing_after_listing(monkeypatch: pytest.MonkeyPatch, victim: Path) -> None:
    """``victim`` is removed right after the listing saw it, as an editor removes its swap file."""
    real_is_file = Path.is_file

    def is_file_then_gone(self: Path) -> bool:
        found = real_is_file(self)
        if self == victim and found:
            self.unlink()
        return found

    monkeypatch.setattr(Path, "is_file", is_file_then_gone)


def test_a_file_removed_between_the_listing_and_its_stat_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = tmp_path / "catalogue.yaml"
    kept.write_text("x")
    swap = tmp_path / ".catalogue.yaml.swp"
    swap.write_text("editor")
    vanishing_after_listing(monkeypatch, swap)
    fingerprint = catalogue_fingerprint(tmp_path)
    assert [name for name, _, _ in fingerprint] == [str(kept)]


class Counting:
    def __init__(self) -> None:
        self.pokes = 0

    def __call__(self) -> None:
        self.pokes += 1


def test_a_failed_pass_is_reported_and_the_next_pass_sees_the_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "catalogue.yaml").write_text("x")
    poke, registry, clock = Counting(), CollectorRegistry(), iter(float(t) for t in range(100, 200))
    watch = CatalogueWatch(tmp_path, poke, registry, now=lambda: next(clock))
    assert watch.check(report_change=False)
    assert poke.pokes == 0

    def broken(self: Path, pattern: str) -> list[Path]:
        raise FileNotFoundError(2, "No such file or directory", str(self / "avro"))  # a subdirectory, gone

    with monkeypatch.context() as patch:
        patch.setattr(Path, "rglob", broken)
        (tmp_path / "catalogue.yaml").write_text("changed while the watcher could not look")
        assert not watch.check()
    health = watch.health()
    assert health.failing
    assert health.failures == 1
    assert health.last_error is not None
    assert "FileNotFoundError" in health.last_error
    assert registry.get_sample_value("sharebus_acl_catalogue_watch_errors_total") == 1
    ready = Health(1, 1.0, None, None, None)
    assert health_body(ready, health)["catalogue_watch"] == health.body()
    assert health_body(ready, health)["ready"] is True  # the timer still checks the ACLs

    assert watch.check()
    assert poke.pokes == 1  # the change made while failing is not lost
    assert not watch.health().failing
    assert watch.check()
    assert poke.pokes == 1


def test_the_watch_loop_keeps_running_through_a_failing_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's main loop: a pass that raises does not end it; only ``stop`` does."""
    (tmp_path / "catalogue.yaml").write_text("x")
    stop = threading.Event()
    watch = CatalogueWatch(tmp_path, lambda: None, CollectorRegistry())
    calls = 0

    def failing_then_stop(directory: Path) -> tuple[tuple[str, int, int], ...]:
        nonlocal calls
        calls += 1
        if calls >= 3:
            stop.set()
        raise PermissionError(13, "Permission denied", str(directory))

    monkeypatch.setattr("sharebus_access.watch.catalogue_fingerprint", failing_then_stop)
    watch.run(0.0, stop)
    assert calls == 3
    assert watch.health().failures == 3


def test_a_change_in_a_districts_catalogue_is_a_change_of_the_citys(tmp_path: Path) -> None:
    """The city's catalogue takes in its districts' (and with them which topics MirrorMaker 2 may
    keep): a district's file changing is seen as the city's files changing are."""
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "federation"
    shutil.copytree(fixtures, tmp_path, dirs_exist_ok=True)
    city, district = tmp_path / "city", tmp_path / "yubei"
    assert district_dirs(city) == (district.resolve(),)
    assert district_dirs(district) == ()
    poke = Counting()
    watch = CatalogueWatch(city, poke, CollectorRegistry())
    assert watch.check(report_change=False)
    assert watch.check()
    assert poke.pokes == 0
    with (district / "catalogue.yaml").open("a", encoding="utf-8") as file:
        file.write("# yb-tax moves to the city next month\n")
    assert watch.check()
    assert poke.pokes == 1
    (district / "catalogue.yaml").unlink()  # gone: the catalogue no longer loads, and that is a change too
    assert watch.check()
    assert poke.pokes == 2
