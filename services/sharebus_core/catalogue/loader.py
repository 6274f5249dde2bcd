"""Loads ``schemas/catalogue.yaml`` and the ``.avsc`` files it names, and checks every cross-reference."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sharebus_core.catalogue.catalogue import Catalogue
from sharebus_core.catalogue.errors import CatalogueError, Problem
from sharebus_core.catalogue.federation import merge_districts
from sharebus_core.catalogue.models import CatalogueDocument, DataClass, OpenType, Subscription
from sharebus_core.catalogue.quality import RuleKind, a_rule
from sharebus_core.catalogue.schema import AvroSchema, SchemaParseError

try:  # libyaml: loading a city-size catalogue (3,170 classes) takes seconds with the pure-Python loader
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml is part of the PyYAML wheels
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

CATALOGUE_FILE = "catalogue.yaml"
_STRING_TYPES = ("string", ["null", "string"], ["string", "null"])
_NUMBERS = ("int", "long", "float", "double")
_TIMES = ("date", "timestamp-millis", "timestamp-micros")
# What each rule kind can check; None: any type.
_RULE_TYPES: dict[RuleKind, str | None] = {
    RuleKind.REQUIRED: None,
    RuleKind.USCC: "string",
    RuleKind.RESIDENT_ID: "string",
    RuleKind.REGEX: "string",
    RuleKind.ENUM: "string",
    RuleKind.REFERENCE: "string",
    RuleKind.RANGE: "number",
    RuleKind.NOT_FUTURE: "date or timestamp",
}


def _base_type(avro_type: Any) -> Any:
    """A field's type without its null branch: rules other than ``required`` let a null pass."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        return branches[0] if len(branches) == 1 else avro_type
    return avro_type


def _type_fits(kind: RuleKind, avro_type: Any) -> bool:
    wanted = _RULE_TYPES[kind]
    base = _base_type(avro_type)
    logical = base.get("logicalType") if isinstance(base, dict) else None
    if wanted is None:
        return True
    if wanted == "string":
        return base == "string" or (isinstance(base, dict) and base.get("type") in ("string", "enum") and not logical)
    if wanted == "number":
        return (base in _NUMBERS) or (isinstance(base, dict) and base.get("type") in _NUMBERS and logical is None)
    return logical in _TIMES


def load_catalogue(directory: Path | str) -> Catalogue:
    """Loads and checks the catalogue in ``directory``; raises CatalogueError listing every problem."""
    directory = Path(directory)
    path = directory / CATALOGUE_FILE
    shown = _display(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except FileNotFoundError:
        raise CatalogueError([Problem(shown, "(file)", "", "the catalogue file does not exist")]) from None
    except UnicodeDecodeError as exc:
        raise CatalogueError([Problem(shown, "(file)", "", f"not UTF-8 text (save it as UTF-8): {exc}")]) from exc
    except OSError as exc:
        raise CatalogueError([Problem(shown, "(file)", "", f"the catalogue file cannot be read: {exc}")]) from exc
    except yaml.YAMLError as exc:
        raise CatalogueError([Problem(shown, "(file)", "", f"not valid YAML: {exc}")]) from exc
    if not isinstance(raw, dict):
        raise CatalogueError([Problem(shown, "(file)", "", "the top level must be a mapping")])
    try:
        document = CatalogueDocument.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError([_problem_from_pydantic(shown, raw, err) for err in exc.errors()]) from exc
    catalogue = _Checker(directory, shown, document).build()
    return merge_districts(catalogue, document.districts, load_catalogue) if document.districts else catalogue


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _entry_label(raw: dict[str, Any], loc: tuple[int | str, ...]) -> tuple[str, tuple[int | str, ...]]:
    """Turns a pydantic location into 'data_classes[3] (301001001/000001)' and the remaining field path."""
    if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int):
        section, index = loc[0], loc[1]
        label = f"{section}[{index}]"
        items = raw.get(section)
        if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
            code = items[index].get("code") or items[index].get("data_class")
            if code:
                label += f" ({code})"
        rest = loc[2:]
        if len(rest) >= 2 and rest[0] == "systems" and isinstance(rest[1], int):
            label += f".systems[{rest[1]}]"
            rest = rest[2:]
        return label, rest
    return "(top level)", loc


def _problem_from_pydantic(shown: str, raw: dict[str, Any], err: Any) -> Problem:
    entry, rest = _entry_label(raw, tuple(err["loc"]))
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown key (not part of the catalogue format)"
    return Problem(shown, entry, ".".join(str(p) for p in rest), message)


class _Checker:
    """Cross-reference checks pydantic cannot express on a single entry."""

    def __init__(self, directory: Path, shown: str, document: CatalogueDocument) -> None:
        self.directory = directory
        self.shown = shown
        self.doc = document
        self.problems: list[Problem] = []
        self.class_codes = {c.code for c in document.data_classes}

    def _add(self, entry: str, field: str, message: str) -> None:
        self.problems.append(Problem(self.shown, entry, field, message))

    def build(self) -> Catalogue:
        department_of_system = self._check_departments()
        schemas = self._check_classes(department_of_system)
        subscribers = self._check_subscriptions(department_of_system)
        if self.problems:
            raise CatalogueError(self.problems)
        return Catalogue(
            source=self.directory,
            departments={d.code: d for d in self.doc.departments},
            systems={s.code: s for d in self.doc.departments for s in d.systems},
            department_of_system=department_of_system,
            data_classes={c.code: c for c in self.doc.data_classes},
            schemas=schemas,
            subscriptions=self.doc.subscriptions,
            _subscribers=subscribers,
        )

    def _check_departments(self) -> dict[str, str]:
        seen: set[str] = set()
        department_of_system: dict[str, str] = {}
        for i, dept in enumerate(self.doc.departments):
            entry = f"departments[{i}] ({dept.code})"
            if dept.code in seen:
                self._add(entry, "code", f"duplicate department code {dept.code!r}")
            seen.add(dept.code)
            for j, system in enumerate(dept.systems):
                if system.code in department_of_system:
                    self._add(
                        f"{entry}.systems[{j}] ({system.code})",
                        "code",
                        f"duplicate system code {system.code!r} (also in {department_of_system[system.code]})",
                    )
                    continue
                department_of_system[system.code] = dept.code
        return department_of_system

    def _check_classes(self, department_of_system: dict[str, str]) -> dict[str, AvroSchema]:
        departments = {d.code for d in self.doc.departments}
        schemas: dict[str, AvroSchema] = {}
        schema_users: dict[str, str] = {}
        seen: set[str] = set()
        for i, data_class in enumerate(self.doc.data_classes):
            entry = f"data_classes[{i}] ({data_class.code})"
            if data_class.code in seen:
                self._add(entry, "code", f"duplicate data class code {data_class.code!r}")
            seen.add(data_class.code)
            if data_class.provider not in departments:
                self._add(entry, "provider", f"unknown department {data_class.provider!r}")
            owner = department_of_system.get(data_class.system)
            if owner is None:
                self._add(entry, "system", f"unknown system {data_class.system!r}")
            elif owner != data_class.provider:
                self._add(
                    entry,
                    "system",
                    f"system {data_class.system!r} belongs to {owner}, not to the provider {data_class.provider}",
                )
            if data_class.schema_path in schema_users:
                self._add(
                    entry,
                    "schema",
                    f"schema file {data_class.schema_path!r} is already used by {schema_users[data_class.schema_path]}",
                )
            schema_users.setdefault(data_class.schema_path, data_class.code)
            schema = self._load_schema(entry, data_class)
            if schema is not None:
                self._check_fields(entry, data_class, schema)
                schemas.setdefault(data_class.code, schema)
        return schemas

    def _load_schema(self, entry: str, data_class: DataClass) -> AvroSchema | None:
        path = self.directory / data_class.schema_path
        try:
            return AvroSchema.parse(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self._add(entry, "schema", f"schema file {_display(path)} does not exist")
        except UnicodeDecodeError as exc:
            self._add(entry, "schema", f"schema {_display(path)} is not UTF-8 text (save it as UTF-8): {exc}")
        except OSError as exc:
            self._add(entry, "schema", f"schema file {_display(path)} cannot be read: {exc}")
        except SchemaParseError as exc:
            self._add(entry, "schema", f"schema {_display(path)} does not parse: {exc}")
        return None

    def _check_fields(self, entry: str, data_class: DataClass, schema: AvroSchema) -> None:
        key_type = schema.field_types.get(data_class.key_field)
        if key_type is None:
            self._add(entry, "key_field", f"{data_class.key_field!r} is not a field of the schema")
        elif key_type not in _STRING_TYPES:
            self._add(entry, "key_field", f"{data_class.key_field!r} must be a string field")
        for name in data_class.sensitive_fields:
            if name not in schema.field_types:
                self._add(entry, "sensitive_fields", f"{name!r} is not a field of the schema")
        if data_class.open_type is not OpenType.NOT_OPEN and data_class.key_field in data_class.sensitive_fields:
            # The record key carries key_field's value; an open class's key would show it to the public.
            self._add(
                entry,
                "key_field",
                f"{data_class.key_field!r} is sensitive, so it cannot be the key of a class opened to the public",
            )
        self._check_quality(entry, data_class, schema)

    def _check_quality(self, entry: str, data_class: DataClass, schema: AvroSchema) -> None:
        if data_class.quality is None:
            return
        codes = self.class_codes
        for i, rule in enumerate(data_class.quality.rules):
            where = f"quality.rules[{i}] ({rule.rule_id})"
            avro_type = schema.field_types.get(rule.field)
            if avro_type is None:
                self._add(entry, where, f"field {rule.field!r} is not a field of the schema")
            elif not _type_fits(rule.kind, avro_type):
                wanted = _RULE_TYPES[rule.kind]
                self._add(entry, where, f"{a_rule(rule.kind)} rule needs a {wanted} field; {rule.field!r} is not one")
            if rule.kind is RuleKind.REFERENCE and rule.data_class not in codes:
                self._add(entry, where, f"the reference names unknown data class {rule.data_class!r}")

    def _check_subscriptions(self, department_of_system: dict[str, str]) -> dict[str, tuple[Subscription, ...]]:
        classes = {c.code: c for c in self.doc.data_classes}
        by_class: dict[str, list[Subscription]] = defaultdict(list)
        seen: set[tuple[str, str]] = set()
        for i, sub in enumerate(self.doc.subscriptions):
            entry = f"subscriptions[{i}] ({sub.system} -> {sub.data_class})"
            owner = department_of_system.get(sub.system)
            data_class = classes.get(sub.data_class)
            if owner is None:
                self._add(entry, "system", f"unknown system {sub.system!r}")
            if data_class is None:
                self._add(entry, "data_class", f"unknown data class {sub.data_class!r}")
            if owner is not None and data_class is not None and owner == data_class.provider:
                self._add(
                    entry,
                    "system",
                    f"{sub.system} belongs to the provider {owner}; a department does not subscribe to its own data",
                )
            if (sub.system, sub.data_class) in seen:
                self._add(entry, "", "duplicate subscription")
            seen.add((sub.system, sub.data_class))
            by_class[sub.data_class].append(sub)
        return {code: tuple(subs) for code, subs in by_class.items()}
