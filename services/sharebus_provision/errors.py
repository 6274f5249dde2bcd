from __future__ import annotations

from sharebus_core.errors import SharebusError


class ProvisionError(SharebusError, RuntimeError):
    """Topics or schemas could not be provisioned; the message says what and why."""
