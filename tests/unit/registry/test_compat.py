"""Compatibility under each of the seven levels, decided by Apache Avro's checker (no broker)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sharebus_registry.compat import (
    DEFAULT_LEVEL,
    CompatibilityLevel,
    ExistingVersion,
    check_compatibility,
    parse_level,
)
from sharebus_registry.errors import InvalidCompatibilityLevel
from sharebus_registry.schemas import parse


def record(*fields: dict[str, Any]) -> Any:
    return parse(json.dumps({"type": "record", "name": "Person", "namespace": "t", "fields": list(fields)})).avro


A = {"name": "a", "type": "int"}
B_DEFAULT = {"name": "b", "type": "string", "default": ""}
B_REQUIRED = {"name": "b", "type": "string"}

V_A = record(A)
V_AB_DEFAULT = record(A, B_DEFAULT)
V_AB_REQUIRED = record(A, B_REQUIRED)


def compatible(level: CompatibilityLevel, new: Any, *old: Any) -> bool:
    existing = [ExistingVersion(number, schema) for number, schema in enumerate(old, start=1)]
    return check_compatibility(level, new, existing).is_compatible


def test_the_default_level_is_backward() -> None:
    assert DEFAULT_LEVEL is CompatibilityLevel.BACKWARD


@pytest.mark.parametrize("level", list(CompatibilityLevel))
def test_a_first_version_is_compatible_under_every_level(level: CompatibilityLevel) -> None:
    assert compatible(level, V_A)


@pytest.mark.parametrize("level", list(CompatibilityLevel))
def test_an_identical_schema_is_compatible_under_every_level(level: CompatibilityLevel) -> None:
    assert compatible(level, V_AB_REQUIRED, V_AB_REQUIRED)


def test_none_accepts_any_change() -> None:
    string_a = record({"name": "a", "type": "string"})
    assert compatible(CompatibilityLevel.NONE, string_a, V_A)


def test_backward_accepts_adding_a_field_with_a_default() -> None:
    assert compatible(CompatibilityLevel.BACKWARD, V_AB_DEFAULT, V_A)


def test_backward_refuses_adding_a_field_without_a_default() -> None:
    result = check_compatibility(CompatibilityLevel.BACKWARD, V_AB_REQUIRED, [ExistingVersion(1, V_A)])
    assert not result.is_compatible
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in result.messages[0]
    assert "version 1" in result.messages[0]


def test_backward_accepts_removing_a_field() -> None:
    assert compatible(CompatibilityLevel.BACKWARD, V_A, V_AB_REQUIRED)


def test_forward_refuses_removing_a_field_without_a_default() -> None:
    assert not compatible(CompatibilityLevel.FORWARD, V_A, V_AB_REQUIRED)


def test_forward_accepts_removing_a_field_with_a_default() -> None:
    assert compatible(CompatibilityLevel.FORWARD, V_A, V_AB_DEFAULT)


def test_forward_accepts_adding_a_field_without_a_default() -> None:
    assert compatible(CompatibilityLevel.FORWARD, V_AB_REQUIRED, V_A)


def test_full_needs_both_directions() -> None:
    assert compatible(CompatibilityLevel.FULL, V_AB_DEFAULT, V_A)
    assert compatible(CompatibilityLevel.FULL, V_A, V_AB_DEFAULT)
    assert not compatible(CompatibilityLevel.FULL, V_AB_REQUIRED, V_A)
    assert not compatible(CompatibilityLevel.FULL, V_A, V_AB_REQUIRED)


def test_type_promotion_is_backward_but_not_forward_compatible() -> None:
    long_a = record({"name": "a", "type": "long"})
    assert compatible(CompatibilityLevel.BACKWARD, long_a, V_A)
    assert not compatible(CompatibilityLevel.FORWARD, long_a, V_A)


def test_backward_transitive_checks_every_version_not_only_the_latest() -> None:
    # v3 reads v2's data (b is there) but not v1's (b missing, no default).
    history = (V_A, V_AB_DEFAULT)
    assert compatible(CompatibilityLevel.BACKWARD, V_AB_REQUIRED, *history)
    assert not compatible(CompatibilityLevel.BACKWARD_TRANSITIVE, V_AB_REQUIRED, *history)


def test_forward_transitive_checks_every_version_not_only_the_latest() -> None:
    # v2 can read v3's data (b has a default in v2), v1 cannot (b required).
    history = (V_AB_REQUIRED, V_AB_DEFAULT)
    assert compatible(CompatibilityLevel.FORWARD, V_A, *history)
    assert not compatible(CompatibilityLevel.FORWARD_TRANSITIVE, V_A, *history)


def test_full_transitive_checks_every_version_not_only_the_latest() -> None:
    history = (V_A, V_AB_DEFAULT)
    assert compatible(CompatibilityLevel.FULL, V_AB_REQUIRED, *history)
    assert not compatible(CompatibilityLevel.FULL_TRANSITIVE, V_AB_REQUIRED, *history)


def test_transitive_levels_accept_a_chain_that_is_compatible_all_along() -> None:
    c_default = {"name": "c", "type": "long", "default": 0}
    history = (V_A, V_AB_DEFAULT)
    for level in (CompatibilityLevel.BACKWARD_TRANSITIVE, CompatibilityLevel.FULL_TRANSITIVE):
        assert compatible(level, record(A, B_DEFAULT, c_default), *history)


def test_an_added_enum_symbol_is_backward_but_not_forward_compatible() -> None:
    def colour(*symbols: str) -> Any:
        return parse(json.dumps({"type": "enum", "name": "Colour", "symbols": list(symbols)})).avro

    assert compatible(CompatibilityLevel.BACKWARD, colour("RED", "BLUE"), colour("RED"))
    assert not compatible(CompatibilityLevel.FORWARD, colour("RED", "BLUE"), colour("RED"))


def test_full_reports_each_failing_direction() -> None:
    string_a = record({"name": "a", "type": "string"})
    result = check_compatibility(CompatibilityLevel.FULL, string_a, [ExistingVersion(1, V_A)])
    assert [message.split(":")[0] for message in result.messages] == ["BACKWARD", "FORWARD"]


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("FULL", CompatibilityLevel.FULL),
        ("backward_transitive", CompatibilityLevel.BACKWARD_TRANSITIVE),
        (" none ", CompatibilityLevel.NONE),
    ],
)
def test_levels_parse_in_any_case(text: str, level: CompatibilityLevel) -> None:
    assert parse_level(text) is level


@pytest.mark.parametrize("value", ["SIDEWAYS", "", None, 3])
def test_unknown_levels_are_refused_with_42203(value: object) -> None:
    with pytest.raises(InvalidCompatibilityLevel) as caught:
        parse_level(value)
    assert caught.value.error_code == 42203
