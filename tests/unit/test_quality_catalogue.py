"""The catalogue's quality blocks: the loader refuses rules it could not check, naming file, entry and field."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sharebus_core.catalogue import CatalogueError, load_catalogue
from sharebus_core.catalogue.quality import OnFailure
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
from sharebus_demo.fake import RecordFaker
from sharebus_demo.flaws import break_one_rule
from sharebus_rules.quality import ClassRules
from tests.unit.test_catalogue import Mutator, write_catalogue  # noqa: F401 - the fixture

ENTERPRISE_INDEX = 0  # the demo catalogue's first class is the enterprise registration class


def _with_rules(*rules: dict[str, Any]) -> Mutator:
    def mutate(raw: dict[str, Any]) -> None:
        raw["data_classes"][ENTERPRISE_INDEX]["quality"] = {"on_failure": "reject", "rules": list(rules)}

    return mutate


def _problems(directory: Path) -> str:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(directory)
    return str(info.value)


def test_a_rule_naming_a_missing_field_is_refused(write_catalogue: Callable[[Mutator], Path]) -> None:  # noqa: F811
    message = _problems(write_catalogue(_with_rules({"field": "no_such_field", "kind": "required"})))
    assert (
        "catalogue.yaml: data_classes[0] (301001001/000001), field 'quality.rules[0] (no_such_field:required)': "
        "field 'no_such_field' is not a field of the schema"
    ) in message


def test_a_reference_to_an_unknown_class_is_refused(write_catalogue: Callable[[Mutator], Path]) -> None:  # noqa: F811
    rule = {"field": "uscc", "kind": "reference", "data_class": "399999999/000001"}
    message = _problems(write_catalogue(_with_rules(rule)))
    assert "quality.rules[0] (uscc:reference)': the reference names unknown data class '399999999/000001'" in message


@pytest.mark.parametrize(
    ("rule", "wanted"),
    [
        ({"field": "registered_capital", "kind": "uscc"}, "a uscc rule needs a string field"),
        ({"field": "enterprise_name", "kind": "range", "min": 0}, "a range rule needs a number field"),
        ({"field": "enterprise_name", "kind": "not_future"}, "a not_future rule needs a date or timestamp field"),
        ({"field": "establishment_date", "kind": "range", "min": 0}, "a range rule needs a number field"),
    ],
)
def test_a_rule_that_does_not_fit_its_field_type_is_refused(
    write_catalogue: Callable[[Mutator], Path],  # noqa: F811
    rule: dict[str, Any],
    wanted: str,
) -> None:
    assert wanted in _problems(write_catalogue(_with_rules(rule)))


def test_malformed_rule_is_named_with_its_place(write_catalogue: Callable[[Mutator], Path]) -> None:  # noqa: F811
    message = _problems(write_catalogue(_with_rules({"field": "status", "kind": "enum"})))
    assert "data_classes[0] (301001001/000001), field 'quality.rules.0'" in message
    assert "an enum rule needs values" in message


def test_demo_classes_declare_rules_that_their_demo_records_pass() -> None:
    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    ruled = {code: entry for code, entry in catalogue.data_classes.items() if entry.quality is not None}
    assert {"301001001/000001", "301001002/000001"} <= set(ruled)
    enterprise = catalogue.data_class("301001001/000001").quality
    assert enterprise is not None
    outcomes = {rule.rule_id: enterprise.outcome(rule) for rule in enterprise.rules}
    assert outcomes["uscc:uscc"] is OnFailure.REJECT
    assert outcomes["status:enum"] is OnFailure.FLAG
    faker = RecordFaker(seed=3)
    for code, entry in ruled.items():
        schema = catalogue.schema(code)
        rules = ClassRules.compile(entry.quality, schema.field_names, lambda: dt.datetime.now(dt.UTC))
        for _ in range(300):
            assert rules.evaluate(faker.record(schema)).failed == ()


def test_demo_flaws_break_exactly_the_chosen_rule_and_still_fit_the_schema() -> None:
    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    faker = RecordFaker(seed=5)
    rng = random.Random(5)
    ruled = [code for code, entry in catalogue.data_classes.items() if entry.quality is not None]
    assert len(ruled) == 4
    for code in ruled:
        entry, schema = catalogue.data_class(code), catalogue.schema(code)
        assert entry.quality is not None
        rules = ClassRules.compile(entry.quality, schema.field_names, lambda: dt.datetime.now(dt.UTC))
        for _ in range(300):
            record = faker.record(schema)
            broken = break_one_rule(record, entry.quality.rules, rng)
            schema.validate(record)
            assert broken in rules.evaluate(record).failed
