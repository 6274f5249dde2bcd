"""Scrapes in shards: every series in exactly one part, a histogram's lines together, bad queries refused."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from sharebus_cli.prometheus import CONFIG, catalogue_shards, rewrite_config
from sharebus_core.exposition import BadShard, Shard, scrape, shards_for

CLASSES = [f"30100{n:04d}/000001" for n in range(300)]


class _Systems(Collector):
    """A collector of its own (as the monitor's catalogue and lag collectors are): filtered after collecting."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        systems = GaugeMetricFamily("t_system_info", "per system", labels=["consumer", "department"])
        for n in range(40):
            systems.add_metric([f"system-{n}", f"D{n % 5}"], 1)
        yield systems
        yield GaugeMetricFamily("t_nothing_yet", "a family with no samples", labels=["data_class"])


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    records = Counter("t_records", "per subscription", ["consumer", "data_class"], registry=registry)
    lag = Gauge("t_lag", "per topic", ["group", "topic"], registry=registry)
    latency = Histogram("t_latency", "per class", ["data_class"], registry=registry, buckets=(0.1, 1.0))
    Gauge("t_partitions", "process-wide", registry=registry).set(7)
    states = Gauge("t_grants", "labelled, by no shard label", ["state"], registry=registry)
    states.labels("applied").set(2)
    states.labels("revoked").set(1)
    registry.register(_Systems())
    Counter("t_unused", "labelled, no series yet", ["data_class"], registry=registry)
    for n, code in enumerate(CLASSES):
        records.labels(f"system-{n % 7}", code).inc(n)
        lag.labels("g", f"ns.src.{code}").set(n)
        latency.labels(code).observe(0.5)
    return registry


def _series(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_shards_split_the_series_without_loss_or_overlap() -> None:
    registry = _registry()
    whole = _series(scrape(registry, "").body.decode())
    parts = [_series(scrape(registry, f"shard={k}&shards=4").body.decode()) for k in range(4)]
    assert sum(len(part) for part in parts) == len(whole)
    assert set().union(*parts) == whole
    assert all(0.15 * len(whole) < len(part) < 0.35 * len(whole) for part in parts), [len(p) for p in parts]
    # Unlabelled series are in shard 0 alone; a class's histogram lines stay in one part.
    assert [("t_partitions", (), 7.0) in part for part in parts] == [True, False, False, False]
    assert [sum(name == "t_grants" for name, _, _ in part) for part in parts] == [2, 0, 0, 0]
    assert all(any(name == "t_system_info" for name, _, _ in part) for part in parts)
    for part in parts:
        classes = {dict(labels).get("data_class") for name, labels, _ in part if name.startswith("t_latency")}
        buckets = {dict(labels)["data_class"] for name, labels, _ in part if name == "t_latency_bucket"}
        assert classes - {None} == buckets


def test_a_series_keeps_its_shard_from_scrape_to_scrape() -> None:
    # CRC-32 places a class in the same part in every process and after every restart (``hash()`` would not).
    assert [k for k in range(8) if Shard(k, 8).holds({"data_class": "301000005/000001"})] == [5]
    owners = [k for k in range(8) if Shard(k, 8).holds({"topic": "ns.src.x", "consumer": "tax"})]
    assert len(owners) == 1
    assert owners == [k for k in range(8) if Shard(k, 8).holds({"topic": "ns.src.x"})]


@pytest.mark.parametrize(
    "query",
    [{"shard": "1"}, {"shards": "2"}, {"shard": "x", "shards": "2"}, {"shard": "2", "shards": "2"},
     {"shard": "-1", "shards": "2"}, {"shard": "0", "shards": "0"}, {"shard": "0", "shards": "1000"},
     {"shard": "", "shards": ""}, {"shard": "\u0663", "shards": "8"}, {"shard": " 1", "shards": "2"}],
)  # fmt: skip
def test_a_shard_that_does_not_exist_is_refused_with_the_reason(query: dict[str, str]) -> None:
    with pytest.raises(BadShard):
        Shard.from_query(query)
    answer = scrape(_registry(), urlencode(query))
    assert answer.status == 400
    assert b"shard" in answer.body


def test_gzip_only_when_the_scraper_asks() -> None:
    registry = _registry()
    plain = scrape(registry, "shard=0&shards=2")
    zipped = scrape(registry, "shard=0&shards=2", accept_encoding="gzip, deflate")
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == plain.body


def test_catalogue_sized_jobs_get_a_shard_per_few_hundred_classes() -> None:
    assert shards_for(32) == 1
    assert shards_for(400) == 1
    assert shards_for(401) == 2
    assert shards_for(3170) == 8
    assert catalogue_shards(3170) == {"sharebus-router": 8, "sharebus-monitor": 8}


def test_prometheus_scrapes_each_worker_in_every_shard() -> None:
    ports: dict[str, int | list[int]] = {
        "sharebus-router": [6066, 6071],
        "sharebus-auditor": 6067,
        "sharebus-monitor": 6068,
    }
    text = rewrite_config(CONFIG.read_text(), ports, shards={"sharebus-router": 3})
    jobs = {job["job_name"]: job for job in yaml.safe_load(text)["scrape_configs"]}
    router = jobs["sharebus-router"]
    assert router["params"] == {"shards": ["3"]}
    assert [(static["targets"], static["labels"]) for static in router["static_configs"]] == [
        (["127.0.0.1:6066", "127.0.0.1:6071"], {"__param_shard": str(k), "shard": str(k)}) for k in range(3)
    ]
    assert "params" not in jobs["sharebus-auditor"]
    assert len(jobs["sharebus-monitor"]["static_configs"]) == 1
    with pytest.raises(ValueError, match="no such scrape job"):
        rewrite_config(CONFIG.read_text(), {}, shards={"sharebus-nothing": 2})


def test_a_family_without_series_keeps_its_metadata_in_part_zero_only() -> None:
    registry = _registry()
    whole = scrape(registry, "").body.decode()
    parts = [scrape(registry, f"shard={k}&shards=4").body.decode() for k in range(4)]
    for line in ("# TYPE t_unused_total counter", "# TYPE t_nothing_yet gauge"):
        assert line in whole
        assert [line in part for part in parts] == [True, False, False, False], line


def test_a_shard_given_twice_is_refused() -> None:
    answer = scrape(_registry(), "shard=0&shard=1&shards=2")
    assert (answer.status, answer.body) == (400, b"shard given 2 times\n")


def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    registry = _registry()
    answer = scrape(registry, "shard=1&shards=4", accept="application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert answer.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = answer.body.decode()
    assert text.endswith("# EOF\n")
    ours = {
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in openmetrics_families(text)  # type: ignore[no-untyped-call]  # the parser has no annotations
        for sample in family.samples
    }
    # The same part as in the text format (OpenMetrics names a counter's family without ``_total``).
    assert ours == _series(scrape(registry, "shard=1&shards=4").body.decode())
    assert scrape(registry, "", accept="text/html").headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_name_parameters_keep_only_the_named_samples_of_the_shard() -> None:
    registry = _registry()
    named = "name[]=t_partitions&name[]=t_records_total&name[]=t_latency_count"
    whole = _series(scrape(registry, named).body.decode())
    assert {name for name, _, _ in whole} == {"t_partitions", "t_records_total", "t_latency_count"}
    assert len(whole) == 1 + 2 * len(CLASSES)
    parts = [_series(scrape(registry, f"{named}&shard={k}&shards=3").body.decode()) for k in range(3)]
    assert set().union(*parts) == whole
    assert sum(map(len, parts)) == len(whole)
    assert scrape(registry, "name[]=t_no_such_family").body == b""
    # A blank name filters nothing, as prometheus-client's own server does.
    assert scrape(registry, "name[]=").body == scrape(registry, "").body
