"""Schema compatibility under the seven Confluent levels, decided by Apache Avro's resolution checker.

BACKWARD: the new schema, as reader, can read data written with the old one. FORWARD: the old schema
can read data written with the new one. FULL: both. The ``_TRANSITIVE`` levels check against every
live version instead of only the latest.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from sharebus_registry.errors import InvalidCompatibilityLevel


class CompatibilityLevel(enum.StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def checks_backward(self) -> bool:
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def checks_forward(self) -> bool:
        return self.value.startswith(("FORWARD", "FULL"))


DEFAULT_LEVEL = CompatibilityLevel.BACKWARD


def parse_level(value: object) -> CompatibilityLevel:
    if isinstance(value, str):
        try:
            return CompatibilityLevel(value.strip().upper())
        except ValueError:
            pass
    raise InvalidCompatibilityLevel(value)


@dataclass(frozen=True, slots=True)
class ExistingVersion:
    version: int
    schema: Any
    """A parsed ``avro.schema.Schema``."""


@dataclass(frozen=True, slots=True)
class CompatibilityResult:
    messages: tuple[str, ...] = ()

    @property
    def is_compatible(self) -> bool:
        return not self.messages


def reader_problems(reader: Any, writer: Any) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer`` (empty when it can)."""
    # avro's checker has no annotations; its result is used through known attributes only.
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted({kind.name.upper() for kind in result.incompatibilities})) or "INCOMPATIBLE"
    where = ", ".join(sorted(result.locations))
    details = "; ".join(sorted(result.messages))
    return [f"{kinds} at '{where}': {details}" if details else f"{kinds} at '{where}'"]


def check_compatibility(
    level: CompatibilityLevel, candidate: Any, existing: Sequence[ExistingVersion]
) -> CompatibilityResult:
    """Checks ``candidate`` against the live versions ``existing`` (oldest first) under ``level``.

    Non-transitive levels look only at the last of ``existing``; to check against one chosen
    version, pass just that one.
    """
    if level is CompatibilityLevel.NONE or not existing:
        return CompatibilityResult()
    targets = existing if level.transitive else existing[-1:]
    messages: list[str] = []
    # Newest first, as Confluent reports them.
    for old in reversed(targets):
        if level.checks_backward:
            messages += [
                f"BACKWARD: the new schema cannot read data written with version {old.version}: {problem}"
                for problem in reader_problems(candidate, old.schema)
            ]
        if level.checks_forward:
            messages += [
                f"FORWARD: version {old.version} cannot read data written with the new schema: {problem}"
                for problem in reader_problems(old.schema, candidate)
            ]
    return CompatibilityResult(tuple(messages))
