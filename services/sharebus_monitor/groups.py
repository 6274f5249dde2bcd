"""Which consumer groups the monitor reads, and the ``group`` label each one's lag goes under.

A system may create any group under ``<ns>.<system>.`` (its ACLs are prefixed), and clients often take a fresh
group id per run. A label per group would add a series per run, kept until Kafka expires the group's offsets
(7 days), and an abandoned group's lag would keep its growth alert firing. So only the groups the bus itself
runs keep a label of their own: the router's and the auditor's, and each system's default subscriber group
(``<ns>.<system>.sub``, the SDK's ``Subscriber``) and landing group (``<ns>.<system>.land``, ``sharebus land``).
Every other group of a system is folded into ``<ns>.<system>.*``: one series per system and topic, whatever
the system does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sharebus_core.principals import Principals
from sharebus_core.topics import TopicNames

log = logging.getLogger("sharebus.monitor")

# The groups of the bus's own clients under a system's prefix (sharebus_sdk/subscriber.py, sharebus_land/reader.py).
BUS_SUFFIXES = ("sub", "land")
FOLDED = "*"
# A system's other groups read per sample, at most: each is one OffsetFetch request (the admin API takes one group
# per request), so a system running thousands of consumers at once does not make a sample thousands of requests.
MAX_FOLDED_PER_SYSTEM = 16


@dataclass(frozen=True, slots=True)
class Selection:
    """The groups to read this sample and the label of each."""

    label: dict[str, str]
    left_out: int = 0


class GroupLabels:
    def __init__(self, topics: TopicNames, max_folded: int = MAX_FOLDED_PER_SYSTEM) -> None:
        self.topics = topics
        self.principals = Principals(topics.namespace)
        self.max_folded = max_folded

    def label(self, group: str) -> str | None:
        """The label of ``group``'s lag; None for a group the monitor does not read (another namespace's,
        a service's private readers, which never commit)."""
        if group in (self.topics.router_app_id, self.topics.auditor_app_id):
            return group
        namespace = f"{self.topics.namespace}."
        if not group.startswith(namespace):
            return None
        # System codes have no dots (catalogue/models.py): the system is the first part after the namespace.
        system, _, rest = group[len(namespace) :].partition(".")
        prefix = self.principals.consumer_group_prefix(system)
        return group if rest in BUS_SUFFIXES else prefix + FOLDED

    def select(self, listed: Mapping[str, bool]) -> Selection:
        """The groups to read, from every group listed (group id → idle: no members).

        A folded group without members is not read: a client that ended its run left it behind, and nobody
        reads its lag away (the bus's own groups are read idle or not: a stopped subscriber's backlog matters).
        """
        chosen: dict[str, str] = {}
        folded: dict[str, int] = {}
        left_out = 0
        for group, idle in sorted(listed.items()):
            label = self.label(group)
            if label is None or (label != group and idle):
                continue
            if label != group:
                folded[label] = folded.get(label, 0) + 1
                if folded[label] > self.max_folded:
                    left_out += 1
                    continue
            chosen[group] = label
        if left_out:
            log.warning(
                "%d consumer group(s) with members left out of this lag sample: at most %d per system besides "
                "its sub and land groups",
                left_out,
                self.max_folded,
            )
        return Selection(chosen, left_out)
