"""Settings of ``sharebus report`` (env prefix ``SHAREBUS_REPORT_``, plus the shared ``SHAREBUS_*``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from sharebus_core.settings import REPO_ROOT, BusSettings, shared_config
from sharebus_rules.grant_workflow import DEFAULT_ANSWER_DEADLINE_WORKING_DAYS


class ReportSettings(BusSettings):
    model_config = shared_config("SHAREBUS_REPORT_")

    timezone: str = Field(default="Asia/Shanghai", description="where periods begin and end (local midnights)")
    window_grace_hours: float = Field(
        default=1.0, gt=0, description="a periodic window released later than this after its end is overdue"
    )
    grant_deadline_working_days: int = Field(
        default=DEFAULT_ANSWER_DEADLINE_WORKING_DAYS, ge=1, description="a provider answers an application in this"
    )
    dedupe_window: int = Field(
        default=100_000, ge=0, description="per audit partition, how many recent decisions a repeat is looked for in"
    )
    out_dir: Path = Field(default=REPO_ROOT / "var" / "reports", description="where `sharebus report` writes")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def grace(self) -> dt.timedelta:
        return dt.timedelta(hours=self.window_grace_hours)
