"""What every request handler needs: settings, catalogue, key and grant views, producers, metrics."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

from fastapi import Request
from starlette.requests import HTTPConnection

from sharebus_core.catalogue import Catalogue
from sharebus_core.compacted_log import LogFollower
from sharebus_core.topics import TopicNames
from sharebus_disputes import DisputeService
from sharebus_gateway.audit import AuditWriter
from sharebus_gateway.backfills_view import BackfillView
from sharebus_gateway.broker_probe import BrokerProbe
from sharebus_gateway.idempotency import AnsweredKeys
from sharebus_gateway.keys import KeyView
from sharebus_gateway.limits import OpenFeeds, TokenBuckets
from sharebus_gateway.metrics import GatewayMetrics
from sharebus_gateway.open_view import OpenData
from sharebus_gateway.settings import GatewaySettings
from sharebus_grants import GrantService
from sharebus_sdk import Publisher, PublisherSettings


@dataclass
class PublisherPool:
    """One SDK Publisher per department, created on first use; a lock per department serialises
    requests, so one request's transaction holds only its own records.

    Each Publisher is transactional (a request's records land all or nothing), with an id under the
    gateway's principal that is unique to this process: two gateways never fence each other."""

    settings: GatewaySettings
    catalogue: Catalogue
    _publishers: dict[str, tuple[Publisher, threading.Lock]] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def get(self, department: str) -> tuple[Publisher, threading.Lock]:
        with self._guard:
            entry = self._publishers.get(department)
            if entry is None:
                publisher_settings = PublisherSettings.model_validate(self.settings.model_dump())
                transactional_id = f"{self.settings.kafka.username}.{department}-{uuid.uuid4().hex[:8]}"
                publisher = Publisher(department, publisher_settings, self.catalogue, transactional_id=transactional_id)
                entry = (publisher, threading.Lock())
                self._publishers[department] = entry
            return entry

    def close(self) -> None:
        with self._guard:
            for publisher, _lock in self._publishers.values():
                publisher._producer.flush(10)
            self._publishers.clear()


@dataclass
class Gateway:
    settings: GatewaySettings
    catalogue: Catalogue
    topics: TopicNames
    keys: KeyView
    grant_follower: LogFollower
    grants: GrantService
    audit: AuditWriter
    metrics: GatewayMetrics
    publishers: PublisherPool
    rate_limits: TokenBuckets
    feeds: OpenFeeds
    answered: AnsweredKeys
    disputes: DisputeService
    open_data: OpenData
    broker: BrokerProbe
    backfills: BackfillView
    # Batch pages being read now (batches_api): a bound on the memory and threads they take.
    batch_pages: threading.BoundedSemaphore


def gateway(connection: HTTPConnection) -> Gateway:
    state: Gateway = connection.app.state.gateway
    return state


def gateway_of(request: Request) -> Gateway:
    return gateway(request)
