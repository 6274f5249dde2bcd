"""A data class's quality rules, as the catalogue declares them (``quality:`` on a data class).

Each rule names one field and one kind of check; the class says what a failure means
(``on_failure``: ``reject`` sends the record to the dead-letter topic, ``flag`` delivers it with a
``sharebus-quality`` header), and a rule may say otherwise for itself. A rule's id is
``<field>:<kind>``: stable across catalogue edits, short enough for a header, a dead-letter reason
and an audit event. The checks themselves are pure functions in ``sharebus_rules.quality``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

ClassCode = Annotated[str, StringConstraints(pattern=r"^[1-3]\d{8}/\d{6}$")]
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class RuleKind(StrEnum):
    REQUIRED = "required"  # present, not null, not empty (a string of only blanks is empty)
    USCC = "uscc"  # unified social credit code, GB 32100-2015 check character
    RESIDENT_ID = "resident_id"  # resident ID number, GB 11643-1999 check character
    REGEX = "regex"  # the whole value matches ``pattern``
    ENUM = "enum"  # one of ``values``
    RANGE = "range"  # ``min`` <= value <= ``max`` (either may be left out)
    NOT_FUTURE = "not_future"  # a date or timestamp not after now (plus the bus's clock tolerance)
    REFERENCE = "reference"  # a key of another data class (``data_class``), as published


def a_rule(kind: RuleKind) -> str:
    """'an enum', 'a uscc': for messages."""
    return f"{'an' if kind is RuleKind.ENUM else 'a'} {kind.value}"


class OnFailure(StrEnum):
    REJECT = "reject"
    FLAG = "flag"


class QualityRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: FieldName
    kind: RuleKind
    pattern: str | None = None
    values: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    data_class: ClassCode | None = None
    # None: the class's on_failure.
    on_failure: OnFailure | None = None

    @property
    def rule_id(self) -> str:
        return f"{self.field}:{self.kind.value}"

    @model_validator(mode="after")
    def _parameters_fit_kind(self) -> QualityRule:
        wanted = {
            RuleKind.REGEX: {"pattern"},
            RuleKind.ENUM: {"values"},
            RuleKind.RANGE: {"min", "max"},
            RuleKind.REFERENCE: {"data_class"},
        }.get(self.kind, set())
        given = {name for name in ("pattern", "values", "min", "max", "data_class") if getattr(self, name) is not None}
        if given - wanted:
            raise ValueError(f"{a_rule(self.kind)} rule takes no {', '.join(sorted(given - wanted))}")
        if self.kind is RuleKind.RANGE:
            if self.min is None and self.max is None:
                raise ValueError("a range rule needs min, max or both")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"min {self.min} is above max {self.max}")
        elif wanted and not given:
            raise ValueError(f"{a_rule(self.kind)} rule needs {' and '.join(sorted(wanted))}")
        if self.kind is RuleKind.ENUM and not self.values:
            raise ValueError("an enum rule needs at least one value")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a regular expression: {exc}") from exc
        return self


class QualityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    on_failure: OnFailure = OnFailure.FLAG
    rules: tuple[QualityRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> QualityPolicy:
        ids = [r.rule_id for r in self.rules]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"rule id(s) {', '.join(repeated)} declared more than once (one rule per field and kind)")
        return self

    def outcome(self, rule: QualityRule) -> OnFailure:
        return rule.on_failure or self.on_failure
