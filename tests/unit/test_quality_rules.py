"""The quality rules as pure functions: good and bad values for each kind, and a class's verdict."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sharebus_core.catalogue.quality import OnFailure, QualityPolicy, QualityRule, RuleKind
from sharebus_rules.check_digits import USCC_CHARSET, resident_id_check_char, uscc_check_char
from sharebus_rules.quality import (
    ClassRules,
    check_resident_id,
    check_uscc,
    enum_check,
    is_filled,
    not_future_check,
    range_check,
    reference_check,
    regex_check,
)

NOW = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)


class Keys:
    def __init__(self, keys: set[str], ready: bool = True) -> None:
        self.keys = keys
        self._ready = ready

    @property
    def ready(self) -> bool:
        return self._ready

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def __len__(self) -> int:
        return len(self.keys)


@pytest.mark.parametrize("value", ["x", " a ", 0, 0.0, False, [1], {"a": 1}, b"\x00", dt.date(2020, 1, 1)])
def test_filled_values(value: Any) -> None:
    assert is_filled(value)


@pytest.mark.parametrize("value", [None, "", "   ", "\t\n", [], {}, b""])
def test_empty_values(value: Any) -> None:
    assert not is_filled(value)


uscc_bodies = st.text(alphabet=USCC_CHARSET, min_size=17, max_size=17)
id_bodies = st.text(alphabet="0123456789", min_size=17, max_size=17)


@given(uscc_bodies, st.sampled_from(USCC_CHARSET))
def test_uscc_passes_only_with_its_check_character(body: str, last: str) -> None:
    right = uscc_check_char(body)
    assert check_uscc(body + right)
    assert check_uscc(body + last) is (last == right)


@given(id_bodies, st.sampled_from("0123456789X"))
def test_resident_id_passes_only_with_its_check_character(body: str, last: str) -> None:
    right = resident_id_check_char(body)
    assert check_resident_id(body + right)
    assert check_resident_id(body + last) is (last == right)


@pytest.mark.parametrize("value", ["", "91310110666007217", "91310110666007217TT", "9131011066600721IT", 913101])
def test_uscc_bad_shapes_fail(value: Any) -> None:
    assert not check_uscc(value)


def test_check_digits_let_null_pass() -> None:
    # Whether a field must be filled is the required rule's question, asked once.
    assert check_uscc(None)
    assert check_resident_id(None)
    assert not check_resident_id("1101051949123100")


def test_regex_matches_the_whole_value() -> None:
    check = regex_check(r"[0-9]{6}")
    assert check("500101")
    assert check(None)
    assert not check("5001011")
    assert not check("x500101")
    assert not check(500101)


def test_enumeration() -> None:
    check = enum_check(["active", "revoked"])
    assert check("active")
    assert check(None)
    assert not check("Active")
    assert not check("")


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers())
def test_range_is_inclusive_and_refuses_nan(value: float) -> None:
    check = range_check(0, 100)
    assert check(value) is (value == value and 0 <= value <= 100)


def test_range_open_ends_and_types() -> None:
    assert range_check(None, 10)(-1e9)
    assert not range_check(None, 10)(10.5)
    assert range_check(1, None)(1)
    assert not range_check(1, None)(True)  # a boolean is not a number here
    assert not range_check(1, None)("5")


def test_not_future_dates_use_the_latest_calendar_on_earth() -> None:
    check = not_future_check(lambda: NOW)
    assert check(dt.date(2026, 12, 1))
    # 06:00 UTC is 20:00 on 1 December at UTC+14: the 2nd has not begun anywhere.
    assert not check(dt.date(2026, 12, 2))
    late = not_future_check(lambda: NOW.replace(hour=11))  # 01:00 on the 2nd at UTC+14
    assert late(dt.date(2026, 12, 2))
    assert not late(dt.date(2026, 12, 3))


def test_not_future_timestamps_allow_clock_tolerance() -> None:
    check = not_future_check(lambda: NOW, dt.timedelta(minutes=5))
    assert check(NOW + dt.timedelta(minutes=4))
    assert not check(NOW + dt.timedelta(minutes=6))
    assert check(dt.datetime(2026, 12, 1, 6, 0))  # naive: taken as UTC
    assert check(None)
    assert not check("2026-12-01")


def test_reference_asks_the_view_and_fails_closed() -> None:
    keys = Keys({"A"})
    check = reference_check(keys)
    assert check("A")
    assert not check("B")
    assert check(None)
    keys._ready = False
    assert not check("A")  # the view has not caught up: it cannot tell, so the record fails


def policy(*rules: dict[str, Any], on_failure: str = "flag") -> QualityPolicy:
    return QualityPolicy.model_validate({"on_failure": on_failure, "rules": list(rules)})


def test_verdict_names_failed_rules_in_order_and_the_first_rejecting_one() -> None:
    rules = ClassRules.compile(
        policy(
            {"field": "status", "kind": "enum", "values": ["active"]},
            {"field": "uscc", "kind": "uscc", "on_failure": "reject"},
            {"field": "name", "kind": "required", "on_failure": "reject"},
            {"field": "ref", "kind": "reference", "data_class": "301001001/000001"},
        ),
        ["uscc", "name", "status", "ref", "note"],
        lambda: NOW,
        {"301001001/000001": Keys({"K"})},
    )
    verdict = rules.evaluate({"uscc": "bad", "name": " ", "status": "gone", "ref": "K", "note": None})
    assert verdict.failed == ("status:enum", "uscc:uscc", "name:required")
    assert verdict.rejected_by == "uscc:uscc"
    assert verdict.as_fact() == {"failed": ["status:enum", "uscc:uscc", "name:required"], "filled": 3, "fields": 5}
    clean = rules.evaluate({"uscc": "91310110666007217T", "name": "x", "status": "active", "ref": "K", "note": "n"})
    assert (clean.failed, clean.rejected_by, clean.filled) == ((), None, 5)
    flagged = rules.evaluate({"uscc": "91310110666007217T", "name": "x", "status": "gone", "ref": "Z"})
    assert (flagged.failed, flagged.rejected_by) == (("status:enum", "ref:reference"), None)


def test_a_class_without_rules_still_counts_its_filled_fields() -> None:
    verdict = ClassRules.compile(None, ["a", "b", "c"], lambda: NOW).evaluate({"a": 1, "b": ""})
    assert verdict.as_fact() == {"failed": [], "filled": 1, "fields": 3}


def test_rule_ids_and_outcomes() -> None:
    rule = QualityRule(field="uscc", kind=RuleKind.USCC)
    assert rule.rule_id == "uscc:uscc"
    made = policy({"field": "uscc", "kind": "uscc"}, {"field": "x", "kind": "required", "on_failure": "reject"})
    assert [made.outcome(r) for r in made.rules] == [OnFailure.FLAG, OnFailure.REJECT]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"field": "a", "kind": "regex"}, "needs pattern"),
        ({"field": "a", "kind": "regex", "pattern": "("}, "not a regular expression"),
        ({"field": "a", "kind": "enum", "values": []}, "at least one value"),
        ({"field": "a", "kind": "range"}, "needs min, max or both"),
        ({"field": "a", "kind": "range", "min": 5, "max": 1}, "above max"),
        ({"field": "a", "kind": "uscc", "values": ["x"]}, "takes no values"),
        ({"field": "a", "kind": "reference"}, "needs data_class"),
        ({"field": "a", "kind": "spelling"}, "Input should be"),
    ],
)
def test_malformed_rules_are_refused(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        policy(rule)


def test_one_rule_per_field_and_kind() -> None:
    with pytest.raises(ValueError, match="a:required declared more than once"):
        policy({"field": "a", "kind": "required"}, {"field": "a", "kind": "required", "on_failure": "reject"})


def test_delivery_window_is_never_shorter_than_the_class_period() -> None:
    from sharebus_core.catalogue import load_catalogue
    from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
    from sharebus_rules.freshness import FreshnessPolicy
    from sharebus_rules.quality_scores import delivered, delivery_window, share

    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    policy = FreshnessPolicy(grace=dt.timedelta(hours=1))
    day = dt.timedelta(hours=24)
    monthly = next(c for c in catalogue.data_classes.values() if c.update.period and c.update.period.value == "monthly")
    realtime = catalogue.data_class("301001001/000001")
    assert delivery_window(realtime, policy, day) == day
    assert delivery_window(monthly, policy, day) > dt.timedelta(days=27)
    ten_days_ago = NOW - dt.timedelta(days=10)
    assert delivered(monthly, ten_days_ago, NOW, policy, day)
    assert not delivered(realtime, ten_days_ago, NOW, policy, day)
    assert not delivered(realtime, None, NOW, policy, day)  # never published
    assert (share([True, False, False, True]), share([])) == (0.5, 1.0)
