"""A release marker sent before the held partition moved is sent again when it comes back.

The timer remembered which window it had marked for good: if another owner consumed that marker meanwhile
(and its release failed or was cut short by the next rebalance), the window stayed unreleased here until a
restart. The memory is now forgotten whenever the worker's held partitions are assigned or revoked, which
the keeper counts: a partition lost and assigned back between two ticks changes the set of held partitions
not at all.
"""

from __future__ import annotations

from sharebus_core.catalogue import load_catalogue
from sharebus_router.holding import SentMarkers
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_live_points import TP, Worker


def test_a_marker_sent_before_the_held_partition_came_back_is_forgotten() -> None:
    keeper = Worker(Harness(load_catalogue(FIXTURE_CATALOGUE))).keeper
    sent = SentMarkers()
    keeper.on_assigned([TP(TOPICS.held, 3)])
    sent.owner(keeper.held_generation)
    sent[("c", "release")] = "w1"
    sent.owner(keeper.held_generation)  # a tick with nothing changed remembers
    assert sent == {("c", "release"): "w1"}

    keeper.on_revoked([TP(TOPICS.held, 3)])
    keeper.on_assigned([TP(TOPICS.held, 3)])  # back before the next tick: the same held partitions
    assert keeper.owned_held == {3}
    sent.owner(keeper.held_generation)
    assert sent == {}  # the marker for w1 is sent again
