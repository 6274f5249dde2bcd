"""Topics and schemas are provisioned at once, and neither is left running when the other fails."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import cast

import pytest

from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_provision import ProvisionError, SchemaProvisioning, bus


def _run(
    monkeypatch: pytest.MonkeyPatch, topics_fail: bool, schemas_fail: bool
) -> tuple[Callable[[], bus.BusProvisioning], list[str]]:
    events: list[str] = []
    both_running = threading.Barrier(2, timeout=10)

    def ensure_topics(*_: object) -> list[str]:
        both_running.wait()  # proves the two run side by side: one alone would time out here
        events.append("topics")
        if topics_fail:
            raise ProvisionError("topics refused")
        return ["ns.src.a"]

    def provision_schemas(*_: object) -> SchemaProvisioning:
        both_running.wait()
        events.append("schemas")
        if schemas_fail:
            raise ProvisionError("schemas refused")
        return SchemaProvisioning({"a": 1}, ("a",))

    monkeypatch.setattr(bus, "ensure_topics", ensure_topics)

    def provision_projections(*_: object, public: bool) -> tuple[str, ...]:
        events.append(f"projections public={public}")
        return ("ns.dlv.tax.a-value",)

    monkeypatch.setattr(bus, "provision_schemas", provision_schemas)
    monkeypatch.setattr(bus, "provision_projections", provision_projections)

    def call() -> bus.BusProvisioning:
        return bus.provision_bus(
            cast(KafkaAccess, None), [], cast(Catalogue, None), TopicNames("ns"), "http://registry", None, public=True
        )

    return call, events


def test_topics_and_schemas_run_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    call, events = _run(monkeypatch, topics_fail=False, schemas_fail=False)
    done = call()
    assert (done.created, done.schemas.ids, done.projections) == (["ns.src.a"], {"a": 1}, ("ns.dlv.tax.a-value",))
    # The projections after the classes' schemas, in the same thread.
    assert sorted(events) == ["projections public=True", "schemas", "topics"]
    assert events.index("schemas") < events.index("projections public=True")


@pytest.mark.parametrize(
    ("topics_fail", "schemas_fail", "reason"),
    [(True, False, "topics"), (False, True, "schemas"), (True, True, "topics")],
)
def test_a_failure_is_raised_once_both_have_finished(
    monkeypatch: pytest.MonkeyPatch, topics_fail: bool, schemas_fail: bool, reason: str
) -> None:
    call, events = _run(monkeypatch, topics_fail, schemas_fail)
    with pytest.raises(ProvisionError, match=f"{reason} refused"):
        call()
    assert {"schemas", "topics"} <= set(events)
