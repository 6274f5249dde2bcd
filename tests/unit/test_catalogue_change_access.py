"""What a system may still do after the catalogue changes under it: a class given to another system, a
system moved to another department, a system removed. The reconciler over a fake broker and fake
SCRAM users; the real broker is in tests/integration/test_access_catalogue_change.py."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sharebus_access.acls import AclRule, Operation, desired_acls
from sharebus_access.credentials import CredentialStatus, SystemCredentials
from sharebus_access.errors import NotIssued
from sharebus_access.reconcile import Reconciler
from sharebus_access.scram import removed_systems
from sharebus_access.server import health_body
from sharebus_access.stale import moved_systems
from sharebus_cli.credentials_cmd import _listing
from sharebus_core.catalogue import Catalogue, UnknownSystem, load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.test_access_reconciler import FakeAdmin, FakeUsers

NS = "t-moves"
LICENCES = "301001005/000001"  # amr-lic's class in the base catalogue below
Edit = Callable[[dict[str, Any]], None]


def write_catalogue(directory: Path, *edits: Edit) -> Catalogue:
    """The fixture catalogue with a second AMR system, amr-lic, providing LICENCES; then ``edits``."""
    if not directory.exists():
        shutil.copytree(FIXTURE_CATALOGUE, directory)
    doc = yaml.safe_load((FIXTURE_CATALOGUE / "catalogue.yaml").read_text())
    doc["departments"][0]["systems"].append({"code": "amr-lic", "name": "Licensing system"})
    class_of(doc, LICENCES)["system"] = "amr-lic"
    for edit in edits:
        edit(doc)
    (directory / "catalogue.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    return load_catalogue(directory)


def class_of(doc: dict[str, Any], code: str) -> dict[str, Any]:
    return next(c for c in doc["data_classes"] if c["code"] == code)


def licences_to_amr_reg(doc: dict[str, Any]) -> None:
    class_of(doc, LICENCES)["system"] = "amr-reg"


def amr_lic_to_psb(doc: dict[str, Any]) -> None:
    licences_to_amr_reg(doc)  # the class stays with its department, so another AMR system takes it
    doc["departments"][0]["systems"] = [s for s in doc["departments"][0]["systems"] if s["code"] != "amr-lic"]
    doc["departments"][2]["systems"].append({"code": "amr-lic", "name": "Licensing system"})


def amr_lic_removed(doc: dict[str, Any]) -> None:
    licences_to_amr_reg(doc)
    doc["departments"][0]["systems"] = [s for s in doc["departments"][0]["systems"] if s["code"] != "amr-lic"]


class Bus:
    """A reconciler whose catalogue the test swaps, over a fake broker holding the base catalogue's rules."""

    def __init__(self, base: Catalogue, users: FakeUsers) -> None:
        self.catalogue = base
        self.admin = FakeAdmin(desired_acls(base, NS))
        self.registry = CollectorRegistry()
        access = KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT")  # never contacted
        self.reconciler = Reconciler(access, lambda: self.catalogue, NS, interval_s=3600, registry=self.registry)
        self.reconciler.admin = self.admin  # type: ignore[assignment]
        self.reconciler.credentials.users = users  # type: ignore[assignment]
        self.reconciler.run_once()

    def change(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.reconciler.run_once()

    def rules_of(self, system: str) -> set[AclRule]:
        return {r for r in self.admin.rules if r.principal == f"User:{NS}.{system}"}


def writes(rules: set[AclRule]) -> set[str]:
    return {r.resource_name for r in rules if r.operation is Operation.WRITE}


@pytest.fixture
def base(tmp_path: Path) -> Catalogue:
    return write_catalogue(tmp_path / "base")


def test_a_class_given_to_another_system_may_be_written_only_by_it(base: Catalogue, tmp_path: Path) -> None:
    bus = Bus(base, FakeUsers(NS, "amr-reg", "amr-lic"))
    source = TopicNames(NS).source(LICENCES)
    assert writes(bus.rules_of("amr-lic")) == {source}

    bus.change(write_catalogue(tmp_path / "next", licences_to_amr_reg))
    assert writes(bus.rules_of("amr-lic")) == set()
    assert source in writes(bus.rules_of("amr-reg"))
    assert bus.admin.rules == desired_acls(bus.catalogue, NS)


def test_a_system_moved_to_another_department_keeps_only_what_its_catalogue_entry_gives(
    base: Catalogue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = Bus(base, FakeUsers(NS, "amr-reg", "amr-lic"))
    with caplog.at_level(logging.WARNING, "sharebus.access"):
        bus.change(write_catalogue(tmp_path / "next", amr_lic_to_psb))
    t = TopicNames(NS)
    assert {(r.resource_name, r.operation) for r in bus.rules_of("amr-lic")} == {
        (t.delivery("amr-lic"), Operation.READ),
        (t.delivery("amr-lic"), Operation.DESCRIBE),
        (f"{NS}.amr-lic.", Operation.READ),
        (f"{NS}.amr-lic.", Operation.DESCRIBE),
    }
    moved = [r.getMessage() for r in caplog.records if "moved from AMR to PSB" in r.getMessage()]
    assert len(moved) == 1
    assert "sharebus credentials rotate --system amr-lic" in moved[0]


def test_a_move_of_a_system_without_a_credential_is_not_reported(
    base: Catalogue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = Bus(base, FakeUsers(NS, "amr-reg"))
    with caplog.at_level(logging.WARNING, "sharebus.access"):
        bus.change(write_catalogue(tmp_path / "next", amr_lic_to_psb))
    assert not [r for r in caplog.records if "moved from" in r.getMessage()]


def test_a_removed_system_loses_every_rule_and_its_live_credential_is_reported_every_run(
    base: Catalogue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = Bus(base, FakeUsers(NS, "amr-reg", "amr-lic"))
    assert bus.reconciler.health().removed_credentials == ()
    with caplog.at_level(logging.WARNING, "sharebus.access"):
        bus.change(write_catalogue(tmp_path / "next", amr_lic_removed))
        assert bus.rules_of("amr-lic") == set()
        assert bus.reconciler.run_once().in_step
    warnings = [r.getMessage() for r in caplog.records if "amr-lic is not in the catalogue" in r.getMessage()]
    assert len(warnings) == 2  # one per run, until it is revoked
    assert "sharebus credentials revoke --system amr-lic" in warnings[0]
    health = bus.reconciler.health()
    assert health.removed_credentials == ("amr-lic",)
    assert health_body(health)["removed_system_credentials"] == ["amr-lic"]
    assert health_body(health)["ready"] is True  # the ACLs are in step
    assert bus.registry.get_sample_value("sharebus_acl_removed_system_credentials") == 1

    bus.reconciler.credentials.users.delete(f"{NS}.amr-lic")
    bus.reconciler.run_once()
    assert bus.reconciler.health().removed_credentials == ()
    assert bus.registry.get_sample_value("sharebus_acl_removed_system_credentials") == 0


def test_only_this_namespaces_systems_count_as_removed(base: Catalogue) -> None:
    users = [f"{NS}.gone", f"{NS}.amr-reg", f"{NS}-router", f"{NS}x.gone", "t-other.gone", "sharebus-admin"]
    assert removed_systems(users, base, NS) == ("gone",)
    assert moved_systems({"a": "X", "b": "Y"}, {"a": "X", "b": "Z", "c": "W"}) == {"b": ("Y", "Z")}


def credentials(catalogue: Catalogue, users: FakeUsers) -> SystemCredentials:
    made = SystemCredentials(KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT"), catalogue, NS)
    made.users = users  # type: ignore[assignment]
    return made


def test_credentials_list_marks_a_removed_system_and_revoke_takes_it(tmp_path: Path) -> None:
    catalogue = write_catalogue(tmp_path / "next", amr_lic_removed)
    users = FakeUsers(NS, "amr-reg", "amr-lic")
    creds = credentials(catalogue, users)

    statuses = creds.list()
    assert [s.system for s in statuses] == [*sorted(catalogue.systems), "amr-lic"]
    assert statuses[-1] == CredentialStatus("amr-lic", f"{NS}.amr-lic", True, 8192, in_catalogue=False)
    assert creds.list(["amr-lic"]) == [statuses[-1]]
    listing = _listing(statuses).splitlines()
    assert "REMOVED from the catalogue: revoke it (sharebus credentials revoke --system amr-lic)" in listing[-1]
    assert not [line for line in listing[:-1] if "REMOVED" in line]

    creds.revoke("amr-lic")
    assert f"{NS}.amr-lic" not in users.iterations()
    assert [s.system for s in creds.list()] == sorted(catalogue.systems)
    with pytest.raises(UnknownSystem):
        creds.revoke("amr-lic")  # now neither in the catalogue nor with a credential
    with pytest.raises(UnknownSystem):
        creds.list(["amr-lic"])
    with pytest.raises(NotIssued):
        creds.revoke("tax-levy")  # in the catalogue, never issued
