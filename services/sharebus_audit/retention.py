"""Whether an audit partition whose chain starts past its first link lost its head to retention. Pure.

With ``SHAREBUS_AUDITOR_RETENTION_HOURS`` finite, Kafka deletes an audit partition's oldest segments,
and its first kept record links to a record that is gone: the chain cannot check that one link. It
cannot tell retention from an administrator's ``kafka-delete-records`` either; both move the log's start.
What can be told apart, and is checked here:

- the trail must say it is kept for a finite time: the auditor signs its retention into every anchor
  (``Anchor.retention_hours``), and the newest valid anchor's statement is the one taken. Kept forever
  (the default), or nothing stated (no anchor, a copy checked by its chain alone, anchors from before
  the field), a removed head is a broken trail;
- retention removes a record only once it is older than the retention: an anchor signed at time T names
  the partition's head then, so every record after that head was written after T. If such records are
  gone while T is younger than the retention, they were deleted, not expired;
- an anchor that names the removed predecessor of the first kept record, with the hash that record links
  to, checks the one link the chain cannot.

Everything from the first kept record on is checked as before (``verify_links`` from its ``prev_hash``).
Left open, and said so in docs/audit.md: an administrator who deletes the oldest records of a partition
together with every anchor naming a head before the cut (the anchors' own oldest records) leaves what
retention would leave; under a finite retention that passes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sharebus_audit.anchors import Anchor

# Record times and anchor times are the auditor's clock, "now" is the verifier's: this much skew between
# the two is not taken for a deletion.
CLOCK_TOLERANCE_S = 600.0


def stated_retention(anchors: Iterable[Anchor]) -> int | None:
    """The retention (hours, -1 forever) the newest anchor that states one signs; None when none does."""
    stating = [a for a in anchors if a.retention_hours is not None]
    return max(stating, key=lambda a: a.anchored_at).retention_hours if stating else None


def _kept_for(retention_hours: int | None) -> str:
    if retention_hours is None:
        return "no signed anchor states a retention, so the trail is taken as kept forever"
    return "the auditor's signed anchors say the trail is kept forever"


def removal_problem(
    partition: int,
    first_offset: int,
    first_prev: str,
    anchors: Iterable[Anchor],
    retention_hours: int | None,
    now: float,
) -> str | None:
    """Why the records before ``first_offset`` (the first kept record, which links to ``first_prev``)
    cannot have been removed by retention; None when they can."""
    if retention_hours is None or retention_hours <= 0:
        return (
            f"the records before offset {first_offset} were removed from the log (its first kept record links "
            f"to one that is gone), but {_kept_for(retention_hours)}: removed by hand, not by retention"
        )
    # A record younger than this was not old enough for retention to remove.
    expired_before = now - retention_hours * 3600 + CLOCK_TOLERANCE_S
    for anchor in anchors:
        for head in anchor.heads:
            if head.partition != partition or head.offset >= first_offset or head.hash == first_prev:
                continue
            if anchor.anchored_at > expired_before:
                since = dt.datetime.fromtimestamp(expired_before, dt.UTC).isoformat(timespec="seconds")
                return (
                    f"records after offset {head.offset}, which an anchor signed at {anchor.when} names as the "
                    f"head, were removed, though the retention ({retention_hours} h) keeps every record "
                    f"written since {since}: deleted, not expired"
                )
    return None


__all__ = ["CLOCK_TOLERANCE_S", "removal_problem", "stated_retention"]
