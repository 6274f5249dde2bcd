"""The catalogue directory watched for a change, for ``python -m sharebus_access``.

The watcher runs in the service's main thread: an error out of it would end the process, and with it
the reconciler. An editor's swap or backup file can vanish between the directory's listing and its
``stat``: such a file is skipped (it is no part of the catalogue). Any other error of a pass (a
subdirectory removed while it is listed, a permission) is logged, counted and tried again at the next
pass; the reconciler keeps its timer meanwhile, so the ACLs are still checked every interval.

A city's catalogue takes in its districts' catalogues (``districts:``, directories beside it), and
with them which topics MirrorMaker 2 may keep (``sharebus_access.mirrors``): their files count too,
both for the watcher and for the service's cached catalogue (``CatalogueFiles``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from sharebus_core.catalogue.loader import CATALOGUE_FILE

try:  # libyaml: a city-size catalogue file takes seconds with the pure-Python loader
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml is part of the PyYAML wheels
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

log = logging.getLogger("sharebus.access")

# Each file's name, size and modification time: changes when any file does.
Fingerprint = tuple[tuple[str, int, int], ...]


def catalogue_fingerprint(directory: Path) -> Fingerprint:
    """Names, sizes and modification times of the catalogue's files, skipping a file that vanishes."""
    found: list[tuple[str, int, int]] = []
    for path in sorted(directory.rglob("*")):
        try:
            if not path.is_file():
                continue
            stat = path.stat()  # once: size and time of the same version of the file
        except FileNotFoundError:
            continue  # removed since the listing (an editor's temporary file)
        found.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def district_dirs(directory: Path) -> tuple[Path, ...]:
    """The existing directories of the districts a city's catalogue names; none when it names none, or
    when the file cannot be read (loading the catalogue says why, and a missing district's too)."""
    try:
        raw = yaml.load((directory / CATALOGUE_FILE).read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ()
    entries = raw.get("districts") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        return ()
    named = {e["catalogue"] for e in entries if isinstance(e, dict) and isinstance(e.get("catalogue"), str)}
    return tuple(sorted(p for p in {(directory / n).resolve() for n in named} if p.is_dir()))


class CatalogueFiles:
    """The fingerprint of a catalogue's files and of its districts' (one user at a time: not locked)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # The districts named, read again only when the catalogue's own files change (a full YAML parse).
        self._districts: tuple[Fingerprint, tuple[Path, ...]] | None = None

    def fingerprint(self) -> Fingerprint:
        own = catalogue_fingerprint(self.directory)
        if self._districts is None or self._districts[0] != own:
            self._districts = (own, district_dirs(self.directory))
        return own + tuple(entry for district in self._districts[1] for entry in catalogue_fingerprint(district))


@dataclass(frozen=True, slots=True)
class WatchHealth:
    passes: int = 0
    failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_success: float | None = None

    @property
    def failing(self) -> bool:
        """The last pass failed: a change is then seen only by the reconciler's timer."""
        return self.last_error_at is not None and (self.last_success is None or self.last_error_at > self.last_success)

    def body(self) -> dict[str, object]:
        return {
            "failing": self.failing,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


class CatalogueWatch:
    """Calls ``on_change`` when a pass finds the directory changed since the last pass that read it."""

    def __init__(
        self,
        directory: Path,
        on_change: Callable[[], None],
        registry: CollectorRegistry = REGISTRY,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.files = CatalogueFiles(directory)
        self.on_change = on_change
        self.now = now
        self.errors = Counter(
            "sharebus_acl_catalogue_watch_errors",
            "Passes of the catalogue watcher that failed (logged; tried again at the next pass)",
            registry=registry,
        )
        self._seen: Fingerprint | None = None
        self._lock = threading.Lock()
        self._health = WatchHealth()

    def check(self, report_change: bool = True) -> bool:
        """One pass; False when it failed. ``report_change=False`` only takes note (the first pass:
        the reconciler runs on start anyway). After a failed first pass, the next that reads counts as a change."""
        try:
            current = self.files.fingerprint()
        except Exception as exc:
            log.warning(
                "cannot look at the catalogue directory %s (%s: %s); trying again at the next pass",
                self.directory,
                type(exc).__name__,
                exc,
                exc_info=True,
            )
            self.errors.inc()
            self._record(f"{type(exc).__name__}: {exc}")
            return False
        if report_change and current != self._seen:
            log.info("the catalogue changed; reconciling the ACLs now")
            self.on_change()
        self._seen = current
        self._record(None)
        return True

    def _record(self, error: str | None) -> None:
        with self._lock:
            h, now = self._health, self.now()
            if error is None:
                self._health = WatchHealth(h.passes + 1, h.failures, h.last_error, h.last_error_at, now)
            else:
                self._health = WatchHealth(h.passes + 1, h.failures + 1, error, now, h.last_success)

    def health(self) -> WatchHealth:
        with self._lock:
            return self._health

    def run(self, every_s: float, stop: threading.Event) -> None:
        """Passes every ``every_s`` until ``stop`` is set; never raises for what a pass meets."""
        self.check(report_change=False)
        while not stop.wait(every_s):
            self.check()


__all__ = ["CatalogueFiles", "CatalogueWatch", "Fingerprint", "WatchHealth", "catalogue_fingerprint", "district_dirs"]
