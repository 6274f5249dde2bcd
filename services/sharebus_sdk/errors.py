from __future__ import annotations

from sharebus_core.errors import SharebusError

__all__ = [
    "CredentialError",
    "DeliveryDecodeError",
    "NotAuthorised",
    "NotProvider",
    "PublishFailed",
    "SharebusError",
    "SubscriberFailed",
]


class NotProvider(SharebusError):
    """A department tried to publish a class it does not provide."""


class PublishFailed(SharebusError):
    """The broker did not acknowledge one or more records; they must be published again."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__(f"{len(failures)} record(s) were not acknowledged by Kafka: {failures[:3]}")


class DeliveryDecodeError(SharebusError):
    """A record on a delivery topic could not be decoded; its position is in the message."""


class CredentialError(SharebusError):
    """The system's Kafka credential is missing, or the broker refused it (wrong, revoked or expired)."""


class NotAuthorised(SharebusError):
    """The broker refused an operation the system's ACLs do not allow (a topic or group not its own)."""


class SubscriberFailed(SharebusError):
    """Kafka failed the Subscriber (a fatal consumer error, a failed commit): the SDK's wrapper of
    ``KafkaException``, which never leaves the Subscriber itself."""
