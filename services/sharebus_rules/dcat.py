"""The catalogue as DCAT-AP 3 JSON-LD: departments as publishers, classes as datasets, three ways in.

Pure: the same document for the same catalogue and addresses. The gateway serves it at
``/v1/catalogue.jsonld`` and ``sharebus catalogue export --format dcat`` prints it. Every node is a
subject of its own in ``@graph`` (flat JSON-LD), so a harvester needs no framing to read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sharebus_core.catalogue import Catalogue, DataClass, Department, OpenType, Period, UpdateMode
from sharebus_core.errors import SharebusError
from sharebus_core.topics import TopicNames
from sharebus_rules.open_data import is_open

CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
}

_EU = "http://publications.europa.eu/resource/authority/"
# EU Publications Office frequency vocabulary, which DCAT-AP names for dct:accrualPeriodicity.
_FREQUENCY = {
    Period.HOURLY: "HOURLY",
    Period.DAILY: "DAILY",
    Period.WEEKLY: "WEEKLY",
    Period.MONTHLY: "MONTHLY",
}
_CONTINUOUS = "UPDATE_CONT"
_ACCESS_RIGHT = {
    OpenType.OPEN: "PUBLIC",
    OpenType.CONDITIONAL_OPEN: "RESTRICTED",
    OpenType.NOT_OPEN: "NON_PUBLIC",
}
# The national catalogue guide's first digit, and the base catalogues' items under class 1.
_CLASS_LABEL = {
    "1": ("Base information resources", "基础信息资源"),
    "2": ("Thematic information resources", "主题信息资源"),
    "3": ("Departmental information resources", "部门信息资源"),
}
_BASE_ITEM_LABEL = {
    "01": ("Population", "人口"),
    "02": ("Legal entities", "法人"),
    "03": ("Natural resources and geography", "自然资源和空间地理"),
    "04": ("Social credit", "社会信用"),
    "05": ("Electronic licences", "电子证照"),
}
# EU data themes (the vocabulary DCAT-AP recommends for dcat:theme) for the base catalogues; every
# other class is filed under government and public sector.
_EU_THEME_OF_BASE_ITEM = {"01": "SOCI", "02": "ECON", "03": "REGI", "04": "ECON", "05": "GOVE"}
_EU_THEME_LABEL = {
    "SOCI": "Population and society",
    "ECON": "Economy and finance",
    "REGI": "Regions and cities",
    "GOVE": "Government and public sector",
}


class DcatExportError(SharebusError, ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Addresses:
    """Where the bus is reached: IRIs of the export are minted under ``base_url``."""

    base_url: str
    kafka_bootstrap: str
    namespace: str = "sharebus"

    def iri(self, *parts: str) -> str:
        return "/".join((self.base_url.rstrip("/"), *parts))

    def department(self, code: str) -> str:
        return self.iri("id", "departments", code)

    def system(self, code: str) -> str:
        return self.iri("id", "systems", code)

    def dataset(self, class_code: str) -> str:
        return self.iri("id", "classes", class_code)

    def kafka_endpoint(self) -> str:
        first = self.kafka_bootstrap.split(",")[0].strip()
        return f"kafka://{first}"


def _access_right(entry: DataClass) -> str:
    """PUBLIC or RESTRICTED only for a class the open path serves (``is_open``); NON_PUBLIC otherwise."""
    kind = entry.open_type if is_open(entry) else OpenType.NOT_OPEN
    return f"{_EU}access-right/{_ACCESS_RIGHT[kind]}"


def _text(en: str, zh: str | None = None) -> list[dict[str, str]]:
    values = [{"@value": en, "@language": "en"}]
    if zh:
        values.append({"@value": zh, "@language": "zh"})
    return values


def _ref(iri: str) -> dict[str, str]:
    return {"@id": iri}


def _agent(dept: Department, at: Addresses) -> dict[str, Any]:
    return {
        "@id": at.department(dept.code),
        "@type": "foaf:Agent",
        "foaf:name": _text(dept.name, dept.name_zh),
        "dct:identifier": dept.code,
    }


def class_themes(code: str) -> tuple[str, str, str]:
    """(class digit, item, EU data theme) from a class code such as 101001001/000001."""
    digit, item = code[0], code[1:3]
    eu = _EU_THEME_OF_BASE_ITEM.get(item, "GOVE") if digit == "1" else "GOVE"
    return digit, item, eu


def frequency(entry: DataClass) -> str:
    """The EU frequency IRI of a class: its period, or continuously updated for a realtime class."""
    if entry.update.mode is UpdateMode.REALTIME or entry.update.period is None:
        return f"{_EU}frequency/{_CONTINUOUS}"
    return f"{_EU}frequency/{_FREQUENCY[entry.update.period]}"


def _eu_concept(iri: str, kind: str, label: str | None = None) -> dict[str, Any]:
    """A concept of an EU authority table, in its scheme (the table's IRI)."""
    scheme, _, notation = iri.rpartition("/")
    types = ["skos:Concept"] if kind == "skos:Concept" else [kind, "skos:Concept"]
    return {"@id": iri, "@type": types, "skos:prefLabel": _text(label or notation), "skos:inScheme": _ref(scheme)}


def _concepts(catalogue: Catalogue, at: Addresses) -> list[dict[str, Any]]:
    """Every theme, frequency and access-right concept the datasets use, typed and labelled."""
    scheme = at.iri("id", "themes")
    nodes: dict[str, dict[str, Any]] = {
        scheme: {
            "@id": scheme,
            "@type": "skos:ConceptScheme",
            "dct:title": _text("sharebus resource classification (national catalogue guide)", "政务信息资源分类"),
        }
    }
    for entry in catalogue.data_classes.values():
        digit, item, eu = class_themes(entry.code)
        label = _CLASS_LABEL[digit]
        nodes.setdefault(
            at.iri("id", "themes", digit),
            {"@id": at.iri("id", "themes", digit), "@type": "skos:Concept", "skos:prefLabel": _text(*label)},
        )
        item_label = _BASE_ITEM_LABEL.get(item) if digit == "1" else None
        item_en, item_zh = item_label or (f"{label[0]}, item {item}", f"{label[1]} {item}")
        nodes.setdefault(
            at.iri("id", "themes", digit, item),
            {
                "@id": at.iri("id", "themes", digit, item),
                "@type": "skos:Concept",
                "skos:prefLabel": _text(item_en, item_zh),
                "skos:broader": _ref(at.iri("id", "themes", digit)),
            },
        )
        eu_iri = f"{_EU}data-theme/{eu}"
        nodes.setdefault(eu_iri, _eu_concept(eu_iri, "skos:Concept", _EU_THEME_LABEL[eu]))
        freq = frequency(entry)
        nodes.setdefault(freq, _eu_concept(freq, "dct:Frequency"))
        rights = _access_right(entry)
        nodes.setdefault(rights, _eu_concept(rights, "dct:RightsStatement"))
    for iri, node in nodes.items():
        if node["@type"] == "skos:Concept" and iri.startswith(scheme + "/"):
            node["skos:inScheme"] = _ref(scheme)
    return list(nodes.values())


def _services(at: Addresses, public: bool) -> list[dict[str, Any]]:
    services = [
        {
            "@id": at.iri("id", "services", "kafka"),
            "@type": "dcat:DataService",
            "dct:title": _text("sharebus Kafka delivery", "共享总线 Kafka 投递"),
            "dct:description": _text(
                "Records a system is granted arrive on its own delivery topic (SASL_SSL, SCRAM); read with "
                "the sharebus SDK Subscriber."
            ),
            "dcat:endpointURL": _ref(at.kafka_endpoint()),
        },
        {
            "@id": at.iri("id", "services", "gateway"),
            "@type": "dcat:DataService",
            "dct:title": _text("sharebus HTTP gateway", "共享总线 HTTP 网关"),
            "dct:description": _text("Feeds (SSE, WebSocket), batches and the grant workflow, with an API key."),
            "dcat:endpointURL": _ref(at.iri("v1")),
            "dcat:endpointDescription": _ref(at.iri("openapi.json")),
        },
        {
            "@id": at.iri("id", "services", "open"),
            "@type": "dcat:DataService",
            "dct:title": _text("sharebus open data", "共享总线开放数据"),
            "dct:description": _text("Open classes for the public, without their sensitive fields."),
            "dcat:endpointURL": _ref(at.iri("open", "v1")),
        },
    ]
    # The public sees only the open path: no Kafka address, no department API.
    return services[2:] if public else services


def _distributions(entry: DataClass, at: Addresses, public: bool) -> list[dict[str, Any]]:
    topics = TopicNames(at.namespace)
    dataset = at.dataset(entry.code)
    found: list[dict[str, Any]] = (
        []
        if public
        else [
            {
                "@id": f"{dataset}/distributions/kafka",
                "@type": "dcat:Distribution",
                "dct:title": _text("Kafka delivery topic (Avro, Confluent wire format)"),
                "dct:description": _text(
                    f"Published on {topics.source(entry.code)}; a granted system receives it, projected and masked "
                    f"for its grant, on {topics.delivery('<system>')}."
                ),
                "dcat:accessURL": _ref(at.kafka_endpoint()),
                "dcat:accessService": _ref(at.iri("id", "services", "kafka")),
                "dcat:mediaType": _ref("https://www.iana.org/assignments/media-types/application/avro"),
            },
            {
                "@id": f"{dataset}/distributions/sse",
                "@type": "dcat:Distribution",
                "dct:title": _text("Server-sent events feed of the gateway"),
                "dct:description": _text("GET /v1/systems/<system>/feed with the system's API key."),
                "dcat:accessURL": _ref(at.iri("v1", "systems")),
                "dcat:accessService": _ref(at.iri("id", "services", "gateway")),
                "dcat:mediaType": _ref("https://www.iana.org/assignments/media-types/text/event-stream"),
            },
        ]
    )
    if is_open(entry):
        key = " with a free open-data key" if entry.open_type is OpenType.CONDITIONAL_OPEN else ", no key needed"
        found.append(
            {
                "@id": f"{dataset}/distributions/open",
                "@type": "dcat:Distribution",
                "dct:title": _text("Open data: recent records (JSON, paged) and an SSE feed"),
                "dct:description": _text(f"Only the fields that are not sensitive{key}."),
                "dcat:accessURL": _ref(at.iri("open", "v1", "classes", entry.code)),
                "dcat:downloadURL": _ref(at.iri("open", "v1", "classes", entry.code, "records")),
                "dcat:accessService": _ref(at.iri("id", "services", "open")),
                "dcat:mediaType": _ref("https://www.iana.org/assignments/media-types/application/json"),
            }
        )
    return found


def _dataset(entry: DataClass, at: Addresses, public: bool) -> list[dict[str, Any]]:
    digit, item, eu = class_themes(entry.code)
    distributions = _distributions(entry, at, public)
    dataset: dict[str, Any] = {
        "@id": at.dataset(entry.code),
        "@type": "dcat:Dataset",
        "dct:identifier": entry.code,
        "dct:title": _text(entry.name, entry.name_zh),
        "dct:description": _text(entry.abstract or entry.name),
        "dct:publisher": _ref(at.department(entry.provider)),
        "dcat:theme": [
            _ref(at.iri("id", "themes", digit, item)),
            _ref(f"{_EU}data-theme/{eu}"),
        ],
        "dct:accrualPeriodicity": _ref(frequency(entry)),
        "dct:accessRights": _ref(_access_right(entry)),
        "dcat:keyword": [
            {"@value": f"share type: {entry.share_type.value}", "@language": "en"},
            {"@value": f"open type: {entry.open_type.value}", "@language": "en"},
        ],
        "dcat:distribution": [_ref(d["@id"]) for d in distributions],
    }
    if entry.legal_basis:
        dataset["dct:conformsTo"] = {"@id": f"{at.dataset(entry.code)}/legal-basis", "@type": "dct:Standard"}
        dataset["dct:conformsTo"]["dct:title"] = _text(entry.legal_basis)
    return [dataset, *distributions]


# The class DCAT-AP's range shapes expect of the nodes these properties point at.
_TARGET_TYPES = {
    "dcat:endpointURL": "rdfs:Resource",
    "dcat:endpointDescription": "rdfs:Resource",
    "dcat:accessURL": "rdfs:Resource",
    "dcat:downloadURL": "rdfs:Resource",
    "dcat:mediaType": "dct:MediaType",
    "foaf:homepage": "foaf:Document",
}


def _typed_targets(graph: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A typed node for every address and media type the graph points at, once each."""
    typed: dict[str, dict[str, Any]] = {}
    for node in graph:
        for prop, kind in _TARGET_TYPES.items():
            target = node.get(prop)
            if target is not None:
                typed.setdefault(target["@id"], {"@id": target["@id"], "@type": kind})
    return list(typed.values())


def choose_publisher(catalogue: Catalogue, wanted: str) -> str:
    """The wanted publisher, or the catalogue's first department when it is not one of them."""
    return wanted if wanted in catalogue.departments else next(iter(catalogue.departments))


def catalogue_dcat(catalogue: Catalogue, at: Addresses, publisher: str, *, public: bool = False) -> dict[str, Any]:
    """The whole catalogue as one DCAT-AP JSON-LD document; ``publisher`` is the catalogue's department.

    ``public``: the anonymous variant, for a catalogue already cut to its open classes (``open_catalogue``):
    only the open-data distribution and service (no Kafka address, namespace or topic), and only the
    departments that publish those classes, and the catalogue's publisher.
    """
    if publisher not in catalogue.departments:
        raise DcatExportError(f"the catalogue publisher {publisher!r} is not a department of the catalogue")
    graph: list[dict[str, Any]] = [
        {
            "@id": at.iri("id", "catalogue"),
            "@type": "dcat:Catalog",
            "dct:title": _text("sharebus government data catalogue", "政务数据目录"),
            "dct:description": _text(
                "Data classes shared between departments on the sharebus, with their provider, share and open "
                "type, and update period."
            ),
            "dct:publisher": _ref(at.department(publisher)),
            "foaf:homepage": _ref(at.iri("docs")),
            "dcat:themeTaxonomy": _ref(at.iri("id", "themes")),
            "dcat:dataset": [_ref(at.dataset(code)) for code in catalogue.data_classes],
            "dcat:service": [_ref(s["@id"]) for s in _services(at, public)],
        }
    ]
    named = {publisher, *(e.provider for e in catalogue.data_classes.values())}
    graph.extend(_agent(d, at) for d in catalogue.departments.values() if not public or d.code in named)
    for entry in catalogue.data_classes.values():
        graph.extend(_dataset(entry, at, public))
    graph.extend(_services(at, public))
    graph.extend(_concepts(catalogue, at))
    graph.extend(_typed_targets(graph))
    return {"@context": dict(CONTEXT), "@graph": graph}
