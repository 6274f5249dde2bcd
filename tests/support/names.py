"""Fresh names so tests can share one broker without seeing each other's topics or groups."""

from __future__ import annotations

import uuid


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
