"""The scrape token: one setting for the bus, refused when missing or unusable (naming the variables),
made once by ``sharebus run`` (0600), and every service that serves /metrics refuses to start without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from sharebus_core.key_files import bus_keys
from sharebus_core.scrape_auth import (
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    ScrapeTokenError,
    ensure_scrape_token,
    load_scrape_token,
    scrape_headers,
)
from sharebus_core.settings import BusSettings
from sharebus_federation.settings import FederationSettings
from sharebus_router.settings import RouterSettings


def test_no_token_is_refused_naming_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    for settings in (BusSettings(), RouterSettings(), FederationSettings()):
        with pytest.raises(ScrapeTokenError, match=f"{TOKEN_FILE_ENV}.*{TOKEN_ENV}"):
            settings.scrape_auth()


def test_the_file_wins_and_is_read_without_its_newline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ensure_scrape_token(tmp_path / "run" / "scrape-token")
    monkeypatch.setenv(TOKEN_FILE_ENV, str(path))
    monkeypatch.setenv(TOKEN_ENV, "v" * 40)
    expected = path.read_text().strip()
    for settings in (BusSettings(), RouterSettings(), FederationSettings()):
        token = settings.scrape_auth()
        assert token.secret.get_secret_value() == expected
        assert token.admits(f"Bearer {expected}")
        assert not token.admits(f"Bearer {'v' * 40}")
    assert scrape_headers() == {"Authorization": f"Bearer {expected}"}
    monkeypatch.delenv(TOKEN_FILE_ENV)
    assert BusSettings().scrape_auth().admits(f"Bearer {'v' * 40}")


@pytest.mark.parametrize("value", ["", "short", "has a space in it and is long enough", "\n"])
def test_an_unusable_token_is_refused(value: str, tmp_path: Path) -> None:
    with pytest.raises(ScrapeTokenError, match=TOKEN_ENV):
        load_scrape_token(SecretStr(value), None)
    path = tmp_path / "token"
    path.write_text(value)
    with pytest.raises(ScrapeTokenError, match=TOKEN_FILE_ENV):
        load_scrape_token(None, path)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ScrapeTokenError, match="nothing-here"):
        load_scrape_token(None, tmp_path / "nothing-here")


def test_the_run_makes_the_token_once_0600(tmp_path: Path) -> None:
    path = ensure_scrape_token(tmp_path / "state" / "scrape-token")
    assert path.stat().st_mode & 0o777 == 0o600
    first = path.read_text()
    assert len(first.strip()) >= 40
    path.chmod(0o644)
    assert ensure_scrape_token(path).read_text() == first  # kept, and made private again
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_scrape_token(tmp_path / "other").read_text() != first


def test_a_broken_token_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "scrape-token"
    path.write_text("oops")
    with pytest.raises(ScrapeTokenError):
        ensure_scrape_token(path)
    assert path.read_text() == "oops"


@pytest.mark.parametrize("module", ["sharebus_monitor", "sharebus_audit", "sharebus_router", "sharebus_access"])
def test_a_service_without_a_token_refuses_to_start(module: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, TOKEN_FILE_ENV)}
    # Nothing listens there: a service that got past the token check would fail later, and otherwise.
    env.update({"SHAREBUS_BOOTSTRAP": "127.0.0.1:1", "SHAREBUS_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"})
    env.update({"SHAREBUS_CONTROL_VERIFY_KEY_FILE": str(_verify_key(tmp_path))})
    env.update({"SHAREBUS_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "keys" / "audit-signing.pem")})
    result = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert TOKEN_FILE_ENV in result.stderr


def _verify_key(tmp_path: Path) -> Path:
    return bus_keys(tmp_path / "keys").control_public
