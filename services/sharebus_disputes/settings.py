"""Settings of the dispute service (run inside the gateway). Env prefix ``SHAREBUS_DISPUTES_``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field

from sharebus_core.settings import REPO_ROOT, BusSettings, shared_config
from sharebus_rules.disputes import DEFAULT_DEADLINE_WORKING_DAYS


class DisputeSettings(BusSettings):
    model_config = shared_config("SHAREBUS_DISPUTES_")

    # The provider's time to answer, in working days (Monday to Friday).
    deadline_working_days: int = Field(default=DEFAULT_DEADLINE_WORKING_DAYS, ge=1, le=60)
    # Where the on-disk index of deliveries (record id, consumer) lives, one SQLite file per namespace.
    # A cache of the audit trail: deleting it costs one re-read of the trail, nothing else.
    index_dir: Path = REPO_ROOT / "var" / "disputes"
    # How often open disputes are checked against their deadline (overdue escalation).
    overdue_check_s: float = Field(default=30.0, gt=0)
    # On a miss, how long to wait for the index to catch up with the audit trail's end before answering:
    # a record received a moment ago may not be chained and indexed yet.
    index_wait_s: float = Field(default=10.0, ge=0)
    # Audit events read per SQLite transaction while indexing.
    index_batch: int = Field(default=2000, ge=1)
    # The injectable clock (``sharebus_core.clock.Clock``): seconds of skew read from this file.
    clock_skew_file: Path | None = None

    @property
    def deadline_zone(self) -> dt.tzinfo:
        """Whose calendar says which days are working days: SHAREBUS_DISPUTES_DEADLINE_TIMEZONE, else the bus's
        SHAREBUS_DEADLINE_TIMEZONE (``BusSettings``)."""
        return self.disputes_deadline_zone
