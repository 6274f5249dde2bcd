"""Lag arithmetic and the growing judgement, without Kafka."""

from __future__ import annotations

from sharebus_monitor.lag import GrowthTracker, lag_by_topic


def test_lag_sums_partitions_per_topic_against_committed_offsets() -> None:
    latest = {("a", 0): 10, ("a", 1): 7, ("b", 0): 3}
    committed = {("a", 0): 4, ("a", 1): 7, ("b", 0): 1}
    assert lag_by_topic(committed, {}, latest) == {"a": 6, "b": 2}


def test_partition_without_a_commit_counts_from_its_earliest_offset() -> None:
    latest = {("a", 0): 10, ("a", 1): 8}
    earliest = {("a", 0): 0, ("a", 1): 5}
    # -1001 is Kafka's "no committed offset"; partition 1 is absent altogether.
    assert lag_by_topic({("a", 0): -1001}, earliest, latest) == {"a": 10 + 3}


def test_committed_past_the_end_never_gives_negative_lag() -> None:
    assert lag_by_topic({("a", 0): 12}, {}, {("a", 0): 10}) == {"a": 0}


def test_lag_that_only_rises_over_a_full_window_is_growing() -> None:
    tracker = GrowthTracker(window_s=60)
    key = ("g", "t")
    verdicts = [tracker.observe(key, float(t), lag) for t, lag in [(0, 5), (20, 9), (40, 9), (60, 14)]]
    assert verdicts == [False, False, False, True]


def test_lag_that_drains_back_within_the_window_is_not_growing() -> None:
    tracker = GrowthTracker(window_s=60)
    key = ("g", "t")
    for t, lag in [(0, 5), (20, 3), (40, 9)]:
        tracker.observe(key, float(t), lag)
    assert tracker.observe(key, 60.0, 12) is False
    # Once the dip falls out of the window, the baseline is the sample at the window's start.
    assert tracker.observe(key, 85.0, 15) is True


def test_steady_lag_is_not_growing_and_gone_keys_are_forgotten() -> None:
    tracker = GrowthTracker(window_s=10)
    for t in range(0, 30, 5):
        assert tracker.observe(("g", "t"), float(t), 4) is False
    tracker.forget_all_but(set())
    # A fresh history: no full window yet, so no verdict of growth.
    assert tracker.observe(("g", "t"), 30.0, 100) is False
