"""A bounded memory of recent record ids, to drop the repeats of at-least-once delivery.

The router may deliver a record twice after a crash (``docs/reference.md``, "Processing guarantee"), always with
the same ``sharebus-record-id``. Every edge that hands records out (the SDK Subscriber, the gateway's
feeds and batch downloads) remembers the last ``window`` ids it handed out and drops a repeat.
"""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    def __init__(self, window: int) -> None:
        self.window = window
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.repeats = 0

    def is_repeat(self, record_id: str | None) -> bool:
        """True for an id seen within the window (counted in ``repeats``); otherwise remembers it.
        A record without an id is never a repeat: there is nothing to tell it by."""
        if record_id is None or self.window <= 0:
            return False
        if record_id in self._ids:
            self.repeats += 1
            return True
        self._ids[record_id] = None
        if len(self._ids) > self.window:
            self._ids.popitem(last=False)
        return False
