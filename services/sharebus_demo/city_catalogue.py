"""A generated catalogue with the seed platform's proportions, for scale tests and benchmarks.

The real platform has 61 departments, about 900 systems and 3,170 data classes (2,191 unconditional
and 979 conditional; 2,094 real-time and 1,076 periodic), with about 2.2 subscriptions per class. The
generator keeps those proportions at every scale, gives each class its own schema (its own record
name and field list, drawn from realistic field types, with sensitive fields), and is deterministic
from its seed: the same arguments write the same files.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sharebus_core.errors import SharebusError

try:  # libyaml makes writing (and reading) a city-size catalogue several times faster
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover - libyaml is part of the PyYAML wheels
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Scale:
    departments: int
    systems: int
    classes: int
    unconditional: int
    realtime: int
    subscriptions: int


def _scaled(classes: int, departments: int, systems: int) -> Scale:
    """The seed's class mix and subscriptions per class at another number of classes."""
    return Scale(
        departments=departments,
        systems=systems,
        classes=classes,
        unconditional=round(classes * 2191 / 3170),
        realtime=round(classes * 2094 / 3170),
        subscriptions=round(classes * 6847 / 3170),
    )


SCALES: dict[str, Scale] = {
    "city": Scale(departments=61, systems=900, classes=3170, unconditional=2191, realtime=2094, subscriptions=6847),
    "district": _scaled(200, 12, 60),
    "small": _scaled(30, 5, 12),
}


class GenerateError(SharebusError, ValueError):
    pass


# Real municipal departments first (codes as the city abbreviates them); the rest are numbered.
_DEPARTMENTS: tuple[tuple[str, str, str], ...] = (
    ("AMR", "Municipal Administration for Market Regulation", "市场监督管理局"),
    ("PSB", "Municipal Public Security Bureau", "公安局"),
    ("HRSS", "Municipal Human Resources and Social Security Bureau", "人力资源和社会保障局"),
    ("PNR", "Municipal Planning and Natural Resources Bureau", "规划和自然资源局"),
    ("DRC", "Municipal Development and Reform Commission", "发展和改革委员会"),
    ("TAX", "Municipal Tax Service", "税务局"),
    ("CA", "Municipal Civil Affairs Bureau", "民政局"),
    ("HC", "Municipal Health Commission", "卫生健康委员会"),
    ("HURD", "Municipal Commission of Housing and Urban-Rural Development", "住房和城乡建设委员会"),
    ("EE", "Municipal Ecology and Environment Bureau", "生态环境局"),
    ("EDU", "Municipal Education Commission", "教育委员会"),
    ("TRANS", "Municipal Transport Bureau", "交通运输局"),
    ("WR", "Municipal Water Resources Bureau", "水利局"),
    ("AGRI", "Municipal Agriculture and Rural Affairs Commission", "农业农村委员会"),
    ("COM", "Municipal Commerce Commission", "商务委员会"),
    ("CULT", "Municipal Culture and Tourism Development Commission", "文化和旅游发展委员会"),
    ("EM", "Municipal Emergency Management Bureau", "应急管理局"),
    ("JUS", "Municipal Justice Bureau", "司法局"),
    ("FIN", "Municipal Finance Bureau", "财政局"),
    ("STAT", "Municipal Statistics Bureau", "统计局"),
    ("MED", "Municipal Medical Security Bureau", "医疗保障局"),
    ("VA", "Municipal Veterans Affairs Bureau", "退役军人事务局"),
    ("SPORT", "Municipal Sports Bureau", "体育局"),
    ("FOR", "Municipal Forestry Bureau", "林业局"),
    ("ECON", "Municipal Economy and Information Technology Commission", "经济和信息化委员会"),
    ("SCI", "Municipal Science and Technology Bureau", "科学技术局"),
    ("BDB", "Municipal Big Data Development Bureau", "大数据应用发展管理局"),
    ("AUD", "Municipal Audit Bureau", "审计局"),
    ("URB", "Municipal Urban Management Bureau", "城市管理局"),
    ("ETH", "Municipal Ethnic and Religious Affairs Commission", "民族宗教事务委员会"),
)

# Field pool: (name, Avro type, sensitive). The key field is always ``record_id``.
_DATE: dict[str, str] = {"type": "int", "logicalType": "date"}
_TS: dict[str, str] = {"type": "long", "logicalType": "timestamp-millis"}
_OPT_STR: list[str] = ["null", "string"]
_FIELDS: tuple[tuple[str, Any, bool], ...] = (
    ("uscc", _OPT_STR, False),
    ("org_name", "string", False),
    ("legal_rep_name", "string", True),
    ("legal_rep_id_number", _OPT_STR, True),
    ("person_name", "string", True),
    ("id_number", "string", True),
    ("phone", _OPT_STR, True),
    ("household_address", _OPT_STR, True),
    ("bank_account", _OPT_STR, True),
    ("birth_date", _DATE, True),
    ("district_code", "string", False),
    ("district_name", "string", False),
    ("status", "string", False),
    ("category", "string", False),
    ("licence_number", "string", False),
    ("issue_date", _DATE, False),
    ("expiry_date", _DATE, False),
    ("amount_cny", "double", False),
    ("headcount", "int", False),
    ("area_m2", "double", False),
    ("latitude", "double", False),
    ("longitude", "double", False),
    ("score", "int", False),
    ("is_active", "boolean", False),
    ("case_number", "string", False),
    ("remarks", _OPT_STR, False),
    ("event_time", _TS, False),
    ("sequence_no", "long", False),
)
_SUBJECTS = (
    "registration",
    "licence",
    "inspection",
    "penalty",
    "subsidy",
    "certificate",
    "permit",
    "statistics",
    "assessment",
    "complaint",
    "record filing",
    "qualification",
)
_PERIODS = ("hourly", "daily", "daily", "daily", "weekly", "monthly")


def generate(scale: str | Scale, out: Path | str, seed: int = 13, partitions: int = 3) -> Scale:
    """Writes ``catalogue.yaml`` and ``avro/*.avsc`` under ``out``; returns the scale written."""
    chosen = SCALES.get(scale) if isinstance(scale, str) else scale
    if chosen is None:
        raise GenerateError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if not 1 <= partitions <= 64:
        raise GenerateError(f"partitions must be between 1 and 64, not {partitions}")
    if chosen.departments < 2 or chosen.systems < chosen.departments:
        raise GenerateError("a catalogue needs at least two departments and one system per department")
    out = Path(out)
    (out / "avro").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    departments = _departments(chosen)
    classes, schemas = _classes(chosen, departments, rng, partitions)
    subscriptions = _subscriptions(chosen, departments, classes, rng)
    for path, schema in schemas.items():
        (out / path).write_text(json.dumps(schema, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    document = {"departments": departments, "data_classes": classes, "subscriptions": subscriptions}
    header = (
        f"# Generated by `sharebus catalogue generate` (seed {seed}): {chosen.departments} departments, "
        f"{chosen.systems} systems, {chosen.classes} data classes, {chosen.subscriptions} subscriptions.\n"
        "# Test and benchmark data with the seed platform's proportions; not the city's real catalogue.\n"
    )
    text = yaml.dump(document, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)
    (out / "catalogue.yaml").write_text(header + text, encoding="utf-8")
    return chosen


def _departments(scale: Scale) -> list[dict[str, Any]]:
    result = []
    for i in range(scale.departments):
        if i < len(_DEPARTMENTS):
            code, name, name_zh = _DEPARTMENTS[i]
        else:
            code, name, name_zh = f"D{i + 1:02d}", f"Municipal department {i + 1}", f"市级部门{i + 1}"
        # Systems spread evenly: the first departments take the remainder.
        count = scale.systems // scale.departments + (1 if i < scale.systems % scale.departments else 0)
        systems = [
            {"code": f"{code.lower()}-s{j + 1:03d}", "name": f"{name.split(' ', 1)[1]} system {j + 1}"}
            for j in range(count)
        ]
        result.append({"code": code, "name": f"Chongqing {name}", "name_zh": f"重庆市{name_zh}", "systems": systems})
    return result


def _classes(
    scale: Scale, departments: Sequence[dict[str, Any]], rng: random.Random, partitions: int
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    owners = [
        (d_index, d, s_index, s) for d_index, d in enumerate(departments) for s_index, s in enumerate(d["systems"])
    ]
    unconditional = set(rng.sample(range(scale.classes), scale.unconditional))
    realtime = set(rng.sample(range(scale.classes), scale.realtime))
    classes: list[dict[str, Any]] = []
    schemas: dict[str, dict[str, Any]] = {}
    for i in range(scale.classes):
        d_index, dept, s_index, system = owners[i % len(owners)]
        # Class digit 1-3, then department (2), system (3) and detail (3) as the national guide's item,
        # subitem and detail; the sequence keeps every code unique.
        code = f"{1 + i % 3}{d_index + 1:02d}{s_index + 1:03d}{i // len(owners) + 1:03d}/{i + 1:06d}"
        schema_path = f"avro/{dept['code'].lower()}_c{i + 1:06d}.avsc"
        schema, sensitive = _schema(i, dept["code"], rng)
        schemas[schema_path] = schema
        subject = rng.choice(_SUBJECTS)
        entry: dict[str, Any] = {
            "code": code,
            "name": f"{dept['code']} {subject} data {i + 1}",
            "provider": dept["code"],
            "system": system["code"],
            "schema": schema_path,
            "key_field": "record_id",
            "share_type": "unconditional" if i in unconditional else "conditional",
        }
        if i not in unconditional:
            entry["legal_basis"] = "Chongqing Public Data Resources Management Measures, art. 24"
        if i in realtime:
            entry["update"] = {"mode": "realtime"}
        else:
            entry["update"] = {"mode": "periodic", "period": rng.choice(_PERIODS), "release_at": "02:00"}
        entry["open_type"] = rng.choice(("not_open", "conditional_open", "open")) if i in unconditional else "not_open"
        entry["sensitive_fields"] = sensitive
        entry["partitions"] = partitions
        entry["retention_hours"] = 168
        classes.append(entry)
    return classes, schemas


def _schema(index: int, department: str, rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    picked = rng.sample(_FIELDS, rng.randint(4, 12))
    fields: list[dict[str, Any]] = [{"name": "record_id", "type": "string", "doc": "Provider's record identifier."}]
    sensitive = []
    for name, avro_type, is_sensitive in sorted(picked, key=lambda f: _FIELDS.index(f)):
        field: dict[str, Any] = {"name": name, "type": avro_type}
        if avro_type == _OPT_STR:
            field["default"] = None
        fields.append(field)
        if is_sensitive:
            sensitive.append(name)
    fields.append({"name": "updated_at", "type": _TS, "doc": "When the provider last changed this record."})
    schema = {
        "type": "record",
        "name": f"Class{index + 1:06d}",
        "namespace": f"gov.cq.{department.lower()}",
        "fields": fields,
    }
    return schema, sensitive


def _subscriptions(
    scale: Scale, departments: Sequence[dict[str, Any]], classes: Sequence[dict[str, Any]], rng: random.Random
) -> list[dict[str, str]]:
    systems_of = {d["code"]: [s["code"] for s in d["systems"]] for d in departments}
    every_system = [s for d in departments for s in systems_of[d["code"]]]
    counts = [1] * len(classes)
    # The rest go to classes with a long tail: a few classes (identity, enterprise) have many consumers.
    weights = [rng.paretovariate(1.5) for _ in classes]
    capacity = [len(every_system) - len(systems_of[c["provider"]]) for c in classes]
    for index in rng.choices(range(len(classes)), weights=weights, k=max(0, scale.subscriptions - len(classes))):
        while counts[index] >= capacity[index]:
            index = (index + 1) % len(classes)
        counts[index] += 1
    result = []
    for entry, count in zip(classes, counts, strict=True):
        own = set(systems_of[entry["provider"]])
        chosen: set[str] = set()
        while len(chosen) < count:
            candidate = rng.choice(every_system)
            if candidate not in own:
                chosen.add(candidate)
        for system in sorted(chosen):
            result.append({"system": system, "data_class": entry["code"], "purpose": "Cross-department sharing"})
    return result
