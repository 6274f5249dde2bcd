"""The schema follower: both directions' imports (``sync_schemas``) every second, in a thread of its own.

Each pass first reads both registries' own id ranges and imports nothing while they overlap (or one
cannot be read): an id must mean one schema on both buses. Then each direction runs on its own, and
within one a refused version is only that version's loss: it is logged when it starts being refused,
counted, shown in ``health()``, and tried again on the next pass, while every other version, and the
other direction, is still imported. Before, one refusal ended the pass, every pass: the down imports
stopped for good and the district's subscribers skipped the city's records as undecodable.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sharebus_federation.ranges import IdRange, IdRangeError, disjoint_ranges
from sharebus_federation.schemas import Refusal, RegistryEnd, SchemaImportError, sync_schemas

log = logging.getLogger(__name__)

UP, DOWN = "up", "down"
DIRECTIONS = (UP, DOWN)
# The refused versions /healthz lists (all of them are counted).
_HEALTH_REFUSALS = 20

RefusalKey = tuple[str, str, int, int]  # direction, subject, version, id


@dataclass(frozen=True, slots=True)
class FollowerState:
    """What the last pass found, replaced whole at the end of each pass (read by other threads)."""

    passes: int = 0
    ranges: tuple[IdRange, IdRange] | None = None  # city's, district's
    range_error: str | None = None
    errors: tuple[tuple[str, str], ...] = ()  # (direction, why it could not run)
    refused: tuple[tuple[str, Refusal], ...] = ()  # (direction, the version refused)

    @property
    def last_error(self) -> str | None:
        """One line for the last pass's trouble, or None when it imported everything it should."""
        if self.range_error is not None:
            return self.range_error
        if self.errors:
            return "; ".join(f"{direction}: {error}" for direction, error in self.errors)
        if self.refused:
            direction, first = self.refused[0]
            return (
                f"{len(self.refused)} schema version(s) refused, retried every pass; first: {direction} "
                f"{first.subject} v{first.version} id {first.schema_id}: {first.reason}"
            )
        return None


class SchemaFollower:
    """Imports the district's federated subjects into the city's registry (up) and the city's projections
    for the district's systems into the district's (down), ids kept; ``district`` names it in messages."""

    def __init__(
        self,
        city: RegistryEnd,
        district: RegistryEnd,
        up: tuple[str, ...],
        down: tuple[str, ...],
        *,
        district_code: str = "district",
        every_s: float = 1.0,
    ) -> None:
        self.city, self.district, self.up, self.down = city, district, up, down
        self.district_code = district_code
        self.every_s = every_s
        self.imported = 0
        self.refusals_total = dict.fromkeys(DIRECTIONS, 0)
        self.state = FollowerState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="schema-follower", daemon=True)

    @property
    def passes(self) -> int:
        return self.state.passes

    @property
    def last_error(self) -> str | None:
        return self.state.last_error

    @property
    def healthy(self) -> bool:
        """A pass has run, over disjoint ranges, and imported every version it should have."""
        state = self.state
        return state.passes > 0 and state.last_error is None

    def run_once(self) -> int:
        """One pass; how many versions it imported. Never raises for a registry's refusal or absence:
        those are in ``state`` (and logged) and tried again on the next pass."""
        try:
            ranges = disjoint_ranges(self.city, self.district, self.district_code)
        except IdRangeError as exc:
            self._finish(FollowerState(self.state.passes + 1, range_error=str(exc)), 0)
            return 0
        imported = 0
        errors: list[tuple[str, str]] = []
        refused: list[tuple[str, Refusal]] = []
        # Up: only ids of the district's own range (or ids the city holds already) go to the city.
        for direction, source, target, prefixes, own_ids in (
            (UP, self.district, self.city, self.up, ranges[1]),
            (DOWN, self.city, self.district, self.down, None),
        ):
            try:
                result = sync_schemas(source, target, prefixes, own_ids)
            except SchemaImportError as exc:
                errors.append((direction, str(exc)))
                continue
            imported += result.imported
            refused += [(direction, refusal) for refusal in result.refused]
        self._finish(FollowerState(self.state.passes + 1, ranges, None, tuple(errors), tuple(refused)), imported)
        return imported

    def _finish(self, state: FollowerState, imported: int) -> None:
        """Publishes a pass's state; logs what started or stopped going wrong since the last one (a
        refusal that lasts is logged once, not every second)."""
        before = self.state
        if state.range_error is not None and state.range_error != before.range_error:
            log.error("district %s: %s", self.district_code, state.range_error)
        for direction, error in state.errors:
            if (direction, error) not in before.errors:
                log.warning(
                    "district %s, %s: %s (retried every %gs)", self.district_code, direction, error, self.every_s
                )
        old = {_key(d, r) for d, r in before.refused}
        new = {_key(d, r) for d, r in state.refused}
        for direction, refusal in state.refused:
            if _key(direction, refusal) not in old:
                log.error(
                    "district %s, %s: import of %s v%d id %d refused (retried every %gs): %s",
                    self.district_code,
                    direction,
                    refusal.subject,
                    refusal.version,
                    refusal.schema_id,
                    self.every_s,
                    refusal.reason,
                )
        for direction, subject, version, schema_id in sorted(old - new):
            log.info(
                "district %s, %s: %s v%d id %d no longer refused",
                self.district_code,
                direction,
                subject,
                version,
                schema_id,
            )
        with self._lock:
            self.imported += imported
            for direction, _refusal in state.refused:
                self.refusals_total[direction] += 1
            self.state = state

    def health(self) -> dict[str, object]:
        """The follower's own health, for ``/healthz`` (as Karapace reports its schema reader's)."""
        with self._lock:
            state, imported, refusals = self.state, self.imported, dict(self.refusals_total)
        return {
            "healthy": state.passes > 0 and state.last_error is None,
            "passes": state.passes,
            "imported": imported,
            "id_ranges": (
                {"city": str(state.ranges[0]), "district": str(state.ranges[1])} if state.ranges is not None else None
            ),
            "range_error": state.range_error,
            "errors": dict(state.errors),
            "refused_now": len(state.refused),
            "refusals_total": refusals,
            "refused": [
                {"direction": d, "subject": r.subject, "version": r.version, "id": r.schema_id, "reason": r.reason}
                for d, r in state.refused[:_HEALTH_REFUSALS]
            ],
        }

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.run_once()

    def start(self) -> SchemaFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started (the service stops one that never was, on a range refusal)
            self._thread.join(timeout=30)


def _key(direction: str, refusal: Refusal) -> RefusalKey:
    return direction, refusal.subject, refusal.version, refusal.schema_id


__all__ = ["DIRECTIONS", "DOWN", "UP", "FollowerState", "SchemaFollower"]
