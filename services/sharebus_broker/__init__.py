"""Starts a real Apache Kafka broker (KRaft, combined broker+controller) from Maven Central jars."""

from sharebus_broker.launcher import BrokerStartError, KafkaBroker
from sharebus_broker.settings import BrokerSettings

__all__ = ["BrokerSettings", "BrokerStartError", "KafkaBroker"]
