"""The bus's signing keys for tests: one control pair and one audit pair, made once (idempotent) in
``var/test-keys`` and shared by every test process and every service a test starts."""

from __future__ import annotations

import functools

import pytest

from sharebus_core.key_files import BusKeys, bus_keys
from sharebus_core.settings import REPO_ROOT, BusSettings
from sharebus_core.signing import ControlKeys

KEYS_DIR = REPO_ROOT / "var" / "test-keys"


@functools.cache
def keys_for_tests() -> BusKeys:
    return bus_keys(KEYS_DIR)


@functools.cache
def control_keys() -> ControlKeys:
    """What the operator's CLI holds: the control plane's signing and verify keys."""
    return keys_for_tests().control_keys(BusSettings.model_fields["control_max_delay_s"].default)


def reader_env() -> dict[str, str]:
    """Public keys, for every service (router, gateway, auditor) and the CLI."""
    return keys_for_tests().everyone


def writer_env() -> dict[str, str]:
    """Public keys plus the control signing key: the gateway and the operator's CLI."""
    return {**keys_for_tests().everyone, **keys_for_tests().control_writer}


def auditor_env() -> dict[str, str]:
    return {**keys_for_tests().everyone, **keys_for_tests().auditor}


def keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gives the CLI run in-process what the operator's shell would have: the public keys and the control
    signing key (``Bus.use_in_env`` could do this for every CLI test)."""
    for name, value in writer_env().items():
        monkeypatch.setenv(name, value)
