"""Large provisioning requests are split into ones the KRaft controller accepts (10,000 records each)."""

from __future__ import annotations

from sharebus_access.reconcile import ACLS_PER_REQUEST, chunked
from sharebus_provision.topics import MAX_RECORDS_PER_REQUEST, TopicSpec, chunk_specs, metadata_records


def test_a_topic_costs_one_record_plus_its_partitions_and_configs() -> None:
    assert metadata_records(TopicSpec("t", 3, {"retention.ms": "1"})) == 5


def test_a_city_catalogue_is_split_under_the_cap_and_nothing_is_lost_or_reordered() -> None:
    specs = [TopicSpec(f"t{i}", 3, {"retention.ms": "1"}) for i in range(4076)]
    chunks = chunk_specs(specs)
    assert len(chunks) > 1
    assert all(sum(metadata_records(s) for s in chunk) <= MAX_RECORDS_PER_REQUEST for chunk in chunks)
    assert [s for chunk in chunks for s in chunk] == specs
    assert MAX_RECORDS_PER_REQUEST < 10_000


def test_small_requests_stay_whole_and_nothing_makes_no_request() -> None:
    specs = [TopicSpec("a", 1), TopicSpec("b", 64)]
    assert chunk_specs(specs) == [specs]
    assert chunk_specs([]) == []


def test_a_topic_bigger_than_the_budget_still_gets_a_request_of_its_own() -> None:
    specs = [TopicSpec("a", 1), TopicSpec("big", 64), TopicSpec("c", 1)]
    assert chunk_specs(specs, max_records=10) == [[specs[0]], [specs[1]], [specs[2]]]


def test_acls_are_sent_in_slices_of_the_request_size() -> None:
    items = list(range(2 * ACLS_PER_REQUEST + 1))
    slices = list(chunked(items, ACLS_PER_REQUEST))
    assert [len(s) for s in slices] == [ACLS_PER_REQUEST, ACLS_PER_REQUEST, 1]
    assert [i for s in slices for i in s] == items
    assert list(chunked([], ACLS_PER_REQUEST)) == []
