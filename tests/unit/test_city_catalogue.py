"""The generated catalogue: the seed platform's proportions, valid for the services' own loader,
one distinct schema per class with sensitive fields, and the same files from the same seed."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from sharebus_cli.main import main
from sharebus_core.catalogue import Catalogue, ShareType, UpdateMode, load_catalogue
from sharebus_demo.city_catalogue import SCALES, GenerateError, generate


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    out = tmp_path_factory.mktemp("city")
    generate("city", out)
    return load_catalogue(out)


def _digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(directory)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_the_city_scale_has_the_seed_platforms_proportions(city: Catalogue) -> None:
    assert len(city.departments) == 61
    assert len(city.systems) == 900
    assert len(city.data_classes) == 3170
    shares = Counter(c.share_type for c in city.data_classes.values())
    assert shares == {ShareType.UNCONDITIONAL: 2191, ShareType.CONDITIONAL: 979}
    modes = Counter(c.mode for c in city.data_classes.values())
    assert modes == {UpdateMode.REALTIME: 2094, UpdateMode.PERIODIC: 1076}
    assert len(city.subscriptions) == 6847
    assert round(len(city.subscriptions) / len(city.data_classes), 1) == 2.2


def test_every_class_has_a_subscriber_and_a_long_tail_of_popular_classes(city: Catalogue) -> None:
    per_class = Counter(s.data_class for s in city.subscriptions)
    assert set(per_class) == set(city.data_classes)
    assert max(per_class.values()) >= 5


def test_every_class_has_its_own_schema_with_realistic_types_and_sensitive_fields(city: Catalogue) -> None:
    texts = {schema.text for schema in city.schemas.values()}
    assert len(texts) == len(city.data_classes)
    field_lists = {tuple(schema.field_names) for schema in city.schemas.values()}
    assert len(field_lists) > 1000
    types = {str(t) for schema in city.schemas.values() for t in schema.field_types.values()}
    assert {"string", "double", "int", "long", "boolean"} <= types
    assert any("date" in t for t in types)
    assert any("timestamp-millis" in t for t in types)
    with_sensitive = [c for c in city.data_classes.values() if c.sensitive_fields]
    assert len(with_sensitive) > len(city.data_classes) // 2
    for entry in with_sensitive:
        assert set(entry.sensitive_fields) <= set(city.schema(entry.code).field_names)


def test_systems_belong_to_the_provider_and_no_department_subscribes_to_itself(city: Catalogue) -> None:
    # The loader checks both; this names the rule the generator must keep.
    for sub in city.subscriptions:
        assert city.department_of_system[sub.system] != city.data_class(sub.data_class).provider
    for entry in city.data_classes.values():
        assert city.department_of_system[entry.system] == entry.provider


@pytest.mark.parametrize("scale", ["district", "small"])
def test_smaller_scales_keep_the_mix(tmp_path: Path, scale: str) -> None:
    wanted = SCALES[scale]
    generate(scale, tmp_path)
    catalogue = load_catalogue(tmp_path)
    assert len(catalogue.data_classes) == wanted.classes
    assert len(catalogue.departments) == wanted.departments
    assert len(catalogue.systems) == wanted.systems
    unconditional = sum(c.share_type is ShareType.UNCONDITIONAL for c in catalogue.data_classes.values())
    assert abs(unconditional / wanted.classes - 2191 / 3170) < 0.02
    realtime = sum(c.mode is UpdateMode.REALTIME for c in catalogue.data_classes.values())
    assert abs(realtime / wanted.classes - 2094 / 3170) < 0.02
    assert abs(len(catalogue.subscriptions) / wanted.classes - 6847 / 3170) < 0.05


def test_the_same_seed_writes_the_same_files_and_another_seed_does_not(tmp_path: Path) -> None:
    generate("small", tmp_path / "a", seed=7)
    generate("small", tmp_path / "b", seed=7)
    generate("small", tmp_path / "c", seed=8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_partitions_are_set_per_class(tmp_path: Path) -> None:
    generate("small", tmp_path, partitions=1)
    assert {c.partitions for c in load_catalogue(tmp_path).data_classes.values()} == {1}


def test_bad_arguments_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match="unknown scale 'galaxy'"):
        generate("galaxy", tmp_path)
    with pytest.raises(GenerateError, match="partitions must be between 1 and 64"):
        generate("small", tmp_path, partitions=0)


def test_the_cli_writes_a_catalogue_that_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalogue", "generate", "--scale", "small", "--out", str(tmp_path)]) == 0
    assert "5 departments, 12 systems, 30 data classes" in capsys.readouterr().out
    assert len(load_catalogue(tmp_path).data_classes) == 30
