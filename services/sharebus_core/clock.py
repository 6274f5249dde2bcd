"""The bus's clock: wall time, optionally skewed by a number of seconds read from a file.

The skew file lets tests and release drills move a running router through periods without
waiting for them; it is re-read on ``refresh()`` (the router does so every second), never per
record. Without a file the clock is the system's.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


class Clock:
    def __init__(self, skew_file: Path | None = None) -> None:
        self.skew_file = skew_file
        self.skew_s = 0.0
        self.refresh()

    def refresh(self) -> None:
        if self.skew_file is None:
            return
        try:
            text = self.skew_file.read_text().strip()
        except FileNotFoundError:
            text = ""
        try:
            skew = float(text) if text else 0.0
        except ValueError:
            log.warning("ignoring clock skew file %s: %r is not a number of seconds", self.skew_file, text)
            return
        if skew != self.skew_s:
            log.warning("clock skew is now %+.1f s (from %s)", skew, self.skew_file)
            self.skew_s = skew

    def time(self) -> float:
        return time.time() + self.skew_s

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), dt.UTC)
