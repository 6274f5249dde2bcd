"""ACLs and credentials on the real, secured broker: plan and apply, drift repaired by the
reconciler (as a service and in-process), and a system credential issued, rotated and revoked."""

from __future__ import annotations

import json
import shutil
import signal
import stat
import time
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer, KafkaError
from prometheus_client import CollectorRegistry

from sharebus_access.acls import AclRule, Operation, PatternType, ResourceType, desired_acls, system_acls
from sharebus_access.plan import Scope
from sharebus_access.reconcile import AclAdmin, Reconciler, read_plan, reconcile
from sharebus_broker.launcher import free_port
from sharebus_cli.children import start_child
from sharebus_cli.main import main as cli
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import Principals
from sharebus_core.settings import BusSettings
from tests.support.access import AUTH_ERRORS, OK, connects, login_refusal, provision_namespace, read_outcomes
from tests.support.kafka import eventually, metric
from tests.support.names import unique
from tests.support.scrape import scraped

pytestmark = pytest.mark.broker

FIXTURE_CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue"


def use_admin(monkeypatch: pytest.MonkeyPatch, admin: KafkaAccess, namespace: str, catalogue_dir: Path) -> None:
    """The CLI's environment: the operator's admin credential, this namespace and catalogue."""
    for name, value in admin.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SHAREBUS_KAFKA_CREDENTIALS_FILE", raising=False)
    monkeypatch.setenv("SHAREBUS_NAMESPACE", namespace)
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(catalogue_dir))


def in_step(admin: KafkaAccess, namespace: str) -> bool:
    return read_plan(AclAdmin(admin), load_catalogue(FIXTURE_CATALOGUE), Scope(namespace)).in_step


def test_plan_apply_and_idempotence_stay_within_the_namespace(
    kafka_admin: KafkaAccess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    mine, neighbour = unique("acl"), unique("acl")
    reconcile(kafka_admin, catalogue, neighbour)
    admin = AclAdmin(kafka_admin)

    plan = read_plan(admin, catalogue, Scope(mine))
    assert plan.missing == desired_acls(catalogue, mine)
    assert plan.extra == set()
    assert reconcile(kafka_admin, catalogue, mine) == plan
    assert reconcile(kafka_admin, catalogue, mine).in_step  # applying again changes nothing
    assert in_step(kafka_admin, neighbour)

    intruder = AclRule("User:intruder", ResourceType.TOPIC, f"{mine}.grants", PatternType.LITERAL, Operation.WRITE)
    tax = f"User:{mine}.tax-levy"
    dropped = AclRule(tax, ResourceType.TOPIC, f"{mine}.dlv.tax-levy", PatternType.LITERAL, Operation.READ)
    admin.create([intruder])
    admin.delete([dropped])
    use_admin(monkeypatch, kafka_admin, mine, FIXTURE_CATALOGUE)
    assert cli(["acl", "plan"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"+ {dropped}", f"- {intruder}", "1 missing, 1 extra"]
    assert cli(["acl", "show", "--system", "tax-levy"]) == 0
    shown = capsys.readouterr().out
    assert f"{mine}.dlv.tax-levy" in shown
    assert "MISSING" in shown
    assert cli(["acl", "apply"]) == 0
    assert "applied: 1 created, 1 deleted" in capsys.readouterr().out
    assert in_step(kafka_admin, mine)
    assert in_step(kafka_admin, neighbour)
    assert intruder not in admin.current()
    assert cli(["acl", "show", "--service", "router"]) == 0
    assert "and nothing else." in capsys.readouterr().out


def test_the_reconciler_repairs_drift_on_its_timer(kafka_admin: KafkaAccess) -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    namespace = unique("acl")
    registry = CollectorRegistry()
    reconciler = Reconciler(kafka_admin, lambda: catalogue, namespace, interval_s=1.0, registry=registry).start()
    try:
        assert reconciler.wait_runs(1, 30)
        assert in_step(kafka_admin, namespace)
        rule = sorted(system_acls(catalogue, namespace, ["tax-levy"]))[0]
        AclAdmin(kafka_admin).delete([rule])
        assert eventually(lambda: rule in AclAdmin(kafka_admin).current(), bool, 30)
        assert registry.get_sample_value("sharebus_acl_reconcile_total", {"outcome": "repaired"}) == 2
        assert reconciler.health().healthy
    finally:
        reconciler.stop()


def _add_system(catalogue_dir: Path, code: str) -> None:
    path = catalogue_dir / "catalogue.yaml"
    document = yaml.safe_load(path.read_text())
    document["departments"][1]["systems"].append({"code": code, "name": "Tax audit system"})
    # Atomically, as a deployment replaces a file: the service polls and must not see half of it.
    staged = catalogue_dir.parent / "catalogue.yaml.staged"  # outside the watched folder
    staged.write_text(yaml.safe_dump(document, allow_unicode=True))
    staged.replace(path)


def test_the_reconciler_service_repairs_on_signal_and_follows_the_catalogue(
    kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    catalogue_dir = tmp_path / "catalogue"
    shutil.copytree(FIXTURE_CATALOGUE, catalogue_dir)
    namespace, port = unique("acl"), free_port()
    env = {
        **kafka_admin.env(),
        "SHAREBUS_NAMESPACE": namespace,
        "SHAREBUS_CATALOGUE_DIR": str(catalogue_dir),
        "SHAREBUS_ACCESS_METRICS_PORT": str(port),
        # Only a signal or a catalogue change can make it run again within this test.
        "SHAREBUS_ACCESS_INTERVAL_S": "3600",
        "SHAREBUS_ACCESS_CATALOGUE_POLL_S": "0.3",
        "PYTHONUNBUFFERED": "1",
    }
    base = f"http://127.0.0.1:{port}"
    service = start_child("access", "sharebus_access", env, tmp_path / "access.log", f"{base}/readyz", 60)
    try:
        # Created ACLs reach describe_acls through the metadata log: wait for them, never assume.
        assert eventually(lambda: in_step(kafka_admin, namespace), bool, 15)
        rule = sorted(system_acls(load_catalogue(FIXTURE_CATALOGUE), namespace, ["psb-case"]))[0]
        AclAdmin(kafka_admin).delete([rule])
        assert service.process is not None
        service.process.send_signal(signal.SIGHUP)
        assert eventually(lambda: rule in AclAdmin(kafka_admin).current(), bool, 15)
        assert eventually(lambda: metric(f"{base}/metrics", "sharebus_acl_drift", kind="missing"), lambda v: v == 1)
        assert metric(f"{base}/metrics", "sharebus_acl_reconcile_total", outcome="repaired") == 2

        _add_system(catalogue_dir, "tax-audit")
        added = system_acls(load_catalogue(catalogue_dir), namespace, ["tax-audit"])
        assert eventually(lambda: added <= AclAdmin(kafka_admin).current(), bool, 15)
        ready = scraped(f"{base}/readyz").json()
        assert ready["ready"] is True
        assert ready["runs"] == 3
        assert ready["last_drift"] == {"missing": len(added), "extra": 0}
    finally:
        assert service.stop() == 0


def cut_off(consumer: Consumer, errors: list[KafkaError]) -> bool:
    """Polls once; whether the broker has refused the consumer's credential since it connected."""
    consumer.poll(0.2)
    return any(error.code() in AUTH_ERRORS for error in errors)


def _password(out: str) -> str:
    return out.strip().splitlines()[-1].rsplit(" ", 1)[-1]


def test_a_credential_works_until_rotated_or_revoked(
    kafka_admin: KafkaAccess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    topics = provision_namespace(kafka_admin, catalogue, unique("cred"))
    own = topics.delivery("tax-levy")
    producer = kafka_admin.producer()
    producer.produce(own, b"for tax-levy", key=b"k")
    assert producer.flush(30) == 0
    use_admin(monkeypatch, kafka_admin, topics.namespace, FIXTURE_CATALOGUE)
    group = Principals(topics.namespace).consumer_group_prefix("tax-levy")

    out = tmp_path / "tax-levy.json"
    assert cli(["credentials", "issue", "--system", "tax-levy", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert set(json.loads(out.read_text())) == {"username", "password", "bootstrap", "ca_file"}
    first = BusSettings(bootstrap_servers=kafka_admin.bootstrap, kafka_credentials_file=out).kafka
    assert first.username == f"{topics.namespace}.tax-levy"
    assert read_outcomes(first, f"{group}first", [own]) == {own: OK}
    assert login_refusal(first.as_user(first.username, "not-the-password")) is not None

    assert cli(["credentials", "issue", "--system", "tax-levy"]) == 3
    assert "rotate it" in capsys.readouterr().err
    assert cli(["credentials", "list", "--system", "tax-levy"]) == 0
    assert "SCRAM-SHA-512, 8192 iterations" in capsys.readouterr().out

    assert cli(["credentials", "rotate", "--system", "tax-levy"]) == 0
    second = first.as_user(first.username, _password(capsys.readouterr().out))
    assert login_refusal(first) is not None
    assert connects(second)

    # A consumer connected before the revocation is cut off when it next re-authenticates (10 s).
    errors: list[KafkaError] = []
    consumer = second.consumer(
        {
            "group.id": f"{group}open",
            "auto.offset.reset": "earliest",
            "error_cb": errors.append,
            # Nothing to commit at close: a consumer whose credential is gone would wait 45 s trying.
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([own])
    try:
        assert eventually(lambda: consumer.poll(0.5), lambda msg: msg is not None and msg.error() is None, 30)
        assert cli(["credentials", "revoke", "--system", "tax-levy"]) == 0
        revoked_at = time.monotonic()
        assert login_refusal(second) is not None
        assert eventually(lambda: cut_off(consumer, errors), bool, 30)
        assert time.monotonic() - revoked_at < 25
    finally:
        consumer.close()
    capsys.readouterr()
    assert cli(["credentials", "revoke", "--system", "tax-levy"]) == 4
    assert "no credential to revoke" in capsys.readouterr().err
