"""How every sharebus process exposes its Prometheus metrics: lean, gzipped when asked, and in shards.

A city catalogue gives the router tens of thousands of per-class and per-subscription series (about
5 MB of text). Served whole, one scrape is large for Prometheus and long for the router, whose event
loop renders it between two batches. So ``/metrics?shard=K&shards=N`` serves one of ``N`` disjoint
parts: a series belongs to the shard its data class (else its topic, else its consumer) hashes to,
and series with none of these labels to shard 0. Prometheus scrapes each part as a target of its
own (docs/metrics.md); ``/metrics`` alone is every series, as before.
"""

from __future__ import annotations

import copy
import gzip
import math
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qs

import prometheus_client
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from sharebus_core.errors import SharebusError

# The labels that spread a family over shards, the first one a series carries deciding.
SHARD_LABELS = ("data_class", "topic", "consumer")
# A city class costs the router about 16 series, 1.7 KB of text; 400 classes keep a shard near 0.7 MB.
CLASSES_PER_SHARD = 400
MAX_SHARDS = 256


class BadShard(SharebusError, ValueError):
    """A scrape asked for a shard that does not exist."""


def lean_exposition() -> None:
    """Leaves prometheus-client's ``*_created`` companion series out of this process's ``/metrics``.

    Nothing reads them (the project's Prometheus dropped them at scrape time), and they are one
    series per counter and histogram child: at city scale, tens of thousands of lines per scrape.
    """
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


def shards_for(classes: int) -> int:
    """How many shards a scrape job should use for a catalogue of ``classes`` data classes."""
    return max(1, math.ceil(classes / CLASSES_PER_SHARD))


@dataclass(frozen=True, slots=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Shard:
        """The shard a scrape's query asks for (``shard`` and ``shards``); none given: everything."""
        raw_index, raw_count = query.get("shard"), query.get("shards")
        if raw_index is None and raw_count is None:
            return cls()
        if not all(raw is not None and raw.isascii() and raw.isdigit() for raw in (raw_index, raw_count)):
            raise BadShard(f"shard and shards must both be whole numbers, not {raw_index!r} and {raw_count!r}")
        index, count = int(raw_index or ""), int(raw_count or "")
        if not 1 <= count <= MAX_SHARDS or not 0 <= index < count:
            raise BadShard(f"shard {index} of {count}: want 0 <= shard < shards <= {MAX_SHARDS}")
        return cls(index, count)

    def holds(self, labels: Mapping[str, str]) -> bool:
        for name in SHARD_LABELS:
            value = labels.get(name)
            if value is not None:
                return self.holds_value(value)
        return self.index == 0

    def holds_value(self, value: str) -> bool:
        """Whether a series whose first shard label has ``value`` is in this shard."""
        return self.count == 1 or zlib.crc32(value.encode()) % self.count == self.index


# Every series: what ``/metrics`` without a shard serves.
WHOLE = Shard()


@runtime_checkable
class ShardedCollector(Protocol):
    """A collector that can build one shard's samples alone (the router's per-class collectors): the
    others are collected whole for every part and filtered."""

    def collect_shard(self, shard: Shard) -> Iterable[Metric]: ...


class _ShardView(Collector):
    """The registry's families, each with only the shard's samples; families left empty are left out.

    A labelled prometheus-client metric renders only the children in the shard: building every
    child's samples to drop most of them made eight parts cost four whole scrapes (docs/benchmarks.md).
    That reads the library's private state, as its own ``RestrictedRegistry`` does; the version is
    pinned, and ``tests/unit/test_exposition.py`` proves the parts equal to the whole. A
    ``ShardedCollector`` builds the shard's samples itself; any other collector is collected whole.
    Either way only the shard's samples are kept.
    """

    def __init__(self, registry: CollectorRegistry, shard: Shard) -> None:
        self.registry = registry
        self.shard = shard

    def collect(self) -> Iterator[Metric]:
        with self.registry._lock:
            collectors = list(self.registry._collector_to_names)
        # A family with no series yet keeps its HELP and TYPE lines, in part 0, as in a whole scrape.
        first = self.shard.index == 0
        for collector in collectors:
            if isinstance(collector, MetricWrapperBase) and collector._labelnames:
                part = self._children(collector)
                if part.samples or (first and not collector._metrics):
                    yield part
                continue
            families = (
                collector.collect_shard(self.shard) if isinstance(collector, ShardedCollector) else collector.collect()
            )
            for family in families:
                kept = [sample for sample in family.samples if self.shard.holds(sample.labels)]
                if kept or (first and not family.samples):
                    part = copy.copy(family)
                    part.samples = kept
                    yield part

    def _children(self, metric: MetricWrapperBase) -> Metric:
        """What ``metric.collect()`` gives, for the children in the shard only."""
        names: tuple[str, ...] = tuple(metric._labelnames)
        family = Metric(metric._name, metric._documentation, metric._type or "unknown", metric._unit)
        position = next((names.index(label) for label in SHARD_LABELS if label in names), None)
        if position is None and self.shard.index != 0:
            return family
        with metric._lock:
            children = dict(metric._metrics)
        for values, child in children.items():
            if position is not None and not self.shard.holds_value(values[position]):
                continue
            series = list(zip(names, values, strict=True))
            for suffix, labels, value, timestamp, exemplar, native in child._samples():
                family.add_sample(
                    metric._name + suffix, dict(series + list(labels.items())), value, timestamp, exemplar, native
                )
        return family


class _Named(Collector):
    """The samples named in a scrape's ``name[]`` parameters, as prometheus-client's own server serves them."""

    def __init__(self, source: Collector, names: frozenset[str]) -> None:
        self.source = source
        self.names = names

    def collect(self) -> Iterator[Metric]:
        for family in self.source.collect():
            kept = [sample for sample in family.samples if sample.name in self.names]
            if kept:
                part = copy.copy(family)
                part.samples = kept
                yield part


@dataclass(frozen=True, slots=True)
class Scrape:
    status: int
    body: bytes
    headers: dict[str, str]


def scrape(registry: CollectorRegistry, query: str, accept: str = "", accept_encoding: str = "") -> Scrape:
    """The answer to ``GET /metrics?<query>`` with these ``Accept`` and ``Accept-Encoding`` headers.

    As prometheus-client's own server: the text format, or OpenMetrics when the scraper asks for it;
    only the samples named by ``name[]`` when given; gzipped when accepted. And the asked shard.
    """
    params = parse_qs(query, keep_blank_values=True)
    try:
        shard = Shard.from_query({name: _single(params, name) for name in ("shard", "shards") if name in params})
    except BadShard as exc:
        return Scrape(400, f"{exc}\n".encode(), {"Content-Type": "text/plain; charset=utf-8"})
    source: Collector = registry if shard.count == 1 else _ShardView(registry, shard)
    # Blank names are ignored, as prometheus-client's server does: ``name[]=`` alone serves everything.
    names = frozenset(name for name in params.get("name[]", ()) if name)
    if names:
        source = _Named(source, names)
    encoder, content_type = choose_encoder(accept)
    body = encoder(source)
    headers = {"Content-Type": content_type}
    if "gzip" in accept_encoding:
        # Prometheus asks for gzip; a city catalogue's per-class series compress about tenfold.
        # Level 1, as prometheus-client's own server: the process's CPU is for its work.
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return Scrape(200, body, headers)


def _single(params: Mapping[str, list[str]], name: str) -> str:
    values = params[name]
    if len(values) != 1:
        raise BadShard(f"{name} given {len(values)} times")
    return values[0]
