"""The sink's database behaviour on a real PostgreSQL: the unit tests of tests/unit/test_land.py (and
tests/unit/test_land_window_order.py) that touch the database, run again with a database of their own on
the session's server (no broker)."""

from __future__ import annotations

import pytest

from tests.support.postgres import Postgres, postgres  # noqa: F401  (the session's server fixture)
from tests.unit.test_land import (  # noqa: F401  (collected here again, with db_url on PostgreSQL)
    catalogue,
    test_a_batch_lands_in_one_transaction_and_only_when_whole,
    test_a_new_field_adds_a_column_and_an_incompatible_schema_stops_only_its_class,
    test_a_theme_table_merges_two_classes_by_key,
    test_upserts_by_key_tombstones_delete_and_offsets_land_with_rows,
)
from tests.unit.test_land_window_order import (  # noqa: F401  (batches completing out of window order)
    test_a_table_landed_before_rows_recorded_their_window_gains_the_column,
    test_an_older_window_completing_later_in_one_transaction_does_not_overwrite_the_newer,
    test_an_older_window_landing_in_a_later_transaction_neither_overwrites_nor_deletes_the_newer,
    test_one_transaction_ends_as_its_records_would_one_by_one_when_real_time_and_batches_mix,
)


@pytest.fixture
def db_url(postgres: Postgres) -> str:  # noqa: F811
    return postgres.new_database()
