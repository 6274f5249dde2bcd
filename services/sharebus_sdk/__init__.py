"""The Python SDK: departments publish with ``Publisher``; systems receive with ``Subscriber``."""

from sharebus_sdk.batches import Batch, BatchInfo
from sharebus_sdk.delivery import Delivery
from sharebus_sdk.disputes import DisputeError, Disputes
from sharebus_sdk.errors import (
    CredentialError,
    DeliveryDecodeError,
    NotAuthorised,
    NotProvider,
    PublishFailed,
    SharebusError,
    SubscriberFailed,
)
from sharebus_sdk.publisher import Publisher, PublisherSettings
from sharebus_sdk.subscriber import Subscriber, SubscriberSettings

__all__ = [
    "Batch",
    "BatchInfo",
    "CredentialError",
    "Delivery",
    "DeliveryDecodeError",
    "DisputeError",
    "Disputes",
    "NotAuthorised",
    "NotProvider",
    "PublishFailed",
    "Publisher",
    "PublisherSettings",
    "SharebusError",
    "Subscriber",
    "SubscriberFailed",
    "SubscriberSettings",
]
