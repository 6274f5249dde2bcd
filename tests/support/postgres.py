"""A real PostgreSQL server for the test session (Debian's ``postgresql`` package), started by the tests.

PostgreSQL refuses to run as root, and CI runs as root: the cluster is made and run by the
``postgres`` user (``runuser``) in a temporary directory that user owns, on a free port, with trust
authentication on 127.0.0.1 only. It never skips: a missing server is a failure with the reason.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from sharebus_land.store import engine_url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    return args if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *args]


@dataclass(frozen=True)
class Postgres:
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh database for one test; its URL as a user would pass it (``postgresql://``)."""
        name = f"land_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(engine_url(self.admin_url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


class PostgresUnavailable(RuntimeError):
    """The server's programs are missing or it did not start; the message has its log's tail."""


def _bin(name: str) -> str:
    """Debian keeps the server's programs out of PATH, under /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [p for p in [shutil.which(name)] if p]
    if not found:
        raise PostgresUnavailable(f"PostgreSQL's {name} is missing: run scripts/ensure-postgresql.sh (make setup does)")
    return found[-1]


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A throw-away cluster (tests and ``bench/land.py``), stopped and deleted on exit."""
    base = Path(tempfile.mkdtemp(prefix="sharebus-pg-"))
    data, sockets, log = base / "data", base / "sock", base / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (base, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = _free_port()
    try:
        initdb = _as_postgres([_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"])
        subprocess.run(initdb, check=True, capture_output=True)
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
        start = [_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"]
        done = subprocess.run(_as_postgres(start), capture_output=True, text=True)
        if done.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"PostgreSQL did not start: {done.stderr}\n{tail}")
        yield Postgres(port)
    finally:
        if data.exists():
            stop = [_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
            subprocess.run(_as_postgres(stop), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The session's server. It never skips: a server that cannot start fails the tests that need it."""
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))
