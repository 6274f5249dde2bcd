"""SCRAM users made for one test, with the admin access, through the same code as ``sharebus credentials``."""

from __future__ import annotations

from sharebus_access.credentials import ScramUsers, new_password, wait_usable
from sharebus_core.kafka import KafkaAccess


def scram_user(admin: KafkaAccess, username: str) -> KafkaAccess:
    """Creates (or re-passwords) ``username`` and returns its access once the broker takes it."""
    password = new_password()
    ScramUsers(admin).upsert({username: password})
    access = admin.as_user(username, password)
    wait_usable(access)
    return access


def delete_scram_user(admin: KafkaAccess, username: str) -> None:
    ScramUsers(admin).delete(username)
