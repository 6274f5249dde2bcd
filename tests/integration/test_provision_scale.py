"""Provisioning a generated catalogue on the real broker and registry: in chunks, idempotent, incremental.

A district-size catalogue (200 classes) keeps the test quick; the chunk budget is lowered so the
topics still go to the controller in several CreateTopics requests, as a city's do.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import Principals
from sharebus_core.registry_client import auth_of
from sharebus_core.topics import TopicNames
from sharebus_demo.city_catalogue import SCALES, generate
from sharebus_provision import ProvisionError, TopicSpec, catalogue_topics, ensure_topics, provision_schemas
from sharebus_provision.schemas import provision_projections
from sharebus_provision.topics import chunk_specs
from sharebus_rules.routing import class_projections
from tests.support.names import unique
from tests.support.principals import delete_scram_user, scram_user
from tests.support.registry import RegistryProcess

NEW_CODE = "399999999/999999"


def _specs(directory: Path, topics: TopicNames) -> list[TopicSpec]:
    return catalogue_topics(load_catalogue(directory), topics, 1, 24, 24)


def _add_one_class(directory: Path) -> None:
    """Appends a class with a schema of its own, as an operator adding a class to the catalogue does."""
    path = directory / "catalogue.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    entry = dict(document["data_classes"][-1])
    schema = json.loads((directory / entry["schema"]).read_text(encoding="utf-8"))
    schema["name"] = "AddedClass"
    (directory / "avro" / "added.avsc").write_text(json.dumps(schema), encoding="utf-8")
    entry.update(code=NEW_CODE, schema="avro/added.avsc", name="A class added later")
    document["data_classes"].append(entry)
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_a_generated_catalogue_provisions_in_chunks_then_only_what_is_new(
    kafka_admin: KafkaAccess, shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    generate("district", tmp_path, partitions=1)
    topics = TopicNames(unique("scale"))
    specs = _specs(tmp_path, topics)
    budget = 150
    assert len(chunk_specs(specs, budget)) >= 5

    created = ensure_topics(kafka_admin, specs, max_records=budget)
    assert sorted(created) == sorted(s.name for s in specs)
    catalogue = load_catalogue(tmp_path)
    first = provision_schemas(catalogue, topics, shared_registry.url, shared_registry.auth)
    assert len(first.registered) == SCALES["district"].classes
    assert len(set(first.ids.values())) == SCALES["district"].classes

    # Nothing changed: nothing is created or registered, and the ids are the same.
    assert ensure_topics(kafka_admin, specs, max_records=budget) == []
    again = provision_schemas(catalogue, topics, shared_registry.url, shared_registry.auth)
    assert again.registered == ()
    assert again.ids == first.ids

    # One class more: one topic, one schema.
    _add_one_class(tmp_path)
    grown = load_catalogue(tmp_path)
    assert ensure_topics(kafka_admin, _specs(tmp_path, topics), max_records=budget) == [topics.source(NEW_CODE)]
    third = provision_schemas(grown, topics, shared_registry.url, shared_registry.auth)
    assert third.registered == (NEW_CODE,)
    assert {k: v for k, v in third.ids.items() if k != NEW_CODE} == first.ids
    assert third.ids[NEW_CODE] not in first.ids.values()


def test_a_topic_kafka_refuses_is_a_provision_error_naming_it(kafka_admin: KafkaAccess) -> None:
    name = unique("refused")
    with pytest.raises(ProvisionError, match=f"Kafka did not create topic {name}: .*retention"):
        ensure_topics(kafka_admin, [TopicSpec(name, 1, {"retention.ms": "not-a-number"})])


def test_catalogue_projections_are_registered_ahead_where_the_registry_holds_none(
    shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    generate("small", tmp_path, partitions=1)
    catalogue = load_catalogue(tmp_path)
    topics = TopicNames(unique("projections"))
    now = dt.datetime.now(dt.UTC)
    wanted = {
        topics.projection_subject(consumer, code): schema
        for code in catalogue.data_classes
        for consumer, schema in class_projections(catalogue, code, now)
    }
    assert len(wanted) > 1  # the generated catalogue's sensitive fields make projections
    provision_schemas(catalogue, topics, shared_registry.url, shared_registry.auth)
    with shared_registry.http() as http:

        def latest(subject: str) -> object:
            response = http.get(f"/subjects/{subject}/versions/latest")
            response.raise_for_status()
            return json.loads(response.json()["schema"])

        # A subject that holds a schema already (a grant's projection, say) is the router's to decide.
        taken = sorted(wanted)[0]
        earlier = {"type": "record", "name": "Earlier", "fields": [{"name": "n", "type": "long"}]}
        http.post(f"/subjects/{taken}/versions", json={"schema": json.dumps(earlier)}).raise_for_status()

        first = provision_projections(catalogue, topics, shared_registry.url, shared_registry.auth, public=False)
        assert sorted(first) == sorted(set(wanted) - {taken})
        assert all(latest(subject) == wanted[subject] for subject in first)
        assert latest(taken) == earlier
        assert provision_projections(catalogue, topics, shared_registry.url, shared_registry.auth, public=False) == ()


def test_projections_the_registry_refuses_are_left_to_the_router(
    kafka_admin: KafkaAccess, shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    generate("small", tmp_path, partitions=1)
    catalogue = load_catalogue(tmp_path)
    topics = TopicNames(unique("refused"))
    # A system may read the registry but not register: every registration is refused (403).
    username = Principals(shared_registry.namespace).system(unique("reader"))
    reader = auth_of(scram_user(kafka_admin, username))
    try:
        assert provision_projections(catalogue, topics, shared_registry.url, reader, public=False) == ()
        # A credential the registry does not know: the listing itself is refused (401).
        assert provision_projections(catalogue, topics, shared_registry.url, f"{username}:wrong", public=False) == ()
    finally:
        delete_scram_user(kafka_admin, username)
    with shared_registry.http() as http:
        listed = http.get("/schemas", params={"subjectPrefix": topics.delivery("")})
        listed.raise_for_status()
        assert listed.json() == []
