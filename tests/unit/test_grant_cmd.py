"""``sharebus grant list`` when nothing matches: the answer says what was asked (no gateway needed)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any

import pytest

from sharebus_cli import grant_cmd
from sharebus_cli.gateway_client import GatewayClient


class NoGrants:
    def acting_as(self, department: str | None) -> SimpleNamespace:
        return SimpleNamespace(department="BDB", system="bdb-basedb")

    def call(self, method: str, path: str, body: Any = None, params: Any = None) -> list[Any]:
        return []


def listing(**options: Any) -> argparse.Namespace:
    return argparse.Namespace(action="list", department=None, json=False, state=None, overdue=False, **options)


@pytest.fixture(autouse=True)
def _gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GatewayClient, "from_args", classmethod(lambda cls, args: NoGrants()))


def test_no_grants_at_all() -> None:
    assert grant_cmd.run(listing()) == "no grants visible to BDB"


def test_no_overdue_application_is_not_reported_as_no_grant_at_all() -> None:
    """BDB has grants; ``--overdue`` answered "no grants visible to BDB" as if it had none."""
    args = listing()
    args.overdue = True
    assert grant_cmd.run(args) == "no overdue applications visible to BDB"
    args.state = "applied"
    assert grant_cmd.run(args) == "no overdue applications visible to BDB"
    args.overdue, args.state = False, "revoked"
    assert grant_cmd.run(args) == "no revoked grants visible to BDB"
