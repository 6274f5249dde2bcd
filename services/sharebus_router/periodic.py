"""The hold-and-release state machine of periodic classes, without Kafka or Faust.

Records of a periodic class are appended to the held topic (keyed by class code, so one class's
records share a partition and keep their order), and the router's timer appends a *release
marker* when a window has ended. A window's batch is exactly the class's records between the
previous marker and this one. Membership therefore follows the log, not a clock: a restarted or
replaying router cuts the same batches from the same log.

The durable state per class (a Faust table backed by its changelog topic) is small: the open
window and the held offset where it began. The records stay in the held topic.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sharebus_core.catalogue.models import UpdatePolicy
from sharebus_core.topics import class_slug
from sharebus_rules.periods import Window, next_window, window_containing


class MarkerKind(StrEnum):
    # Starts the first window of a class that has no state yet (so empty windows are released too).
    OPEN = "open"
    # The window named by the marker has ended: release the records before the marker.
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class HoldState:
    window: Window
    # The held partition of the class, and the first offset in it that belongs to the open window.
    partition: int
    since: int
    # Once the ended window's audit facts are acknowledged: the targets they name as delivered (release.py's
    # plan), so that a retried release sends exactly those deliveries and audits nothing again.
    audited: tuple[str, ...] | None = None
    # With ``audited``: the end of the held offsets those facts cover (the first release marker's). A retry
    # is triggered by a later marker; the records held between the two belong to the next window, and no
    # fact names them.
    upto: int | None = None
    # With ``audited``: the plan's targets settled by an attempt: their batch acknowledged by Kafka, or (on a
    # retry, the target's grant revoked or expired since the facts) the fact withdrawing their deliveries
    # acknowledged. A retry neither sends to them nor counts them again.
    done: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        start, end = self.window.start.isoformat(), self.window.end.isoformat()
        data: dict[str, Any] = {"start": start, "end": end, "partition": self.partition, "since": self.since}
        if self.audited is not None:
            data["audited"] = list(self.audited)
        if self.upto is not None:
            data["upto"] = self.upto
        if self.done:
            data["done"] = list(self.done)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HoldState:
        window = Window(dt.datetime.fromisoformat(data["start"]), dt.datetime.fromisoformat(data["end"]))
        audited = data.get("audited")
        plan = tuple(str(name) for name in audited) if audited is not None else None
        upto = data.get("upto")
        done = tuple(str(name) for name in data.get("done") or ())
        return cls(
            window, int(data["partition"]), int(data["since"]), plan, int(upto) if upto is not None else None, done
        )


@dataclass(frozen=True, slots=True)
class Release:
    """Release the window's batch: held offsets [since, upto) of the class; then continue with ``after``."""

    window: Window
    since: int
    upto: int
    after: HoldState


def on_record(
    state: HoldState | None, partition: int, offset: int, policy: UpdatePolicy, now: dt.datetime
) -> HoldState | None:
    """The new state when a held record arrives, or None when the state does not change (the usual case)."""
    if state is not None:
        return None
    return HoldState(window_containing(policy, now), partition, offset)


def on_open(state: HoldState | None, window: Window, partition: int, offset: int) -> HoldState | None:
    if state is not None:
        return None
    return HoldState(window, partition, offset + 1)


def on_release(
    state: HoldState | None, window_id: str, offset: int, policy: UpdatePolicy, now: dt.datetime
) -> Release | None:
    """None when the marker is stale: its window was released already (a replayed or repeated marker)."""
    if state is None or state.window.window_id != window_id:
        return None
    following = next_window(policy, state.window)
    if following.end <= now:
        # The router was away for more than a window: this batch has what was held before its marker
        # (records published while the router was away may follow the marker and go out with a later
        # window), and holding resumes in the window of now rather than releasing a run of empty batches.
        following = window_containing(policy, now)
    # A retry after the facts were acknowledged releases exactly what they cover, not up to its own marker.
    upto = state.upto if state.audited is not None and state.upto is not None else offset
    return Release(state.window, state.since, upto, HoldState(following, state.partition, upto + 1))


def due_marker(state: HoldState | None, policy: UpdatePolicy, now: dt.datetime) -> tuple[MarkerKind, Window] | None:
    """What the timer should append for a class now, if anything."""
    if state is None:
        return MarkerKind.OPEN, window_containing(policy, now)
    if state.window.end <= now:
        return MarkerKind.RELEASE, state.window
    return None


def batch_id(class_code: str, window: Window) -> str:
    """``301001004.000001@2026-11-22T02:00:00+08:00``: readable, and safe in a URL path (no ``/``)."""
    return f"{class_slug(class_code)}@{window.start.isoformat()}"
