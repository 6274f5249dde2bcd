"""The accounts module hashes nothing at import (every ``sharebus portal ...`` command imports it), yet a
sign-in with an unknown name still verifies against an argon2 hash, as long as a wrong password takes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from sharebus_portal import accounts
from sharebus_portal.accounts import Account, AccountStore, Role, hash_password

PASSWORD = "correct horse battery"


def test_importing_the_accounts_module_computes_no_hash() -> None:
    # A fresh interpreter: this one imported the module long ago. Any argon2 hash at import fails it.
    probe = textwrap.dedent(
        """
        import argon2

        def refuse(self, *args, **kwargs):
            raise SystemExit("hashed at import")

        argon2.PasswordHasher.hash = refuse
        import sharebus_portal.accounts
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


class Spy:
    """Records what argon2 is asked to hash and to verify against, and does it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hashed: list[str] = []
        self.verified: list[str] = []
        real_hash, real_verify = PasswordHasher.hash, PasswordHasher.verify

        def spy_hash(hasher: PasswordHasher, password: str | bytes, **kwargs: object) -> str:
            self.hashed.append(str(password))
            return real_hash(hasher, password)

        def spy_verify(hasher: PasswordHasher, hash_: str | bytes, password: str | bytes) -> bool:
            self.verified.append(str(hash_))
            return real_verify(hasher, hash_, password)

        monkeypatch.setattr(PasswordHasher, "hash", spy_hash)
        monkeypatch.setattr(PasswordHasher, "verify", spy_verify)


def test_an_unknown_name_is_verified_against_a_hash_made_on_first_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AccountStore(tmp_path / "accounts.json")
    known = Account(username="li.wei", department="TAX", roles=(Role.REQUESTER,), password_hash=hash_password(PASSWORD))
    store.put(known)
    accounts._dummy_hash.cache_clear()
    spy = Spy(monkeypatch)
    assert store.verify("nobody", PASSWORD) is None
    assert spy.hashed == ["no such account"]
    assert len(spy.verified) == 1
    assert spy.verified[0].startswith("$argon2id$")
    assert spy.verified[0] != known.password_hash
    # Made once per process: the next unknown name reuses it, and a known name is verified against its own.
    assert store.verify("nobody.else", PASSWORD) is None
    assert store.verify("li.wei", PASSWORD) == known
    assert spy.hashed == ["no such account"]
    assert spy.verified[1:] == [spy.verified[0], known.password_hash]


def test_the_first_sign_in_makes_the_hash_whatever_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """So the first sign-in of a process costs the same with a known name as with an unknown one."""
    store = AccountStore(tmp_path / "accounts.json")
    store.put(
        Account(username="li.wei", department="TAX", roles=(Role.REQUESTER,), password_hash=hash_password(PASSWORD))
    )
    accounts._dummy_hash.cache_clear()
    spy = Spy(monkeypatch)
    assert store.verify("li.wei", "a wrong password") is None
    assert spy.hashed == ["no such account"]
