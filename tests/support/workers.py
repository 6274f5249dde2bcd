"""Several router workers in one namespace, and a publisher that keeps records flowing while they change."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from sharebus_core.catalogue import Catalogue
from sharebus_core.settings import BusSettings
from sharebus_sdk import Publisher, PublisherSettings
from tests.support.router import RouterProcess
from tests.support.scrape import scraped


class Flow:
    """Publishes records of one class as AMR, one after another in a thread, until stopped.

    ``next`` is the seq of the next record; every record below it was published (and acknowledged).
    """

    def __init__(
        self,
        settings: BusSettings,
        catalogue: Catalogue,
        class_code: str,
        make: Callable[[int], dict[str, Any]],
        first: int = 0,
        pause_s: float = 0.002,
    ) -> None:
        self.settings, self.catalogue, self.class_code, self.make = settings, catalogue, class_code, make
        self.next = first
        self.pause_s = pause_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            with Publisher("AMR", PublisherSettings.model_validate(self.settings.model_dump()), self.catalogue) as pub:
                while not self._stop.is_set():
                    pub.publish(self.class_code, self.make(self.next))
                    self.next += 1
                    self._stop.wait(self.pause_s)
        except Exception as exc:  # noqa: BLE001 - any failure is raised again in the test on exit
            self.error = exc

    def __enter__(self) -> Flow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        if self.error is not None:
            raise AssertionError(f"the publisher failed: {self.error!r}") from self.error


def readyz(router: RouterProcess) -> dict[str, Any]:
    """The worker's /readyz body (also when it answers 503)."""
    body: dict[str, Any] = scraped(f"{router.base_url}/readyz").json()
    return body


def serving(routers: list[RouterProcess], predicate: Callable[[dict[str, Any]], bool]) -> RouterProcess | None:
    """The worker whose /readyz satisfies ``predicate`` (its assignment), if one does."""
    for router in routers:
        try:
            if predicate(readyz(router)):
                return router
        except httpx.HTTPError:
            continue
    return None
