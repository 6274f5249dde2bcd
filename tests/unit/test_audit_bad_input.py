"""Audit input that is not what sharebus writes (too deeply nested, a lone surrogate, a time with no time
zone): skipped or reported as broken, never a traceback that ends the auditor or the CLI."""

from __future__ import annotations

import pytest

from sharebus_audit.facts import UNREADABLE, fact_bodies


@pytest.mark.parametrize("depth", [1_023, 2_000, 100_000])
def test_a_deeply_nested_facts_message_is_unreadable_not_a_crash(depth: int) -> None:
    """Past orjson's 1024 levels the message went to json, whose RecursionError was not one of
    UNREADABLE: it ended the auditor, and again on every restart (docs/audit.md: skipped whole)."""
    nested = b"[" * depth + b"]" * depth
    value = b'{"records":[{"time":1.5,"decisions":[{"decision":"deliver"}],"x":' + nested + b"}]}"
    with pytest.raises(UNREADABLE):
        fact_bodies(value, 0)
