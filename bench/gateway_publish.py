"""Benchmark: the cost of publishing over the HTTP gateway against the SDK Publisher directly.

``python -m bench.gateway_publish --records 20000``. One broker, one registry, one gateway; the same
faked records are published (1) with the SDK ``Publisher`` and a final flush, (2) over HTTP one record
per request, and (3) over HTTP in batches. Each rate counts until Kafka has acknowledged every record
(the gateway answers only after its flush). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench.rig import scrape_env
from sharebus_broker import BrokerSettings, KafkaBroker
from sharebus_broker.launcher import free_port
from sharebus_cli.children import start_child
from sharebus_core.catalogue import load_catalogue
from sharebus_core.key_files import bus_keys
from sharebus_core.registry_client import auth_of
from sharebus_core.settings import REPO_ROOT
from sharebus_core.topics import TopicNames
from sharebus_demo.fake import RecordFaker
from sharebus_gateway.json_avro import to_json
from sharebus_gateway.keys import KeyStore
from sharebus_provision import TopicSpec, ensure_topics, register_catalogue_schemas
from sharebus_sdk import Publisher, PublisherSettings

BENCH_DIR = Path(__file__).resolve().parent
CLASS = "301001001/000001"


def sdk_rate(settings: PublisherSettings, records: list[dict[str, Any]]) -> float:
    catalogue = load_catalogue(settings.catalogue_dir)
    with Publisher("AMR", settings, catalogue) as publisher:
        publisher.publish(CLASS, records[0])  # the schema lookup, outside the timing
        publisher.flush()
        started = time.perf_counter()
        for record in records:
            publisher.publish(CLASS, record)
        publisher.flush()
        return len(records) / (time.perf_counter() - started)


def http_rate(url: str, token: str, records: list[dict[str, Any]], batch: int) -> float:
    bodies = [to_json(r) for r in records]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        client.post(f"/v1/classes/{CLASS}/records", json=bodies[0]).raise_for_status()  # warm-up
        started = time.perf_counter()
        for start in range(0, len(bodies), batch):
            chunk = bodies[start : start + batch]
            client.post(f"/v1/classes/{CLASS}/records", json=chunk if batch > 1 else chunk[0]).raise_for_status()
        return len(bodies) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_publish")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--single-records", type=int, default=2_000, help="records sent one per request")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sharebus-bench-gw-"))
    ns = f"bench-{uuid.uuid4().hex[:8]}"
    topics = TopicNames(ns)
    catalogue_dir = BENCH_DIR / "catalogue"
    catalogue = load_catalogue(catalogue_dir)
    faker = RecordFaker(seed=7)
    records = [faker.record(catalogue.schema(CLASS)) for _ in range(args.records)]
    with ExitStack() as stack:
        broker = KafkaBroker(BrokerSettings(port=0, controller_port=0, data_dir=work / "kafka")).start()
        stack.callback(broker.stop)
        registry_port, gateway_port = free_port(), free_port()
        registry_url, gateway_url = f"http://127.0.0.1:{registry_port}", f"http://127.0.0.1:{gateway_port}"
        keys = bus_keys(work / "keys")
        env = {
            **broker.admin_access.env(),
            "SHAREBUS_NAMESPACE": ns,
            "SHAREBUS_REGISTRY_URL": registry_url,
            "SHAREBUS_REGISTRY_PORT": str(registry_port),
            "SHAREBUS_CATALOGUE_DIR": str(catalogue_dir),
            "SHAREBUS_GATEWAY_PORT": str(gateway_port),
            "SHAREBUS_GATEWAY_LOG_LEVEL": "warning",
            **keys.everyone,
            **keys.control_writer,
            **scrape_env(work),
            # The benchmark measures throughput, not the per-key rate limit.
            "SHAREBUS_GATEWAY_RATE_PER_S": "1000000",
            "SHAREBUS_GATEWAY_RATE_BURST": "1000000",
        }
        registry = start_child("registry", "sharebus_registry", env, work / "registry.log", f"{registry_url}/", 60)
        stack.callback(registry.stop)
        ensure_topics(broker.admin_access, [TopicSpec(topics.source(CLASS), 3)])
        register_catalogue_schemas(catalogue, topics, registry_url, auth_of(broker.admin_access))
        gateway = start_child("gateway", "sharebus_gateway", env, work / "gateway.log", f"{gateway_url}/readyz", 60)
        stack.callback(gateway.stop)
        token = (
            KeyStore(catalogue, broker.admin_access, topics.api_keys, control=keys.control_keys(300.0))
            .issue("amr-reg")
            .token.get_secret_value()
        )
        time.sleep(2)  # the gateway's key follower picks the key up
        settings = PublisherSettings(
            **broker.admin_access.settings_fields(),
            namespace=ns,
            registry_url=registry_url,
            catalogue_dir=catalogue_dir,
        )
        results = {
            "sdk": sdk_rate(settings, records),
            f"http_batch_{args.batch}": http_rate(gateway_url, token, records, args.batch),
            "http_single": http_rate(gateway_url, token, records[: args.single_records], 1),
        }
    for name, rate in results.items():
        print(f"{name:<16} {rate:>10,.0f} records/s   ({rate / results['sdk']:.3f} of the SDK)")
    out = REPO_ROOT / "bench" / "results" / f"gateway-publish-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"records": args.records, "batch": args.batch, "records_per_s": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
