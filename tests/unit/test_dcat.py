"""The DCAT-AP and ODRL exports: parsed by rdflib, the catalogue validated by pyshacl against the shipped
DCAT-AP 3.0.1 shapes, and the content checked triple by triple against the catalogue it came from."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pyshacl import validate
from rdflib import RDF, Graph, Literal, Namespace, URIRef

from sharebus_core.catalogue import Catalogue, OpenType, load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_rules.dcat import Addresses, DcatExportError, catalogue_dcat
from sharebus_rules.odrl import grant_policies
from sharebus_rules.open_data import open_catalogue

ROOT = Path(__file__).resolve().parents[2]
SHAPES = ROOT / "schemas" / "shacl" / "dcat-ap-3.0.1-sharebus.ttl"
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
ODRL = Namespace("http://www.w3.org/ns/odrl/2/")
EU = "http://publications.europa.eu/resource/authority/"
AT = Addresses("https://bus.example.gov.cn", "broker-1:9093,broker-2:9093", namespace="sharebus")
NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
# rdflib's own JSON-LD parser still builds a ConjunctiveGraph inside; nothing of ours to change.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(ROOT / "schemas")


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return Graph().parse(SHAPES, format="turtle")


def graph_of(document: dict[str, Any]) -> Graph:
    return Graph().parse(data=json.dumps(document), format="json-ld")


def conforms(document: dict[str, Any], shapes: Graph) -> tuple[bool, str]:
    ok, _report, text = validate(graph_of(document), shacl_graph=shapes, inference="none")
    return bool(ok), str(text)


def test_the_export_conforms_to_the_dcat_ap_shapes(catalogue: Catalogue, shapes: Graph) -> None:
    ok, report = conforms(catalogue_dcat(catalogue, AT, "BDB"), shapes)
    assert ok, report


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("drop_title", "dct:title"),
        ("drop_access_url", "dcat:accessURL"),
        ("two_publishers", "dct:publisher"),
    ],
)
def test_the_shapes_catch_a_broken_export(catalogue: Catalogue, shapes: Graph, damage: str, expected: str) -> None:
    document = copy.deepcopy(catalogue_dcat(catalogue, AT, "BDB"))
    graph = document["@graph"]
    if damage == "drop_title":
        next(n for n in graph if n["@type"] == "dcat:Dataset").pop("dct:title")
    elif damage == "drop_access_url":
        next(n for n in graph if n["@type"] == "dcat:Distribution").pop("dcat:accessURL")
    else:
        dataset = next(n for n in graph if n["@type"] == "dcat:Dataset")
        dataset["dct:publisher"] = [dataset["dct:publisher"], {"@id": AT.department("TAX")}]
    ok, report = conforms(document, shapes)
    assert not ok
    assert expected.split(":")[1] in report


def test_departments_publish_their_classes(catalogue: Catalogue) -> None:
    g = graph_of(catalogue_dcat(catalogue, AT, "BDB"))
    datasets = set(g.subjects(RDF.type, DCAT.Dataset))
    assert len(datasets) == len(catalogue.data_classes)
    for code, entry in catalogue.data_classes.items():
        dataset = URIRef(AT.dataset(code))
        assert dataset in datasets
        publisher = g.value(dataset, DCT.publisher)
        assert publisher == URIRef(AT.department(entry.provider))
        assert (publisher, RDF.type, FOAF.Agent) in g
        assert Literal(catalogue.departments[entry.provider].name, lang="en") in set(g.objects(publisher, FOAF.name))
        assert g.value(dataset, DCT.identifier) == Literal(code)
    catalog = URIRef(AT.iri("id", "catalogue"))
    assert g.value(catalog, DCT.publisher) == URIRef(AT.department("BDB"))
    assert set(g.objects(catalog, DCAT.dataset)) == datasets


def test_distributions_follow_the_open_type(catalogue: Catalogue) -> None:
    g = graph_of(catalogue_dcat(catalogue, AT, "BDB"))
    for code, entry in catalogue.data_classes.items():
        accesses = {str(g.value(d, DCAT.accessURL)) for d in g.objects(URIRef(AT.dataset(code)), DCAT.distribution)}
        assert "kafka://broker-1:9093" in accesses
        assert AT.iri("v1", "systems") in accesses
        open_path = AT.iri("open", "v1", "classes", code)
        assert (open_path in accesses) is (entry.open_type is not OpenType.NOT_OPEN)
        rights = {
            OpenType.OPEN: "PUBLIC",
            OpenType.CONDITIONAL_OPEN: "RESTRICTED",
            OpenType.NOT_OPEN: "NON_PUBLIC",
        }[entry.open_type]
        assert g.value(URIRef(AT.dataset(code)), DCT.accessRights) == URIRef(f"{EU}access-right/{rights}")


def test_frequency_and_themes_come_from_the_period_and_the_code(catalogue: Catalogue) -> None:
    g = graph_of(catalogue_dcat(catalogue, AT, "BDB"))
    population = URIRef(AT.dataset("101001001/000001"))
    assert URIRef(AT.iri("id", "themes", "1", "01")) in set(g.objects(population, DCAT.theme))
    assert URIRef(f"{EU}data-theme/SOCI") in set(g.objects(population, DCAT.theme))
    for code, entry in catalogue.data_classes.items():
        frequency = str(g.value(URIRef(AT.dataset(code)), DCT.accrualPeriodicity))
        if entry.update.period is None:
            assert frequency == f"{EU}frequency/UPDATE_CONT"
        else:
            assert frequency == f"{EU}frequency/{entry.update.period.value.upper()}"
        assert URIRef(AT.iri("id", "themes", code[0], code[1:3])) in set(
            g.objects(URIRef(AT.dataset(code)), DCAT.theme)
        )


def test_the_public_catalogue_lists_only_open_classes_and_conforms(catalogue: Catalogue, shapes: Graph) -> None:
    document = catalogue_dcat(open_catalogue(catalogue), AT, "BDB")
    ok, report = conforms(document, shapes)
    assert ok, report
    g = graph_of(document)
    expected = {AT.dataset(c) for c, e in catalogue.data_classes.items() if e.open_type is not OpenType.NOT_OPEN}
    assert {str(d) for d in g.subjects(RDF.type, DCAT.Dataset)} == expected
    assert len(expected) < len(catalogue.data_classes)


def test_an_unknown_publisher_is_refused(catalogue: Catalogue) -> None:
    with pytest.raises(DcatExportError, match="NOPE"):
        catalogue_dcat(catalogue, AT, "NOPE")


def _grant(**changes: Any) -> Grant:
    values: dict[str, Any] = {
        "grant_id": "g-42",
        "data_class": "101001001/000001",
        "provider": "PSB",
        "consumer": "tax-levy",
        "consumer_department": "TAX",
        "requester": "Li",
        "purpose": "tax residency checks",
        "scenario": "annual",
        "fields": ("id_number", "name", "gender"),
        "masked_fields": ("id_number", "name"),
        "state": GrantState.APPROVED,
        "applied_at": NOW,
        "valid_until": NOW + dt.timedelta(days=90),
    }
    return Grant(**{**values, **changes})


def test_a_grant_is_an_odrl_agreement_with_its_constraints(catalogue: Catalogue) -> None:
    g = graph_of(grant_policies([_grant()], catalogue, NOW, AT))
    policy = URIRef(AT.iri("id", "grants", "g-42"))
    assert (policy, RDF.type, ODRL.Agreement) in g
    permission = g.value(policy, ODRL.permission)
    assert g.value(permission, ODRL.action) == ODRL.use
    assert g.value(permission, ODRL.assignee) == URIRef(AT.system("tax-levy"))
    assert g.value(permission, ODRL.assigner) == URIRef(AT.department("PSB"))
    assert g.value(permission, ODRL.target) == URIRef(AT.dataset("101001001/000001"))
    constraints = {g.value(c, ODRL.leftOperand): c for c in g.objects(permission, ODRL.constraint)}
    assert g.value(constraints[ODRL.purpose], ODRL.rightOperand) == Literal("tax residency checks")
    until = g.value(constraints[ODRL.dateTime], ODRL.rightOperand)
    assert isinstance(until, Literal)
    assert until.toPython() == NOW + dt.timedelta(days=90)
    fields = constraints[URIRef(AT.iri("ns", "odrl") + "#field")]
    assert {str(v) for v in g.objects(fields, ODRL.rightOperand)} == {"id_number", "name", "gender"}
    prohibited = {
        str(g.value(c, ODRL.rightOperand))
        for p in g.objects(policy, ODRL.prohibition)
        for c in g.objects(p, ODRL.constraint)
    }
    assert prohibited == {"id_number", "name"}


def test_a_grant_without_expiry_or_masks_has_neither_constraint_nor_prohibition(catalogue: Catalogue) -> None:
    g = graph_of(grant_policies([_grant(valid_until=None, masked_fields=())], catalogue, NOW, AT))
    policy = URIRef(AT.iri("id", "grants", "g-42"))
    permission = g.value(policy, ODRL.permission)
    lefts = {g.value(c, ODRL.leftOperand) for c in g.objects(permission, ODRL.constraint)}
    assert ODRL.dateTime not in lefts
    assert ODRL.purpose in lefts
    assert g.value(policy, ODRL.prohibition) is None


def test_the_anonymous_catalogue_names_no_kafka_and_only_open_publishers(catalogue: Catalogue, shapes: Graph) -> None:
    public = open_catalogue(catalogue)
    document = catalogue_dcat(public, AT, "BDB", public=True)
    ok, report = conforms(document, shapes)
    assert ok, report
    text = json.dumps(document)
    for internal in ("kafka", "broker-1", "/v1/systems", "sharebus."):
        assert internal not in text, internal
    g = graph_of(document)
    agents = {str(a) for a in g.subjects(RDF.type, FOAF.Agent)}
    expected = {AT.department(d) for d in {"BDB", *(e.provider for e in public.data_classes.values())}}
    assert agents == expected
    assert len(agents) < len(catalogue.departments)
    for code in public.data_classes:
        accesses = {str(g.value(d, DCAT.accessURL)) for d in g.objects(URIRef(AT.dataset(code)), DCAT.distribution)}
        assert accesses == {AT.iri("open", "v1", "classes", code)}
