from __future__ import annotations


class ProvisionError(RuntimeError):
    """Topics or schemas could not be provisioned; the message says what and why."""
