"""The keys of a referenced data class, followed from its source topic: what a reference rule asks.

A reference rule (``kind: reference``) asks whether a record's field is a key of another class, for
example whether a penalty's credit code names a registered enterprise. The router keeps, per
referenced class, the set of keys its source topic holds: a ``LogFollower`` reads the topic from the
beginning in a thread, rebuilding the set from the log at every start (Kafka is the source of truth;
the set is a cache of it), then follows new records live.

Fail closed, two ways:
- until the follower has read the topic up to its end as of start-up, or while it is down or
  restarting, ``ready`` is False and every reference check fails (``sharebus_rules.quality``): a record
  is never passed as referencing a key the bus simply has not read yet. The router also waits for every
  view to catch up before it routes at all (app.py), so at start-up no record meets a cold view.
- the set is bounded (``max_keys``): a class with more keys than that cannot be checked in memory, so
  the view stops being ready (logged, and ``sharebus_follower_up`` shows 0) rather than silently
  forgetting keys and failing good records at random.

Limits (docs/quality.md): the view holds the keys the referenced topic still retains (a referenced
class should keep its records, or be compacted); keys are the source records' Kafka keys as published
(the SDK and the gateway key a record by its class's key field).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Self

from confluent_kafka import Message

from sharebus_core.catalogue import Catalogue, DataClass
from sharebus_core.catalogue.quality import OnFailure, RuleKind
from sharebus_core.compacted_log import LogFollower
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_rules.quality import compile_rule

log = logging.getLogger(__name__)
DEFAULT_MAX_KEYS = 5_000_000


class KeyFollower(LogFollower):
    """One referenced class's keys; ``ready`` and ``in`` are what a reference check asks (thread-safe
    under the GIL: the follower thread only adds to the set, the event loop only reads it)."""

    def __init__(
        self,
        access: KafkaAccess,
        topic: str,
        data_class: str,
        max_keys: int = DEFAULT_MAX_KEYS,
        admit: Callable[[str], bool] = lambda key: True,
    ) -> None:
        super().__init__(access, topic, self._on_record, name=f"keys-{data_class.replace('/', '.')}")
        self.data_class = data_class
        self.admit = admit
        self.max_keys = max_keys
        self.keys: set[str] = set()
        self.overflowed = False

    def start(self) -> Self:
        # A source topic is provisioned with the catalogue; LogFollower.start would create a missing
        # topic as a compacted control topic, which a source topic must never be.
        self._thread.start()
        return self

    @property
    def up(self) -> bool:
        return super().up and not self.overflowed

    @property
    def ready(self) -> bool:
        return self.up

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def __len__(self) -> int:
        return len(self.keys)

    def _on_record(self, msg: Message) -> None:
        raw = msg.key()
        if raw is None or msg.value() is None:
            return
        key = raw.decode("utf-8", "replace")
        if key in self.keys or not self.admit(key):
            return
        if len(self.keys) >= self.max_keys:
            if not self.overflowed:
                log.error(
                    "%s has more than %d keys; its reference checks fail closed (raise the bound)",
                    self.data_class,
                    self.max_keys,
                )
            self.overflowed = True
            return
        self.keys.add(key)


def referenced_classes(catalogue: Catalogue) -> set[str]:
    """Every class some other class's reference rule names."""
    return {
        rule.data_class
        for entry in catalogue.data_classes.values()
        if entry.quality is not None
        for rule in entry.quality.rules
        if rule.kind is RuleKind.REFERENCE and rule.data_class is not None
    }


# Rules that can be asked of a key alone (no other field, no clock, no other view).
_KEY_KINDS = frozenset({RuleKind.REQUIRED, RuleKind.USCC, RuleKind.RESIDENT_ID, RuleKind.REGEX, RuleKind.ENUM})


def key_admission(entry: DataClass) -> Callable[[str], bool]:
    """Which keys of the referenced class count: those its own rejecting rules on its key field pass.

    A record the router rejects for a bad key (a credit code with a wrong check character) stays in the
    source topic; its key must not make a reference to it pass. Rejections for other fields cannot be
    told from the key alone, and such a record's key does count (docs/quality.md).
    """
    policy = entry.quality
    if policy is None:
        return lambda key: True
    checks = [
        compile_rule(rule, OnFailure.REJECT, _no_clock, {}).check
        for rule in policy.rules
        if rule.field == entry.key_field and rule.kind in _KEY_KINDS and policy.outcome(rule) is OnFailure.REJECT
    ]
    return lambda key: all(check(key) for check in checks)


def _no_clock() -> dt.datetime:
    raise AssertionError("no key rule asks the time")


def key_views(
    catalogue: Catalogue, topics: TopicNames, access: KafkaAccess, max_keys: int = DEFAULT_MAX_KEYS
) -> Mapping[str, KeyFollower]:
    """A (not yet started) follower per referenced class."""
    return {
        code: KeyFollower(access, topics.source(code), code, max_keys, key_admission(catalogue.data_class(code)))
        for code in sorted(referenced_classes(catalogue))
    }
