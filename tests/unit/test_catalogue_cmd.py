"""``sharebus catalogue classes``: one table whose columns line up (no broker)."""

from __future__ import annotations

from sharebus_cli.catalogue_cmd import list_classes
from sharebus_core.catalogue import load_catalogue
from tests.unit.fixtures import FIXTURE_CATALOGUE


def test_the_subscriber_count_and_name_start_in_the_same_column_on_every_row() -> None:
    """``periodic/monthly`` is wider than the mode column was (9), so periodic rows were pushed right."""
    rows = list_classes(load_catalogue(FIXTURE_CATALOGUE)).splitlines()
    name_at = rows[0].index("name")
    assert len(rows) > 2
    assert any("periodic/" in row for row in rows)
    for row in rows[1:]:
        assert row[name_at - 2 : name_at] == "  ", row
        assert row[name_at] != " ", row
        assert row[name_at - 3].isdigit(), row  # the count ends right before the name's gap
