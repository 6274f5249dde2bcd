"""Open data on the real broker: the router delivers open classes to the public topic, the gateway serves
them on /open/v1 without a key (or with an open-data key for conditionally open classes), never with a
sensitive field; a class that is not open is 404; the limits hold (429, 413). Also the DCAT-AP and ODRL
exports, served by the same gateway.

The catalogue is the fixture one with three changes, written to the test's own directory: the
enterprise class (open) gets a sensitive field, and the penalty class (conditional, with a sensitive
field) becomes conditionally open.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rdflib import RDF, Graph, Namespace, URIRef

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import PUBLIC_CONSUMER, TopicNames
from sharebus_gateway.keys import KeyStore
from tests.integration.conftest import FIXTURE_CATALOGUE
from tests.support.gateway import GatewayProcess, SSEEvent, issue_key, read_sse, start_gateway
from tests.support.identities import provision_bus
from tests.support.kafka import eventually, metric
from tests.support.keys import control_keys
from tests.support.names import unique
from tests.support.records import ENTERPRISE, PENALTY, enterprise, penalty
from tests.support.registry import RegistryProcess
from tests.support.router import RouterProcess, start_router

pytestmark = [pytest.mark.broker, pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated")]

DCAT = Namespace("http://www.w3.org/ns/dcat#")
ODRL = Namespace("http://www.w3.org/ns/odrl/2/")
INSPECTION = "301001003/000001"  # not shared, not open
SENSITIVE = "legal_rep_name"
RATE_PER_S, BURST, PAGE_MAX = 1, 8, 20
KEY_ISSUE_BURST = 2


def open_catalogue(work: Path) -> Path:
    target = work / "catalogue"
    shutil.copytree(FIXTURE_CATALOGUE, target)
    document = yaml.safe_load((target / "catalogue.yaml").read_text(encoding="utf-8"))
    for entry in document["data_classes"]:
        if entry["code"] == ENTERPRISE:
            entry["sensitive_fields"] = [SENSITIVE]
        if entry["code"] == PENALTY:
            entry["open_type"] = "conditional_open"
    (target / "catalogue.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return target


@dataclass
class OpenBus:
    access: KafkaAccess
    topics: TopicNames
    catalogue: Catalogue
    router: RouterProcess
    gateway: GatewayProcess
    amr_token: str

    def publish(self, code: str, records: list[dict[str, Any]]) -> None:
        # JSON has no dates: the gateway takes them as ISO strings.
        body = json.loads(json.dumps(records, default=lambda value: value.isoformat()))
        with self.gateway.client(self.amr_token) as amr:
            response = amr.post(f"/v1/classes/{code}/records", json=body)
        assert response.status_code == 200, response.text

    def records(self, client: httpx.Client, code: str, expected: int) -> list[dict[str, Any]]:
        """The newest records of the class once ``expected`` of them are in the open view."""

        def page() -> list[dict[str, Any]]:
            response = client.get(f"/open/v1/classes/{code}/records", params={"limit": PAGE_MAX})
            return list(response.json()["records"]) if response.status_code == 200 else []

        found = eventually(page, lambda rows: len(rows) >= expected, 60)
        assert len(found) >= expected, found
        return found


@pytest.fixture(scope="module")
def open_bus(
    kafka_admin: KafkaAccess, shared_registry: RegistryProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenBus]:
    work = tmp_path_factory.mktemp("open")
    catalogue_dir = open_catalogue(work)
    catalogue = load_catalogue(catalogue_dir)
    namespace = unique("t")  # "t-*-router" may register schemas with the shared registry
    services = provision_bus(kafka_admin, catalogue, namespace, shared_registry.namespace)
    router = start_router(
        services["router"],
        namespace,
        shared_registry.url,
        catalogue_dir,
        work,
        extra_env={"SHAREBUS_ROUTER_PUBLIC_DELIVERY": "true"},
    )
    env = {
        "SHAREBUS_GATEWAY_OPEN_RATE_PER_S": str(RATE_PER_S),
        "SHAREBUS_GATEWAY_OPEN_RATE_BURST": str(BURST),
        "SHAREBUS_GATEWAY_OPEN_KEY_RATE_PER_S": "50",
        "SHAREBUS_GATEWAY_OPEN_KEY_RATE_BURST": "100",
        "SHAREBUS_GATEWAY_OPEN_PAGE_MAX": str(PAGE_MAX),
        "SHAREBUS_GATEWAY_FEED_KEEPALIVE_S": "1",
        "SHAREBUS_GATEWAY_PUBLIC_URL": "https://data.example.gov.cn",
        "SHAREBUS_GATEWAY_OPEN_KEY_ISSUE_BURST": str(KEY_ISSUE_BURST),
    }
    try:
        gateway = start_gateway(services["gateway"], namespace, shared_registry.url, catalogue_dir, work, env)
    except BaseException:
        router.stop()
        raise
    try:
        topics = TopicNames(namespace)
        token = issue_key(catalogue, kafka_admin, topics.api_keys, "amr-reg")
        with gateway.client(token) as amr:
            assert eventually(lambda: amr.get("/v1/whoami").status_code, lambda code: code == 200, 20) == 200
        yield OpenBus(kafka_admin, topics, catalogue, router, gateway, token)
    finally:
        gateway.stop()
        router.stop()


def anonymous(bus: OpenBus, address: str) -> httpx.Client:
    """A client of its own address (127.0.0.x), so each test's anonymous rate limit is its own."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=bus.gateway.base_url, transport=transport, timeout=30)


def test_an_open_class_is_served_without_a_key_and_never_with_a_sensitive_field(open_bus: OpenBus) -> None:
    open_bus.publish(ENTERPRISE, [enterprise(seq) for seq in range(1, 6)])
    with anonymous(open_bus, "127.0.0.2") as public:
        # Before polling for the records: polling spends this address's request budget.
        listed = {c["code"]: c for c in public.get("/open/v1/classes").json()}
        schema = public.get(f"/open/v1/classes/{ENTERPRISE}/schema").json()
        one = public.get(f"/open/v1/classes/{ENTERPRISE}").json()
        rows = open_bus.records(public, ENTERPRISE, 5)
    assert set(listed) == {ENTERPRISE, PENALTY, "301001004/000001"}
    assert SENSITIVE not in listed[ENTERPRISE]["fields"]
    assert SENSITIVE not in [f["name"] for f in schema["fields"]]
    assert one["needs_key"] is False
    assert sorted(r["value"]["seq"] for r in rows) == [1, 2, 3, 4, 5]
    for row in rows:
        assert SENSITIVE not in row["value"]
        assert set(row["value"]) == set(listed[ENTERPRISE]["fields"])
    # Newest first, and paged: `before` the last seq of a page gives the older ones.
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs, reverse=True)
    with anonymous(open_bus, "127.0.0.8") as public:
        older = public.get(f"/open/v1/classes/{ENTERPRISE}/records", params={"limit": 2, "before": seqs[1]}).json()
    assert [r["seq"] for r in older["records"]] == seqs[2:4]
    used = metric(f"{open_bus.gateway.base_url}/metrics", "sharebus_gateway_open_records_served_total")
    assert used >= 7


def test_the_open_feed_streams_new_records_without_sensitive_fields(open_bus: OpenBus) -> None:
    with anonymous(open_bus, "127.0.0.3") as public:
        # The feed starts at "now": publish once it is open, until the first event arrives.
        def first_events() -> list[Any]:
            open_bus.publish(ENTERPRISE, [enterprise(100)])
            return read_sse(public, f"/open/v1/classes/{ENTERPRISE}/feed", 1, timeout_s=8)

        events = eventually(first_events, lambda found: len(found) >= 1, 60)
    assert events
    assert events[0].event == "record"
    assert events[0].data["value"]["seq"] == 100
    assert SENSITIVE not in events[0].data["value"]


def test_a_class_that_is_not_open_is_404_and_an_unknown_one_too(open_bus: OpenBus) -> None:
    with anonymous(open_bus, "127.0.0.4") as public:
        for path in ("", "/schema", "/records", "/feed"):
            assert public.get(f"/open/v1/classes/{INSPECTION}{path}").status_code == 404
        assert public.get("/open/v1/classes/999999999/000001").status_code == 404
        harvested = public.get("/open/v1/catalogue.jsonld")
        # A department key is no open-data key, and opens nothing here.
        refused = public.get(
            f"/open/v1/classes/{PENALTY}/records", headers={"Authorization": f"Bearer {open_bus.amr_token}"}
        )
    assert refused.status_code == 401
    # The public DCAT-AP catalogue lists the open classes, and no other.
    assert harvested.status_code == 200
    datasets = {str(s) for s in Graph().parse(data=harvested.text, format="json-ld").subjects(RDF.type, DCAT.Dataset)}
    base = "https://data.example.gov.cn/id/classes/"
    assert datasets == {f"{base}{ENTERPRISE}", f"{base}{PENALTY}", f"{base}301001004/000001"}


def test_a_conditionally_open_class_needs_an_open_data_key(open_bus: OpenBus) -> None:
    open_bus.publish(PENALTY, [penalty(seq) for seq in range(1, 4)])
    with anonymous(open_bus, "127.0.0.5") as public:
        without = public.get(f"/open/v1/classes/{PENALTY}/records")
        applied = public.post(
            "/open/v1/keys", json={"holder": "Chongqing University", "purpose": "a study of market penalties"}
        )
    assert without.status_code == 401
    assert "open-data key" in without.json()["detail"]
    assert applied.status_code == 201, applied.text
    token = applied.json()["token"]
    with httpx.Client(
        base_url=open_bus.gateway.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as keyed:
        assert eventually(lambda: keyed.get(f"/open/v1/classes/{PENALTY}/schema").status_code, lambda c: c == 200, 20)
        rows = open_bus.records(keyed, PENALTY, 3)
        # The key opens nothing of the department API.
        assert keyed.get("/v1/catalogue/classes").status_code == 401
    assert sorted(r["value"]["seq"] for r in rows) == [1, 2, 3]
    assert all("person_id_number" not in r["value"] for r in rows)


def test_limits_hold_per_client_429_and_413(open_bus: OpenBus) -> None:
    with anonymous(open_bus, "127.0.0.6") as public:
        too_big = public.get(f"/open/v1/classes/{ENTERPRISE}/records", params={"limit": PAGE_MAX + 1})
        answers = [public.get("/open/v1/classes") for _ in range(2 * BURST + 4)]
    assert too_big.status_code == 413
    assert "at most" in too_big.json()["detail"]
    codes = [a.status_code for a in answers]
    # Refills are 1 a second: 2 * BURST + 4 requests in a row outrun them on any machine that runs this suite.
    assert codes.count(429) >= 1, codes
    assert 200 in codes
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 429)
    # Another client's budget is untouched by this one's.
    with anonymous(open_bus, "127.0.0.7") as other:
        assert other.get("/open/v1/classes").status_code == 200


def test_the_catalogue_and_the_grants_export_as_dcat_ap_and_odrl(open_bus: OpenBus) -> None:
    tax_token = issue_key(open_bus.catalogue, open_bus.access, open_bus.topics.api_keys, "tax-levy")
    with open_bus.gateway.client(tax_token) as tax:
        assert eventually(lambda: tax.get("/v1/whoami").status_code, lambda code: code == 200, 20) == 200
        applied = tax.post(
            "/v1/grants",
            json={
                "consumer": "tax-levy",
                "data_class": PENALTY,
                "purpose": "tax credit rating",
                "scenario": "annual review",
                "fields": ["uscc", "person_id_number", "amount"],
                "masked_fields": ["person_id_number"],
            },
        )
    assert applied.status_code == 201, applied.text
    grant_id = applied.json()["grant"]["grant_id"]
    with open_bus.gateway.client(open_bus.amr_token) as amr:
        approved = amr.post(f"/v1/grants/{grant_id}/approve", json={"valid_days": 30})
        assert approved.status_code == 200, approved.text
        dcat = amr.get("/v1/catalogue.jsonld")
        policies = amr.get("/v1/policies.jsonld")
    with open_bus.gateway.client() as nobody:
        assert nobody.get("/v1/catalogue.jsonld").status_code == 401
    assert dcat.status_code == 200
    assert dcat.headers["content-type"].startswith("application/ld+json")
    catalogue = Graph().parse(data=dcat.text, format="json-ld")
    dataset = URIRef(f"https://data.example.gov.cn/id/classes/{ENTERPRISE}")
    assert (dataset, RDF.type, DCAT.Dataset) in catalogue
    assert policies.status_code == 200
    odrl = Graph().parse(data=policies.text, format="json-ld")
    policy = URIRef(f"https://data.example.gov.cn/id/grants/{grant_id}")
    assert (policy, RDF.type, ODRL.Agreement) in odrl
    permission = odrl.value(policy, ODRL.permission)
    assert odrl.value(permission, ODRL.assignee) == URIRef("https://data.example.gov.cn/id/systems/tax-levy")
    prohibited = {
        str(odrl.value(c, ODRL.rightOperand))
        for p in odrl.objects(policy, ODRL.prohibition)
        for c in odrl.objects(p, ODRL.constraint)
    }
    assert prohibited == {"person_id_number"}


def apply(client: httpx.Client, **headers: str) -> httpx.Response:
    return client.post("/open/v1/keys", json={"holder": "A reader", "purpose": "reading open data"}, headers=headers)


def test_a_revoked_open_data_key_ends_its_open_feed(open_bus: OpenBus) -> None:
    with anonymous(open_bus, "127.0.0.8") as public:
        applied = apply(public)
    assert applied.status_code == 201, applied.text
    token, key_id = applied.json()["token"], applied.json()["key_id"]
    auth = {"Authorization": f"Bearer {token}"}
    metrics_url = f"{open_bus.gateway.base_url}/metrics"
    feeds_before = metric(metrics_url, "sharebus_gateway_feed_connections", transport="open_sse")
    events: list[SSEEvent] = []

    def read() -> None:
        with httpx.Client(base_url=open_bus.gateway.base_url, timeout=30) as keyed:
            assert eventually(lambda: keyed.get("/open/v1/classes", headers=auth).status_code, lambda c: c == 200, 20)
            events.extend(read_sse(keyed, f"/open/v1/classes/{PENALTY}/feed", 1000, timeout_s=60, headers=auth))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    opened = eventually(
        lambda: metric(metrics_url, "sharebus_gateway_feed_connections", transport="open_sse"),
        lambda n: n > feeds_before,
        30,
    )
    assert opened > feeds_before
    store = KeyStore(open_bus.catalogue, open_bus.access, open_bus.topics.api_keys, control=control_keys())
    assert [k.key_id for k in store.revoke(PUBLIC_CONSUMER, key_id)] == [key_id]
    reader.join(timeout=45)
    assert not reader.is_alive(), "the feed of a revoked key is still open"
    assert events, "the feed ended without saying why"
    assert events[-1].event == "error"
    assert events[-1].data["reason"] == "key_revoked"
    with httpx.Client(base_url=open_bus.gateway.base_url, timeout=30) as keyed:
        assert keyed.get(f"/open/v1/classes/{PENALTY}/feed", headers=auth).status_code == 401


def test_open_data_keys_are_issued_per_address_whatever_token_is_sent(open_bus: OpenBus) -> None:
    with anonymous(open_bus, "127.0.0.9") as public:
        issued = [apply(public) for _ in range(KEY_ISSUE_BURST)]
        assert [r.status_code for r in issued] == [201] * KEY_ISSUE_BURST, [r.text for r in issued]
        refused = apply(public)
        # A key of its own does not buy the address more keys.
        key = issued[0].json()["token"]
        assert eventually(
            lambda: public.get("/open/v1/classes", headers={"Authorization": f"Bearer {key}"}).status_code,
            lambda c: c == 200,
            20,
        )
        with_key = apply(public, Authorization=f"Bearer {key}")
    assert refused.status_code == 429
    assert "key applications" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    assert with_key.status_code == 429, with_key.text
    with anonymous(open_bus, "127.0.0.10") as other:
        assert apply(other).status_code == 201
