"""The demo workload: departments publish their classes; subscribed systems receive what they may."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from sharebus_core.catalogue import Catalogue, DataClass, ShareType
from sharebus_core.grant_log import read_grants
from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import BusSettings
from sharebus_core.signing import ControlKeys
from sharebus_core.topics import TopicNames
from sharebus_demo.fake import RecordFaker
from sharebus_demo.flaws import break_one_rule
from sharebus_grants import GrantService
from sharebus_sdk import Publisher, PublisherSettings, Subscriber, SubscriberSettings

log = logging.getLogger(__name__)
# librdkafka's own log lines (connection retries while the bus stops) go here, not to the console.
client_log = logging.getLogger("sharebus.demo.clients")
# One record in this many is garbage from "a careless department", to show the dead-letter path.
JUNK_EVERY = 250
# One record in this many of a class with quality rules breaks one of them (sharebus_demo.flaws), to
# show a rejection (dead letter "quality:<rule>") and a flag (the sharebus-quality header).
FLAW_EVERY = 25
S = TypeVar("S", bound=BusSettings)


@dataclass
class DemoCounts:
    lock: threading.Lock = field(default_factory=threading.Lock)
    published: int = 0
    refused: int = 0
    junk: int = 0
    flawed: int = 0
    received: Counter[str] = field(default_factory=Counter)

    def add_received(self, system: str) -> None:
        with self.lock:
            self.received[system] += 1


class DemoWorkload:
    def __init__(
        self,
        catalogue: Catalogue,
        publisher_settings: PublisherSettings,
        subscriber_settings: SubscriberSettings,
        rate_per_s: float,
        control: ControlKeys,
        credentials: Mapping[str, KafkaAccess] | None = None,
    ) -> None:
        """``credentials``: each system's own Kafka access (as ``make run`` issues them); without
        them every demo client uses the settings' access."""
        self.catalogue = catalogue
        self.credentials = credentials
        self.control = control
        self.publisher_settings = publisher_settings
        self.subscriber_settings = subscriber_settings
        self.rate = rate_per_s
        self.topics = TopicNames(publisher_settings.namespace)
        self.counts = DemoCounts()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        # Every subscribing system listens, also those that wait for a grant: they show denials at work.
        self.receivers = sorted({s.system for s in catalogue.subscriptions})

    def grant_conditional_shares(self) -> list[str]:
        """Each conditional class's first subscriber applies; the provider approves it, with the
        sensitive fields masked (periodic classes then reach it in their batches). Pairs that already
        hold a grant (a restarted demo) are left alone."""
        access = self.publisher_settings.kafka
        service = GrantService(self.catalogue, access, self.topics.grants, control=self.control)
        held = {(g.consumer, g.data_class) for g in read_grants(access, service.topic, self.control.verifier).values()}
        approved = []
        for code, entry in self.catalogue.data_classes.items():
            subscribers = self.catalogue.subscriptions_of(code)
            if entry.share_type is not ShareType.CONDITIONAL:
                continue
            if not subscribers or (subscribers[0].system, code) in held:
                continue
            consumer = subscribers[0].system
            grant = service.apply(
                department=self.catalogue.department_of_system[consumer],
                requester="demo officer",
                consumer=consumer,
                data_class=code,
                purpose=subscribers[0].purpose or "demo",
                scenario="sharebus demo",
                masked_fields=entry.sensitive_fields,
            )
            service.approve(
                grant.grant_id, department=entry.provider, valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
            )
            approved.append(f"{consumer} <- {code}")
        return approved

    def _as_system(self, settings: S, system: str) -> S:
        if self.credentials is None:
            return settings
        return type(settings).model_validate({**settings.model_dump(), **self.credentials[system].settings_fields()})

    def start(self) -> None:
        for system in self.receivers:
            self.threads.append(
                threading.Thread(target=self._receive, args=(system,), name=f"sub-{system}", daemon=True)
            )
        self.threads.append(threading.Thread(target=self._publish, name="publishers", daemon=True))
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def _own_classes(self) -> list[DataClass]:
        """The classes this bus's departments publish: a district's federated classes in a city
        catalogue are published on the district's bus and arrive through MirrorMaker 2."""
        return [
            c for c in self.catalogue.data_classes.values() if c.provider not in self.catalogue.district_of_department
        ]

    def _publish(self) -> None:
        faker = RecordFaker(seed=7)
        # One publisher per providing system, each with its own credential: the broker lets a system
        # write only its own classes' source topics.
        publishers = {
            system: Publisher(
                self.catalogue.department_of_system[system],
                self._as_system(self.publisher_settings, system),
                self.catalogue,
                {"logger": client_log},
            )
            for system in {c.system for c in self._own_classes()}
        }
        junk = {
            system: self._as_system(self.publisher_settings, system).kafka.producer({"logger": client_log})
            for system in publishers
        }
        classes = self._own_classes()
        # Real-time classes send often; periodic ones trickle, as their providers would between releases.
        weights = [6 if c.mode.value == "realtime" else 1 for c in classes]
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        try:
            while not self.stop.is_set():
                entry = faker.rng.choices(classes, weights)[0]
                if faker.serial % JUNK_EVERY == JUNK_EVERY - 1:
                    junk[entry.system].produce(self.topics.source(entry.code), value=b'{"not": "avro"}', key=b"junk")
                    junk[entry.system].poll(0)
                    self.counts.junk += 1
                    faker.serial += 1
                else:
                    record = faker.record(self.catalogue.schema(entry.code))
                    if entry.quality is not None and faker.rng.randrange(FLAW_EVERY) == 0:
                        break_one_rule(record, entry.quality.rules, faker.rng)
                        self.counts.flawed += 1
                    publishers[entry.system].publish(entry.code, record)
                    self.counts.published += 1
                next_at += interval
                self.stop.wait(max(0.0, next_at - time.monotonic()))
        except Exception:
            log.exception("the demo publisher stopped")
            raise
        finally:
            for publisher in publishers.values():
                publisher.flush(10)
            for producer in junk.values():
                producer.flush(10)

    def _receive(self, system: str) -> None:
        settings = self._as_system(self.subscriber_settings, system)
        with Subscriber(system, settings, {"logger": client_log}) as subscriber:
            while not self.stop.is_set():
                if subscriber.poll(0.5) is not None:
                    self.counts.add_received(system)
