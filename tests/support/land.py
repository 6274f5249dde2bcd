"""Running ``python -m sharebus_land`` for tests, with a system's own credential, and reading what it landed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sharebus_access.credentials import SystemCredentials
from sharebus_cli.children import Child
from sharebus_core.kafka import KafkaAccess
from sharebus_land.store import engine_url
from tests.integration.conftest import FIXTURE_CATALOGUE, Bus
from tests.support.postgres import Postgres


def database_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of ``kind``: a SQLite file, or a database of its own on the session's PostgreSQL."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'land.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.new_database()


def system_access(bus: Bus, system: str) -> KafkaAccess:
    """The system's own credential (the sink never runs as the admin or a bus service)."""
    return SystemCredentials(bus.access, bus.catalogue, bus.namespace).renew(system).access


def sink_env(
    bus: Bus, access: KafkaAccess, system: str, url: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    return {
        **access.env(),
        "SHAREBUS_NAMESPACE": bus.namespace,
        "SHAREBUS_REGISTRY_URL": bus.registry_url,
        "SHAREBUS_CATALOGUE_DIR": str(FIXTURE_CATALOGUE),
        "SHAREBUS_LAND_SYSTEM": system,
        "SHAREBUS_LAND_DATABASE_URL": url,
        "SHAREBUS_LAND_STATUS_INTERVAL_S": "1",
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }


def start_sink(env: Mapping[str, str], log: Path, once: bool = False) -> Child:
    child = Child(f"land {env['SHAREBUS_LAND_SYSTEM']}", "sharebus_land", env, log)
    if once:
        child.command = lambda: [*Child.command(child), "--once"]  # type: ignore[method-assign]
    return child.start()


class Landed:
    """Reads the sink's database as another program would, while the sink writes."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(engine_url(url))

    def rows(self, table: str) -> list[dict[str, Any]]:
        if not sa.inspect(self.engine).has_table(table):
            return []
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(sa.text("*")).select_from(sa.table(table)))]

    def count(self, table: str) -> int:
        if not sa.inspect(self.engine).has_table(table):
            return 0
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one())

    def columns(self, table: str) -> list[str]:
        return [c["name"] for c in sa.inspect(self.engine).get_columns(table)] if self.has(table) else []

    def has(self, table: str) -> bool:
        return sa.inspect(self.engine).has_table(table)

    def dispose(self) -> None:
        self.engine.dispose()
