"""The sink's errors; all descend from SharebusError."""

from __future__ import annotations

from sharebus_core.errors import SharebusError


class LandError(SharebusError, RuntimeError):
    """The sink cannot go on (a database or Kafka failure it must not paper over)."""


class IncompatibleSchema(SharebusError, ValueError):
    """A delivered schema changed a landed column in a way the table cannot follow; its class stops."""


class ThemeInvalid(SharebusError, ValueError):
    """A theme table's classes cannot share one table (no common key, unknown class)."""


class DatabaseUrlInvalid(SharebusError, ValueError):
    """The database URL names no database SQLAlchemy can drive (a typo, or a driver not installed)."""
