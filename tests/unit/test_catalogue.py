"""The catalogue loader: the demo catalogue is valid, and each kind of bad input names file, entry and field."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharebus_core.catalogue import CatalogueError, ShareType, UpdateMode, load_catalogue
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR

Mutator = Callable[[dict[str, Any]], None]


def test_demo_catalogue_is_realistic_and_mixed() -> None:
    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    assert len(catalogue.departments) >= 10
    assert len(catalogue.data_classes) >= 20
    share_types = {c.share_type for c in catalogue.data_classes.values()}
    modes = {c.mode for c in catalogue.data_classes.values()}
    assert share_types == set(ShareType)
    assert modes == set(UpdateMode)
    names = " ".join(d.name for d in catalogue.departments.values())
    for bureau in (
        "Market Regulation",
        "Public Security",
        "Human Resources",
        "Planning and Natural Resources",
        "Development and Reform",
    ):
        assert bureau in names
    first = catalogue.data_class("301001001/000001")
    assert first.provider == "AMR"
    assert len(catalogue.subscriptions_of(first.code)) >= 2
    assert "uscc" in catalogue.schema(first.code).field_names


@pytest.fixture
def write_catalogue(tmp_path: Path) -> Callable[[Mutator], Path]:
    def write(mutate: Mutator) -> Path:
        target = tmp_path / "schemas"
        shutil.copytree(DEFAULT_CATALOGUE_DIR, target)
        raw = yaml.safe_load((target / "catalogue.yaml").read_text(encoding="utf-8"))
        mutate(raw)
        (target / "catalogue.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        return target

    return write


def _problem(directory: Path) -> str:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(directory)
    return str(info.value)


def test_unknown_department_is_named(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["data_classes"][2]["provider"] = "NOPE"

    message = _problem(write_catalogue(mutate))
    assert "catalogue.yaml: data_classes[2] (301001003/000001), field 'provider': unknown department 'NOPE'" in message


def test_schema_that_does_not_parse_is_named(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["data_classes"][0]["schema"] = "avro/broken.avsc"

    directory = write_catalogue(mutate)
    (directory / "avro" / "broken.avsc").write_text(
        json.dumps({"type": "record", "name": "B", "fields": [{"name": "x", "type": "strng"}]})
    )
    message = _problem(directory)
    assert "data_classes[0] (301001001/000001), field 'schema': schema" in message
    assert "broken.avsc does not parse" in message


def test_schema_that_is_not_json_is_named(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["data_classes"][0]["schema"] = "avro/broken.avsc"

    directory = write_catalogue(mutate)
    (directory / "avro" / "broken.avsc").write_text("{not json")
    assert "does not parse: not JSON" in _problem(directory)


def test_periodic_class_without_period_is_refused(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["data_classes"][1]["update"] = {"mode": "periodic"}

    message = _problem(write_catalogue(mutate))
    assert "data_classes[1] (301001002/000001), field 'update'" in message
    assert "a periodic class needs a period" in message


def test_duplicate_class_code_is_refused(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["data_classes"][1]["code"] = raw["data_classes"][0]["code"]

    message = _problem(write_catalogue(mutate))
    assert "data_classes[1] (301001001/000001), field 'code': duplicate data class code" in message


def test_duplicate_department_and_system_codes_are_refused(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["departments"][1]["code"] = raw["departments"][0]["code"]
        raw["departments"][2]["systems"][0]["code"] = raw["departments"][0]["systems"][0]["code"]

    message = _problem(write_catalogue(mutate))
    assert "departments[1] (AMR), field 'code': duplicate department code 'AMR'" in message
    assert "field 'code': duplicate system code 'amr-reg'" in message


def test_missing_legal_basis_for_conditional_class(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        entry = next(c for c in raw["data_classes"] if c["share_type"] == "conditional")
        del entry["legal_basis"]

    assert "must cite its legal basis" in _problem(write_catalogue(mutate))


def test_key_and_sensitive_fields_must_exist(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["data_classes"][0]["key_field"] = "nope"
        raw["data_classes"][0]["sensitive_fields"] = ["ghost"]

    message = _problem(write_catalogue(mutate))
    assert "field 'key_field': 'nope' is not a field of the schema" in message
    assert "field 'sensitive_fields': 'ghost' is not a field of the schema" in message


def test_bad_code_shape_and_unknown_key(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["data_classes"][0]["code"] = "ABC"
        raw["data_classes"][1]["colour"] = "blue"

    message = _problem(write_catalogue(mutate))
    assert "data_classes[0] (ABC), field 'code'" in message
    assert "data_classes[1] (301001002/000001), field 'colour': unknown key" in message


def test_subscription_rules(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["subscriptions"].append({"system": "amr-reg", "data_class": "301001001/000001"})
        raw["subscriptions"].append({"system": "ghost-sys", "data_class": "301001001/000001"})
        raw["subscriptions"].append(dict(raw["subscriptions"][0]))

    message = _problem(write_catalogue(mutate))
    assert "does not subscribe to its own data" in message
    assert "field 'system': unknown system 'ghost-sys'" in message
    assert "duplicate subscription" in message


def test_missing_catalogue_file(tmp_path: Path) -> None:
    assert "the catalogue file does not exist" in _problem(tmp_path)


def test_system_of_another_department_as_provider_system(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["data_classes"][0]["system"] = "psb-case"

    assert "field 'system': system 'psb-case' belongs to PSB, not to the provider AMR" in _problem(
        write_catalogue(mutate)
    )


def test_an_open_class_may_not_be_keyed_by_a_sensitive_field(write_catalogue: Callable[[Mutator], Path]) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        # Open: its record key would go to the public.
        raw["data_classes"][1]["key_field"] = "party_id_number"
        # Not open: its key stays between departments, as before.
        raw["data_classes"][0]["sensitive_fields"] = ["uscc", "legal_rep_id_number"]

    message = _problem(write_catalogue(mutate))
    assert (
        "data_classes[1] (301001002/000001), field 'key_field': 'party_id_number' is sensitive, so it cannot be "
        "the key of a class opened to the public" in message
    )
    assert "data_classes[0]" not in message


def test_a_file_that_is_not_utf8_or_not_a_file_is_named_not_a_crash(write_catalogue: Callable[[Mutator], Path]) -> None:
    """A catalogue or schema saved in GBK (the usual legacy encoding of Chinese text) is a problem to name."""

    def mutate(raw: dict[str, Any]) -> None:
        raw["data_classes"][0]["schema"] = "avro/gbk.avsc"
        raw["data_classes"][1]["schema"] = "avro"  # a directory

    directory = write_catalogue(mutate)
    schema = {"type": "record", "name": "G", "doc": "企业登记", "fields": [{"name": "uscc", "type": "string"}]}
    (directory / "avro" / "gbk.avsc").write_bytes(json.dumps(schema, ensure_ascii=False).encode("gbk"))
    message = _problem(directory)
    assert "data_classes[0] (301001001/000001), field 'schema': schema" in message
    assert "gbk.avsc is not UTF-8 text" in message
    assert "data_classes[1] (301001002/000001), field 'schema': schema file" in message
    assert "avro cannot be read" in message
    text = (directory / "catalogue.yaml").read_text(encoding="utf-8") + "# 目录\n"
    (directory / "catalogue.yaml").write_bytes(text.encode("gbk"))
    assert "not UTF-8 text" in _problem(directory)
