"""bus-init (sharebus_cli/compose_init.py): a service's credential is kept across `docker compose up`,
and each service's volume holds only what that service may hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from sharebus_cli.compose_init import (
    CREDENTIALS_FILE,
    PRINCIPALS,
    SCRAPE_TOKEN_FILE,
    kept_credentials,
    keys_for,
    write_prometheus_token,
    write_service_dir,
)
from sharebus_core.kafka import KafkaAccess, KafkaAccessError, read_credentials_file
from sharebus_core.key_files import bus_keys
from sharebus_core.principals import Principals
from sharebus_core.scrape_auth import TOKEN_FILE_ENV, ensure_scrape_token

NAMES = Principals("sharebus")


def _access(username: str, secret: str = "not-a-real-password") -> KafkaAccess:  # noqa: S107 - a test value
    return KafkaAccess(bootstrap="kafka-1:9092", username=username, password=SecretStr(secret))


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "admin" / "ca.pem"
    path.parent.mkdir()
    path.write_text("CA CERTIFICATE")
    return path


def test_an_existing_credential_is_kept_and_only_missing_ones_are_issued(tmp_path: Path, ca_file: Path) -> None:
    write_service_dir(tmp_path, "router", _access(NAMES.service("router"), "first"), ca_file, {}, owner=False)
    write_service_dir(tmp_path, "gateway", _access(NAMES.service("gateway")), ca_file, {}, owner=False)
    known = {NAMES.service("router"), NAMES.service("gateway"), NAMES.service("auditor")}
    kept = kept_credentials(tmp_path, NAMES, known)
    assert kept == {"router", "gateway"}
    # The auditor's user exists but its file is gone: it gets a new password, as does every other service.
    assert set(PRINCIPALS.values()) - kept == {"registry", "auditor", "monitor", "operator", "portal"}
    # A kept service's directory is rewritten without a credential: the password it runs with stays.
    write_service_dir(tmp_path, "router", None, ca_file, {}, owner=False)
    stored = read_credentials_file(tmp_path / "router" / CREDENTIALS_FILE)
    assert stored.password.get_secret_value() == "first"
    assert stored.ca_file == tmp_path / "router" / "ca.pem"


def test_a_credential_whose_user_is_gone_is_issued_again(tmp_path: Path, ca_file: Path) -> None:
    # E.g. the brokers' data volumes were removed: the file's password no longer logs in.
    write_service_dir(tmp_path, "router", _access(NAMES.service("router")), ca_file, {}, owner=False)
    assert kept_credentials(tmp_path, NAMES, set()) == set()


def test_a_file_for_another_principal_is_not_kept(tmp_path: Path, ca_file: Path) -> None:
    write_service_dir(tmp_path, "router", _access("other-router"), ca_file, {}, owner=False)
    assert kept_credentials(tmp_path, NAMES, {NAMES.service("router"), "other-router"}) == set()


def test_an_unreadable_credential_file_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / CREDENTIALS_FILE).write_text("not json")
    with pytest.raises(KafkaAccessError, match=CREDENTIALS_FILE):
        kept_credentials(tmp_path, NAMES, {NAMES.service("router")})


def test_a_service_directory_holds_only_its_own_keys(tmp_path: Path, ca_file: Path) -> None:
    keys = bus_keys(tmp_path / "keys")
    homes = {
        name: write_service_dir(tmp_path, name, _access(NAMES.service(s)), ca_file, keys_for(s, keys), owner=False)
        for name, s in PRINCIPALS.items()
    }
    private = {keys.control_private.name, keys.audit_private.name}
    holding = {name: private & {p.name for p in home.iterdir()} for name, home in homes.items()}
    assert holding == {
        "registry": set(),
        "router": set(),
        "auditor": {keys.audit_private.name},
        "gateway": {keys.control_private.name},
        "monitor": set(),
        "operator": {keys.control_private.name},
        "portal": {keys.control_private.name},
    }
    for home in homes.values():
        assert home.stat().st_mode & 0o077 == 0
        assert all(p.stat().st_mode & 0o077 == 0 for p in home.iterdir())
        env = (home / "env").read_text()
        # The env file names files in the service's own directory only.
        paths = [line.split("='", 1)[1].rstrip("'") for line in env.splitlines()]
        assert paths
        assert all(Path(p).parent == home for p in paths)


def test_prometheus_gets_the_scrape_token_alone_and_each_service_a_copy(tmp_path: Path, ca_file: Path) -> None:
    token = ensure_scrape_token(tmp_path / "keys" / SCRAPE_TOKEN_FILE)
    written = write_prometheus_token(tmp_path, token, owner=False)
    assert written == tmp_path / "prometheus" / SCRAPE_TOKEN_FILE
    assert written.read_text() == token.read_text()
    assert written.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in written.parent.iterdir()) == [SCRAPE_TOKEN_FILE]
    home = write_service_dir(
        tmp_path, "monitor", _access(NAMES.service("monitor")), ca_file, {TOKEN_FILE_ENV: str(token)}, owner=False
    )
    assert (home / SCRAPE_TOKEN_FILE).read_text() == token.read_text()
    assert f"export {TOKEN_FILE_ENV}='{home / SCRAPE_TOKEN_FILE}'" in (home / "env").read_text()
