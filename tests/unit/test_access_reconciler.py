"""The reconciler's bookkeeping over a fake broker: repairs, metrics, health, poke. The real broker
is in tests/integration/test_access.py."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from sharebus_access.acls import AclRule, Operation, PatternType, ResourceType, desired_acls
from sharebus_access.errors import AclError, NotIssued
from sharebus_access.reconcile import Reconciler
from sharebus_access.server import health_body
from sharebus_cli.main import main as cli
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.kafka import KafkaAccess, write_credentials_file
from tests.unit.fixtures import FIXTURE_CATALOGUE

NS = "t-unit"
INTRUDER = AclRule("User:intruder", ResourceType.TOPIC, f"{NS}.grants", PatternType.LITERAL, Operation.WRITE)
ELSEWHERE = AclRule("User:t-else.x", ResourceType.TOPIC, "t-else.dlv.x", PatternType.LITERAL, Operation.READ)


class FakeAdmin:
    """The broker's ACLs in memory; fails while ``failing`` is set."""

    def __init__(self, rules: Iterable[AclRule]) -> None:
        self.rules = set(rules)
        self.failing = False

    def _check(self) -> None:
        if self.failing:
            raise AclError("cannot read the ACLs: broker down")

    def current(self) -> frozenset[AclRule]:
        self._check()
        return frozenset(self.rules)

    def create(self, rules: Iterable[AclRule]) -> None:
        self._check()
        self.rules |= set(rules)

    def delete(self, rules: Iterable[AclRule]) -> None:
        self._check()
        self.rules -= set(rules)


class FakeUsers:
    """The cluster's SCRAM users in memory: ``<ns>.<system>`` for each of ``systems``."""

    def __init__(self, namespace: str = NS, *systems: str) -> None:
        self.users = {f"{namespace}.{system}": 8192 for system in systems}

    def iterations(self) -> dict[str, int]:
        return dict(self.users)

    def delete(self, username: str) -> None:
        if self.users.pop(username, None) is None:
            raise NotIssued(f"{username} has no credential")


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def catalogue() -> Catalogue:
    return load_catalogue(FIXTURE_CATALOGUE)


def reconciler(catalogue: Catalogue, admin: FakeAdmin, registry: CollectorRegistry) -> Reconciler:
    access = KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT")  # never contacted
    made = Reconciler(access, lambda: catalogue, NS, interval_s=3600, registry=registry)
    made.admin = admin  # type: ignore[assignment]
    made.credentials.users = FakeUsers()  # type: ignore[assignment]
    return made


def test_a_run_repairs_drift_within_the_namespace_and_reports_it(catalogue: Catalogue) -> None:
    desired = desired_acls(catalogue, NS)
    dropped = sorted(desired)[:3]
    admin = FakeAdmin((desired - set(dropped)) | {INTRUDER, ELSEWHERE})
    registry = CollectorRegistry()
    r = reconciler(catalogue, admin, registry)

    plan = r.run_once()
    assert plan.missing == set(dropped)
    assert plan.extra == {INTRUDER}
    assert admin.rules == desired | {ELSEWHERE}
    assert sample(registry, "sharebus_acl_drift", kind="missing") == 3
    assert sample(registry, "sharebus_acl_drift", kind="extra") == 1
    assert sample(registry, "sharebus_acl_reconcile_total", outcome="repaired") == 1
    assert sample(registry, "sharebus_acl_changes_total", kind="created") == 3
    assert sample(registry, "sharebus_acl_changes_total", kind="deleted") == 1

    assert r.run_once().in_step
    assert sample(registry, "sharebus_acl_drift", kind="missing") == 0
    assert sample(registry, "sharebus_acl_reconcile_total", outcome="in_step") == 1
    assert r.health().healthy
    assert r.health().runs == 2


def test_a_failed_run_changes_nothing_and_health_says_why_until_a_run_succeeds(catalogue: Catalogue) -> None:
    admin = FakeAdmin(())
    admin.failing = True
    registry = CollectorRegistry()
    r = reconciler(catalogue, admin, registry)
    with pytest.raises(AclError):
        r.run_once()
    health = r.health()
    assert not health.healthy
    assert health.last_error is not None
    assert "broker down" in health.last_error
    assert health_body(health)["ready"] is False
    assert sample(registry, "sharebus_acl_reconcile_total", outcome="failed") == 1
    assert admin.rules == set()

    admin.failing = False
    r.run_once()
    assert r.health().healthy
    assert health_body(r.health())["last_drift"] == {"missing": len(desired_acls(catalogue, NS)), "extra": 0}


def test_the_thread_runs_on_start_and_when_poked(catalogue: Catalogue) -> None:
    admin = FakeAdmin(())
    r = reconciler(catalogue, admin, CollectorRegistry()).start()
    try:
        assert r.wait_runs(1, 10)
        assert admin.rules == desired_acls(catalogue, NS)
        admin.rules.add(INTRUDER)
        r.poke()  # the timer is an hour: only the poke can make this run
        assert r.wait_runs(2, 10)
        assert INTRUDER not in admin.rules
    finally:
        r.stop()


def test_a_credential_file_is_the_owners_only_even_when_it_existed(tmp_path: Path) -> None:
    path = tmp_path / "tax-levy.json"
    path.write_text("old")
    os.chmod(path, 0o644)
    access = KafkaAccess(bootstrap="h:1", username="t.tax-levy", password=SecretStr("pw"), ca_file=tmp_path / "ca.pem")
    write_credentials_file(path, access)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "username": "t.tax-levy",
        "password": "pw",
        "bootstrap": "h:1",
        "ca_file": str(tmp_path / "ca.pem"),
    }


@pytest.fixture
def admin_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An admin credential in the environment, for a broker that is never reached."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    monkeypatch.setenv("SHAREBUS_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("SHAREBUS_KAFKA_USERNAME", "sharebus-admin")
    monkeypatch.setenv("SHAREBUS_KAFKA_PASSWORD", "x")
    monkeypatch.setenv("SHAREBUS_KAFKA_CA_FILE", str(ca))
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    monkeypatch.delenv("SHAREBUS_KAFKA_CREDENTIALS_FILE", raising=False)


@pytest.mark.usefixtures("admin_env")
@pytest.mark.parametrize(
    "argv",
    [
        ["credentials", "issue", "--system", "no-such-system"],
        ["credentials", "rotate", "--system", "no-such-system"],
        ["acl", "show", "--system", "no-such-system"],
    ],
)
def test_an_unknown_system_is_named_and_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(argv) == 4
    assert "unknown system 'no-such-system'" in capsys.readouterr().err


def test_without_a_credential_the_commands_say_which_one_they_need(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SHAREBUS_KAFKA_USERNAME", "SHAREBUS_KAFKA_PASSWORD", "SHAREBUS_KAFKA_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    assert cli(["acl", "plan"]) == 1
    assert "need the admin credential" in capsys.readouterr().err
