"""API-key reads fail closed: a read that times out is an error, never "no keys"."""

from __future__ import annotations

import pytest

from sharebus_cli.main import main as cli
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_gateway import keys
from sharebus_gateway.keys import KeyStore, KeysUnavailable
from tests.integration.conftest import FIXTURE_CATALOGUE
from tests.support.keys import control_keys, keys_in_env
from tests.support.names import unique

# Far shorter than the broker's first fetch over TLS: every read of the key log times out.
NO_TIME_S = 0.001


def test_a_revoke_whose_read_times_out_fails_and_revokes_nothing(
    kafka_admin: KafkaAccess, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KeyStore(load_catalogue(FIXTURE_CATALOGUE), kafka_admin, unique("t.apikeys"), control=control_keys())
    issued = store.issue("tax-levy")

    monkeypatch.setattr(keys, "READ_TIMEOUT_S", NO_TIME_S)
    with pytest.raises(KeysUnavailable, match="cannot read the API keys"):
        store.revoke("tax-levy")
    with pytest.raises(KeysUnavailable):
        store.keys_of("tax-levy")

    monkeypatch.undo()
    assert [k.key_id for k in store.keys_of("tax-levy") if k.active] == [issued.key.key_id]
    assert [k.key_id for k in store.revoke("tax-levy")] == [issued.key.key_id]


def test_a_missing_key_topic_is_no_keys(kafka_admin: KafkaAccess) -> None:
    store = KeyStore(load_catalogue(FIXTURE_CATALOGUE), kafka_admin, unique("t.apikeys"), control=control_keys())
    assert store.keys_of("tax-levy") == []


def test_the_cli_exits_non_zero_when_the_keys_cannot_be_read(
    kafka_admin: KafkaAccess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = unique("t")
    store = KeyStore(
        load_catalogue(FIXTURE_CATALOGUE), kafka_admin, TopicNames(namespace).api_keys, control=control_keys()
    )
    store.issue("tax-levy")
    for name, value in (*kafka_admin.env().items(), ("SHAREBUS_NAMESPACE", namespace)):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    keys_in_env(monkeypatch)
    monkeypatch.setattr(keys, "READ_TIMEOUT_S", NO_TIME_S)

    assert cli(["apikey", "revoke", "--system", "tax-levy"]) == 6
    assert "cannot read the API keys" in capsys.readouterr().err
    monkeypatch.setattr(keys, "READ_TIMEOUT_S", 30.0)
    assert [k.active for k in store.keys_of("tax-levy")] == [True]
