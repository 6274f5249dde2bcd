"""Officials' accounts: one department, one or more roles, and an argon2 hash of the password.

The accounts live in one JSON file that the operator manages (``sharebus portal account add``), written
0600 and replaced atomically. It holds argon2id hashes only; a password is never stored or logged.
The portal re-reads the file when it changes, so an account added or removed takes effect at once.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import threading
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sharebus_core.catalogue import Catalogue
from sharebus_core.errors import SharebusError

_HASHER = PasswordHasher()
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12


class AccountError(SharebusError, ValueError):
    """An account cannot be added or read; the message says why."""


class Role(StrEnum):
    REQUESTER = "requester"
    APPROVER = "approver"
    OPERATOR = "operator"  # the bureau: sees every department


class Account(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(pattern=USERNAME.pattern)
    department: str
    roles: tuple[Role, ...] = Field(min_length=1)
    password_hash: str = Field(repr=False)
    display_name: str | None = None

    def has(self, role: Role) -> bool:
        return role in self.roles


class AccountFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[Account] = Field(default_factory=list)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so a wrong name costs as long as a wrong password.

    Made on first need, not at import: an argon2 hash costs about a second here, and every ``sharebus
    portal ...`` command and the portal's start imported this module."""
    return _HASHER.hash("no such account")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def check_account(catalogue: Catalogue, account: Account) -> None:
    if account.department not in catalogue.departments:
        raise AccountError(f"unknown department {account.department!r}")


class AccountStore:
    """The accounts file, re-read when its modification time changes. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._accounts: dict[str, Account] = {}

    def _load(self) -> dict[str, Account]:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._accounts = None, {}
                return self._accounts
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                try:
                    parsed = AccountFile.model_validate_json(self.path.read_bytes())
                except ValidationError as exc:
                    raise AccountError(f"{self.path}: not an accounts file: {exc}") from exc
                self._accounts = {a.username: a for a in parsed.accounts}
                self._stamp = stamp
            return self._accounts

    def get(self, username: str) -> Account | None:
        return self._load().get(username)

    def all(self) -> list[Account]:
        return sorted(self._load().values(), key=lambda a: a.username)

    def verify(self, username: str, password: str) -> Account | None:
        """The account when the password is right; None otherwise, in about the same time either way."""
        # Made before the account is looked up, whoever signs in: the first sign-in of a process pays for
        # it with a known name as with an unknown one, so even that one does not tell them apart.
        dummy = _dummy_hash()
        account = self.get(username)
        try:
            _HASHER.verify(account.password_hash if account else dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        return account

    def put(self, account: Account) -> None:
        """Adds or replaces an account, atomically, in a 0600 file."""
        accounts = {a.username: a for a in self.all()}
        accounts[account.username] = account
        self._write(list(accounts.values()))

    def remove(self, username: str) -> bool:
        accounts = {a.username: a for a in self.all()}
        if accounts.pop(username, None) is None:
            return False
        self._write(list(accounts.values()))
        return True

    def _write(self, accounts: list[Account]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = AccountFile(accounts=sorted(accounts, key=lambda a: a.username)).model_dump(mode="json")
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".accounts-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(body, out, ensure_ascii=False, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def new_account(
    catalogue: Catalogue, username: str, department: str, roles: list[Role], password: str, name: str | None = None
) -> Account:
    if not USERNAME.match(username):
        raise AccountError(
            "a user name is 2-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        )
    account = Account(
        username=username,
        department=department,
        roles=tuple(dict.fromkeys(roles)),
        password_hash=hash_password(password),
        display_name=name,
    )
    check_account(catalogue, account)
    return account
