"""A system removed from the catalogue, on the real broker: its rules go at the reconciler's next run,
its credential is reported and listed until revoked, and it can be revoked by its code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sharebus_access.credentials import SystemCredentials
from sharebus_access.reconcile import Reconciler
from sharebus_cli.main import main as cli
from sharebus_core.kafka import KafkaAccess
from tests.integration.test_access import use_admin
from tests.support.access import OK, login_refusal, provision_namespace, write_outcomes
from tests.support.names import unique
from tests.unit.test_catalogue_change_access import LICENCES, amr_lic_removed, write_catalogue

pytestmark = pytest.mark.broker


def test_a_removed_systems_credential_is_reported_listed_and_revocable(
    kafka_admin: KafkaAccess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_catalogue(tmp_path / "base")
    topics = provision_namespace(kafka_admin, base, unique("acl"))
    licensing = SystemCredentials(kafka_admin, base, topics.namespace).issue("amr-lic").access
    source = topics.source(LICENCES)
    assert write_outcomes(licensing, [source]) == {source: OK}

    removed = write_catalogue(tmp_path / "removed", amr_lic_removed)
    ns = topics.namespace
    reconciler = Reconciler(kafka_admin, lambda: removed, ns, interval_s=3600, registry=CollectorRegistry())
    reconciler.run_once()
    assert write_outcomes(licensing, [source]) == {source: "TOPIC_AUTHORIZATION_FAILED"}
    assert reconciler.health().removed_credentials == ("amr-lic",)

    use_admin(monkeypatch, kafka_admin, topics.namespace, tmp_path / "removed")
    assert cli(["credentials", "list"]) == 0
    marked = [line for line in capsys.readouterr().out.splitlines() if "REMOVED from the catalogue" in line]
    assert [line.split()[0] for line in marked] == ["amr-lic"]
    assert cli(["credentials", "list", "--json"]) == 0
    listed = {s["system"]: s["in_catalogue"] for s in json.loads(capsys.readouterr().out)}
    assert listed == {**dict.fromkeys(removed.systems, True), "amr-lic": False}

    assert cli(["acl", "plan"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"! User:{ns}.amr-lic has a credential but amr-lic is not in the catalogue: "
        "sharebus credentials revoke --system amr-lic",
        "ACLs in step with the catalogue",
    ]

    assert cli(["credentials", "revoke", "--system", "amr-lic"]) == 0
    assert login_refusal(licensing) is not None
    reconciler.run_once()
    assert reconciler.health().removed_credentials == ()
    capsys.readouterr()
    assert cli(["credentials", "revoke", "--system", "amr-lic"]) == 4
    assert "unknown system 'amr-lic'" in capsys.readouterr().err
    assert cli(["acl", "plan"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ACLs in step with the catalogue"]
