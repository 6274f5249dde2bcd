"""Several router workers in one group, as one forwarder (``bench.forward --router-workers N``).

They are started before the round's backlog is written and measured once every source partition has
an owner: started after it, the first worker to join would route most of the backlog alone while the
others start, and the round would measure one worker. They read a catalogue of the round's class
alone: the group's assignor balances partitions over all the source topics, and gave one worker the
measured class's three and the other worker the other class's.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import KafkaException

from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, ChildFailed
from sharebus_core.kafka import KafkaAccess

SETTLE_TIMEOUT_S = 120.0


class RouterWorkers(Child):
    """``count`` router processes sharing one consumer group; started, checked and stopped together."""

    def __init__(self, name: str, env: Mapping[str, str], work: Path, count: int, group: str) -> None:
        super().__init__(name, "sharebus_router", env, work / f"{name}-0.log")
        self.group = group
        self.workers = [
            Child(
                f"{name}-{i}",
                "sharebus_router",
                {**env, "SHAREBUS_ROUTER_DATA_DIR": str(work / f"{name}-{i}"), "SHAREBUS_ROUTER_WEB_PORT": str(port)},
                work / f"{name}-{i}.log",
            )
            for i, port in enumerate(free_port() for _ in range(count))
        ]
        self.started = False

    def start(self) -> RouterWorkers:
        """Starts every worker (once: a warm start before the backlog makes the round's own a no-op)."""
        if not self.started:
            for worker in self.workers:
                worker.start()
            self.started = True
        return self

    def settle(self, access: KafkaAccess, source: str, partitions: int) -> None:
        """Waits until every worker owns some of ``source``'s partitions and together they own all of them.

        The group's assignment, as the coordinator gives it: the workers' own gauges count every
        source topic of the catalogue, and a worker owning only the other class's would route nothing here.
        """
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        owned: list[int] = []
        while time.monotonic() < deadline:
            if not self.alive():
                raise ChildFailed(f"{self.name}: a worker exited before the group settled:\n{self.tail()}")
            owned = self._owned(access, source)
            if len(owned) == len(self.workers) and min(owned) > 0 and sum(owned) == partitions:
                return
            time.sleep(0.5)
        raise ChildFailed(f"{self.name}: partitions of {source} per worker {owned}, not {partitions} shared by all")

    def _owned(self, access: KafkaAccess, source: str) -> list[int]:
        """How many of ``source``'s partitions each member of the group holds (an empty list if unknown)."""
        admin = access.admin()
        try:
            [description] = [f.result(timeout=10) for f in admin.describe_consumer_groups([self.group]).values()]
        except KafkaException:
            return []
        return [
            sum(1 for tp in member.assignment.topic_partitions if tp.topic == source) for member in description.members
        ]

    def alive(self) -> bool:
        return self.started and all(worker.alive() for worker in self.workers)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(f"--- {worker.log_path}\n{worker.tail(lines)}" for worker in self.workers)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        codes = [worker.stop(timeout_s) for worker in self.workers]
        self.started = False
        return next((code for code in codes if code), codes[0] if codes else None)


def one_class_catalogue(catalogue_dir: Path, data_class: str, work: Path) -> Path:
    """A copy of ``catalogue_dir`` holding ``data_class`` and its subscriptions only; returns its directory."""
    out = work / f"catalogue-{data_class.replace('/', '-')}"
    if out.exists():
        return out
    shutil.copytree(catalogue_dir, out)
    document: dict[str, Any] = yaml.safe_load((catalogue_dir / "catalogue.yaml").read_text(encoding="utf-8"))
    document["data_classes"] = [c for c in document["data_classes"] if c["code"] == data_class]
    document["subscriptions"] = [s for s in document["subscriptions"] if s["data_class"] == data_class]
    (out / "catalogue.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return out
