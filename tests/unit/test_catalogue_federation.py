"""A city catalogue takes in its districts' departments and federated classes (docs/federation.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharebus_core.catalogue import CatalogueError, load_catalogue

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "federation"
UP = "301002001/000001"


def test_a_federated_class_joins_the_city_as_the_districts() -> None:
    district = load_catalogue(FIXTURES / "yubei")
    city = load_catalogue(FIXTURES / "city")
    entry = city.data_class(UP)
    assert entry == district.data_class(UP)  # code, owner, system, rules carried over
    assert entry.provider == "YBAMR"
    assert city.schema(UP).text == district.schema(UP).text
    assert "301002002/000001" not in city.data_classes  # not federated: stays in the district
    assert city.department_of_system["yb-tax"] == "YBTAX"  # can be granted city classes (down)
    assert city.level_of("YBAMR") == ("district", "yubei")
    assert city.level_of("AMR") == ("city", "")
    assert [c.code for c in district.federated_up()] == [UP]
    assert district.level_of("YBAMR") == ("city", "")  # a district's own catalogue names no districts


def test_a_district_reusing_a_city_code_is_refused(tmp_path: Path) -> None:
    city_dir = tmp_path / "city"
    city_dir.mkdir()
    (city_dir / "avro").mkdir()
    (city_dir / "avro" / "penalty.avsc").write_text((FIXTURES / "city" / "avro" / "penalty.avsc").read_text())
    text = (FIXTURES / "city" / "catalogue.yaml").read_text()
    (city_dir / "catalogue.yaml").write_text(text.replace("code: TAX", "code: YBTAX"))
    (tmp_path / "yubei").symlink_to(FIXTURES / "yubei")
    with pytest.raises(CatalogueError, match="department YBTAX is also the city's"):
        load_catalogue(city_dir)
