"""Reading the ACLs needs the admin: any other principal gets a clear refusal, never "no ACLs"
(which would make a plan say every rule is missing). On the real, secured broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from sharebus_access.errors import AclError, AclsUnreadable
from sharebus_access.reconcile import AclAdmin, Reconciler, reconcile
from sharebus_cli.main import main as cli
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import Principals
from tests.support.names import unique
from tests.support.principals import delete_scram_user, scram_user
from tests.unit.fixtures import FIXTURE_CATALOGUE

pytestmark = pytest.mark.broker


@pytest.fixture
def operator(kafka_admin: KafkaAccess) -> Iterator[tuple[str, KafkaAccess]]:
    """A provisioned namespace and its operator, a principal with rules of its own but no cluster rights."""
    namespace = unique("acl")
    reconcile(kafka_admin, load_catalogue(FIXTURE_CATALOGUE), namespace)
    username = Principals(namespace).service("operator")
    yield namespace, scram_user(kafka_admin, username)
    delete_scram_user(kafka_admin, username)


def test_a_principal_that_may_not_describe_acls_is_refused_not_told_none(operator: tuple[str, KafkaAccess]) -> None:
    namespace, access = operator
    with pytest.raises(AclsUnreadable, match=f"User:{namespace}-operator may not read the cluster's ACLs") as caught:
        AclAdmin(access).current()
    assert isinstance(caught.value, AclError)


def test_the_reconciler_with_a_non_admin_fails_its_run_and_says_why(operator: tuple[str, KafkaAccess]) -> None:
    namespace, access = operator
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    reconciler = Reconciler(access, lambda: catalogue, namespace, interval_s=3600, registry=CollectorRegistry())
    with pytest.raises(AclsUnreadable):
        reconciler.run_once()
    health = reconciler.health()
    assert not health.healthy
    assert health.last_plan is None
    assert "may not read the cluster's ACLs" in (health.last_error or "")


def test_acl_plan_with_a_non_admin_prints_one_line_and_fails(
    operator: tuple[str, KafkaAccess], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace, access = operator
    for name, value in access.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SHAREBUS_KAFKA_CREDENTIALS_FILE", raising=False)
    monkeypatch.setenv("SHAREBUS_NAMESPACE", namespace)
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    for action in ("plan", "apply"):
        assert cli(["acl", action]) != 0
        out, err = capsys.readouterr()
        assert out == ""
        assert "MISSING" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert f"User:{namespace}-operator may not" in err
