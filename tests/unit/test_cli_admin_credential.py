"""``sharebus credentials`` and ``sharebus acl`` run with a credential that is not the admin's.

The README sends operators to the operator's credential file for most commands, and a newcomer
tries it for these too. On the real broker that credential may not describe the cluster: the
SCRAM listing is refused (and confluent-kafka 2.16 then aborted the process with
``munmap_chunk(): invalid pointer``), and the ACL listing comes back empty, so ``acl plan`` and
``acl show`` reported every rule of the namespace as missing, exit 0. The fake admin client below
answers as that broker did; the commands must name the credential they need before asking it
anything else.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin._acl import AclOperation

from sharebus_cli.credentials_cmd import NotAdmin, admin_access
from sharebus_cli.main import main
from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import BusSettings
from tests.unit.fixtures import FIXTURE_CATALOGUE


class Done:
    def __init__(self, value: Any = None, error: KafkaException | None = None) -> None:
        self.value, self.error = value, error

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class BrokerAsSeenBy:
    """An admin client of a principal with ``operations`` on the cluster (None: no operation)."""

    def __init__(self, operations: list[AclOperation] | None) -> None:
        self.operations = operations

    def describe_cluster(self, **_: Any) -> Done:
        return Done(SimpleNamespace(authorized_operations=self.operations, cluster_id="c", nodes=[]))

    def describe_user_scram_credentials(self, **_: Any) -> Done:
        return Done(error=KafkaException(KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED)))

    def describe_acls(self, *_: Any, **__: Any) -> Done:
        return Done([])  # what the broker answered the operator: nothing, no error


@pytest.fixture
def operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BrokerAsSeenBy:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read: the fake client never connects\n")
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    monkeypatch.setenv("SHAREBUS_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.delenv("SHAREBUS_KAFKA_CREDENTIALS_FILE", raising=False)
    monkeypatch.setenv("SHAREBUS_KAFKA_USERNAME", "sharebus-operator")
    monkeypatch.setenv("SHAREBUS_KAFKA_PASSWORD", "secret")
    monkeypatch.setenv("SHAREBUS_KAFKA_CA_FILE", str(ca))
    broker = BrokerAsSeenBy(None)
    monkeypatch.setattr(KafkaAccess, "admin", lambda self, config=None: broker)
    return broker


@pytest.mark.parametrize(
    "command",
    [
        ["credentials", "list"],
        ["credentials", "issue", "--system", "tax-levy"],
        ["acl", "plan"],
        ["acl", "show", "--system", "tax-levy"],
        ["acl", "apply"],
    ],
)
def test_a_credential_without_cluster_rights_is_refused_up_front(
    operator: BrokerAsSeenBy, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 7
    out, err = capsys.readouterr()
    assert out == ""  # no table of "MISSING" rules, no listing
    assert "User:sharebus-operator may not" in err
    assert "admin credential" in err
    assert "sharebus-admin.json" in err


def test_reading_needs_describe_and_changing_needs_alter(operator: BrokerAsSeenBy) -> None:
    settings = BusSettings()
    operator.operations = [AclOperation.DESCRIBE]
    assert admin_access(settings).username == "sharebus-operator"
    with pytest.raises(NotAdmin, match="no ALTER on the cluster"):
        admin_access(settings, change=True)
    operator.operations = [AclOperation.DESCRIBE, AclOperation.ALTER, AclOperation.CREATE]
    assert admin_access(settings, change=True).username == "sharebus-operator"
