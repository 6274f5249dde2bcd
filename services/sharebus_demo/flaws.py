"""Rule-breaking records for the demo: a careless provider now and then breaks one of its class's rules.

So that ``make run`` shows both quality paths: a record breaking a ``reject`` rule ends in the
dead-letter topic (reason ``quality:<rule>``), one breaking a ``flag`` rule reaches its subscribers
with the ``sharebus-quality`` header. Pure: the record and the rule in, the broken record out.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

from sharebus_core.catalogue.quality import QualityRule, RuleKind
from sharebus_rules.check_digits import USCC_CHARSET, resident_id_check_char, uscc_check_char

FAR_FUTURE = dt.date(2099, 1, 1)


def _wrong_check(value: Any, fallback: str, charset: str, check: Callable[[str], str]) -> str:
    """The same code (or a well-formed stand-in) with a wrong check character."""
    body = str(value)[:17] if isinstance(value, str) and len(value) == 18 else fallback
    try:
        right = check(body)
    except ValueError:
        body, right = fallback, check(fallback)
    return body + next(c for c in charset if c != right)


def broken_value(rule: QualityRule, value: Any) -> Any:
    """A value of the same type that fails ``rule``."""
    kind = rule.kind
    if kind is RuleKind.USCC:
        return _wrong_check(value, "91500101MA5U00000", USCC_CHARSET, uscc_check_char)
    if kind is RuleKind.RESIDENT_ID:
        return _wrong_check(value, "50010119900101123", "0123456789X", resident_id_check_char)
    if kind is RuleKind.REQUIRED:
        return "" if isinstance(value, str) or value is None else None
    if kind is RuleKind.ENUM:
        return "unknown-" + "".join(rule.values or ())[:8]
    if kind is RuleKind.RANGE:
        wrong = rule.max + 1 if rule.max is not None else (rule.min or 0) - 1
        return int(wrong) if isinstance(value, int) and not isinstance(value, bool) else float(wrong)
    if kind is RuleKind.NOT_FUTURE:
        if isinstance(value, dt.datetime):
            return dt.datetime.combine(FAR_FUTURE, dt.time(), dt.UTC)
        return FAR_FUTURE
    if kind is RuleKind.REGEX:
        return "\x7f does not match"
    return "no-such-key"  # a reference


def break_one_rule(record: dict[str, Any], rules: tuple[QualityRule, ...], rng: random.Random) -> str:
    """Breaks one of ``rules`` in ``record`` (in place); returns the broken rule's id."""
    rule = rng.choice(rules)
    record[rule.field] = broken_value(rule, record.get(rule.field))
    return rule.rule_id
