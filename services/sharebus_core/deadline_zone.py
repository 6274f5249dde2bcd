"""Whose calendar working-day deadlines are counted on: an IANA time zone, the city's by default.

Kept in core (not in ``sharebus_rules``) because every service's settings (``BusSettings``) name it, so
that the grant service, the router's overdue gauge, the portal's days left and the report all count the
same days (``SHAREBUS_DEADLINE_TIMEZONE``).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Working days are the city's: a weekday is Monday to Friday on its calendar, not on UTC's.
DEFAULT_DEADLINE_TIMEZONE = "Asia/Shanghai"


def deadline_zone(name: str = DEFAULT_DEADLINE_TIMEZONE) -> ZoneInfo:
    """The IANA time zone whose calendar working days are counted on; ``ValueError`` for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (an IANA name, e.g. {DEFAULT_DEADLINE_TIMEZONE})") from exc
