"""Quality rules as pure functions: one check per rule kind, compiled once per class, run per record.

A check takes a field's decoded value and says whether it passes. Every kind but ``required`` lets a
missing or null value pass: whether a field must be filled is the ``required`` rule's question, and
asking it once keeps a null from failing five rules at once. No Kafka, no clock of its own (``now``
is injected), no key set of its own (the reference check is given a ``KeyView``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sharebus_core.catalogue.quality import OnFailure, QualityPolicy, QualityRule, RuleKind
from sharebus_rules.check_digits import is_valid_resident_id, is_valid_uscc

Check = Callable[[Any], bool]
# A date is in the future only when it is after today everywhere on Earth (UTC+14): a provider in
# Chongqing (UTC+8) dates a record by its own calendar, which runs ahead of UTC's.
LATEST_ZONE = dt.timedelta(hours=14)
# A timestamp may run this far ahead of the bus's clock before it counts as in the future.
DEFAULT_CLOCK_TOLERANCE = dt.timedelta(minutes=5)


class KeyView(Protocol):
    """The keys of another data class, as the bus last saw them (``sharebus_router.key_views``)."""

    @property
    def ready(self) -> bool:
        """True while the view has caught up with the referenced class's log (and kept within its bound)."""
        ...

    def __contains__(self, key: object) -> bool: ...

    def __len__(self) -> int: ...


def is_filled(value: Any) -> bool:
    """Present and not empty: not null, not a blank string, not an empty array, map or bytes."""
    if value is None:
        return False
    kind = type(value)
    if kind is str:
        return not (value == "" or value.isspace())
    if kind is bytes or kind is list or kind is dict:
        return len(value) > 0
    return True


def check_uscc(value: Any) -> bool:
    return value is None or (isinstance(value, str) and is_valid_uscc(value))


def check_resident_id(value: Any) -> bool:
    return value is None or (isinstance(value, str) and is_valid_resident_id(value))


def regex_check(pattern: str) -> Check:
    compiled = re.compile(pattern)
    return lambda value: value is None or (isinstance(value, str) and compiled.fullmatch(value) is not None)


def enum_check(values: Collection[str]) -> Check:
    allowed = frozenset(values)
    return lambda value: value is None or value in allowed


def range_check(low: float | None, high: float | None) -> Check:
    def check(value: Any) -> bool:
        if value is None:
            return True
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return False
        return (low is None or value >= low) and (high is None or value <= high)

    return check


def not_future_check(now: Callable[[], dt.datetime], tolerance: dt.timedelta = DEFAULT_CLOCK_TOLERANCE) -> Check:
    """Dates against the latest calendar on Earth; timestamps against the clock plus ``tolerance``."""

    def check(value: Any) -> bool:
        if value is None:
            return True
        current = now()
        if isinstance(value, dt.datetime):
            stamp = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
            return stamp <= current + tolerance
        if isinstance(value, dt.date):
            return value <= (current.astimezone(dt.UTC) + LATEST_ZONE).date()
        return False

    return check


def reference_check(view: KeyView) -> Check:
    """The value is a key of the referenced class. Fails closed: while the view has not caught up
    with the referenced class's log it cannot tell, and the record fails the rule."""
    return lambda value: value is None or (view.ready and value in view)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule_id: str
    field: str
    kind: RuleKind
    check: Check
    reject: bool
    # A reference rule: the class whose keys it asks for.
    references: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One record's quality: the rules it failed (in declaration order), the first failed rule whose
    failure rejects it (None: delivered, flagged when ``failed``), and its declared fields filled."""

    failed: tuple[str, ...]
    rejected_by: str | None
    filled: int
    fields: int

    def as_fact(self) -> dict[str, Any]:
        """Contract A: the ``quality`` object of the record's audit fact."""
        return {"failed": list(self.failed), "filled": self.filled, "fields": self.fields}


def compile_rule(
    rule: QualityRule,
    outcome: OnFailure,
    now: Callable[[], dt.datetime],
    views: Mapping[str, KeyView],
) -> CompiledRule:
    kind = rule.kind
    check: Check
    if kind is RuleKind.REQUIRED:
        check = is_filled
    elif kind is RuleKind.USCC:
        check = check_uscc
    elif kind is RuleKind.RESIDENT_ID:
        check = check_resident_id
    elif kind is RuleKind.REGEX:
        check = regex_check(rule.pattern or "")
    elif kind is RuleKind.ENUM:
        check = enum_check(rule.values or ())
    elif kind is RuleKind.RANGE:
        check = range_check(rule.min, rule.max)
    elif kind is RuleKind.NOT_FUTURE:
        check = not_future_check(now)
    else:
        check = reference_check(views[rule.data_class or ""])
    return CompiledRule(rule.rule_id, rule.field, kind, check, outcome is OnFailure.REJECT, rule.data_class)


class ClassRules:
    """A class's rules, compiled once; ``evaluate`` is the per-record cost measured in bench/quality.py.

    Every class has one, with or without rules: completeness (its declared fields filled) is asked of
    every record, so that a provider that leaves fields empty shows even where no rule is declared.
    """

    def __init__(self, rules: Sequence[CompiledRule], fields: Sequence[str]) -> None:
        self.rules = tuple(rules)
        self.fields = tuple(fields)
        # What the per-record loop reads, unpacked once: no attribute lookups per rule and record.
        self._steps = tuple((r.check, r.field, r.rule_id, r.reject) for r in self.rules)

    @classmethod
    def compile(
        cls,
        policy: QualityPolicy | None,
        fields: Sequence[str],
        now: Callable[[], dt.datetime],
        views: Mapping[str, KeyView] | None = None,
    ) -> ClassRules:
        """``fields``: the class's declared fields (its schema's), whose filled share is completeness."""
        if policy is None:
            return cls((), fields)
        found = views or {}
        return cls([compile_rule(r, policy.outcome(r), now, found) for r in policy.rules], fields)

    @property
    def references(self) -> tuple[CompiledRule, ...]:
        return tuple(r for r in self.rules if r.kind is RuleKind.REFERENCE)

    def evaluate(self, record: Mapping[str, Any]) -> Verdict:
        failed: list[str] = []
        rejected_by = None
        get = record.get
        for check, name, rule_id, reject in self._steps:
            if not check(get(name)):
                failed.append(rule_id)
                if reject and rejected_by is None:
                    rejected_by = rule_id
        filled = 0
        for name in self.fields:
            value = get(name)
            # Strings inline (most fields are): this loop runs for every field of every record.
            if type(value) is str:
                filled += not (value == "" or value.isspace())
            elif value is not None and is_filled(value):
                filled += 1
        return Verdict(tuple(failed), rejected_by, filled, len(self.fields))
