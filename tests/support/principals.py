"""SCRAM users made for one test, with the admin access (a stand-in until ``sharebus credentials`` lands)."""

from __future__ import annotations

import secrets

from confluent_kafka import KafkaException
from confluent_kafka.admin._scram import (
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from sharebus_core.kafka import KafkaAccess
from tests.support.kafka import eventually


def _usable(access: KafkaAccess) -> bool:
    try:
        access.admin({"log_level": 0}).list_topics(timeout=2)
    except KafkaException:
        return False
    return True


def scram_user(admin: KafkaAccess, username: str) -> KafkaAccess:
    """Creates (or re-passwords) ``username`` and returns its access once the broker takes it."""
    password = secrets.token_urlsafe(24)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    client = admin.admin()  # kept referenced until the futures resolve: a collected client cancels them
    futures = client.alter_user_scram_credentials([UserScramCredentialUpsertion(username, info, password.encode())])
    for future in futures.values():
        future.result(timeout=30)
    access = admin.as_user(username, password)
    assert eventually(lambda: _usable(access), bool, timeout_s=20), f"{username} never became usable"
    return access


def delete_scram_user(admin: KafkaAccess, username: str) -> None:
    client = admin.admin()
    futures = client.alter_user_scram_credentials([UserScramCredentialDeletion(username, ScramMechanism.SCRAM_SHA_512)])
    for future in futures.values():
        future.result(timeout=30)
