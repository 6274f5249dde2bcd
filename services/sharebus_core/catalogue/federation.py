"""A city catalogue with its districts' federated classes (docs/federation.md). Pure.

The city catalogue names each district bus (``districts:``) and where its catalogue is. Each
district's departments join the city catalogue (their systems can then be granted city classes, which
flow down), marked as that district's, and each class the district marks ``federate: city`` joins as
the district's class: same code, provider, system and schema. Everything else of the district stays
on the district's bus.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sharebus_core.catalogue.catalogue import Catalogue
from sharebus_core.catalogue.errors import CatalogueError, Problem
from sharebus_core.catalogue.models import DistrictBus


def merge_districts(
    city: Catalogue, districts: tuple[DistrictBus, ...], load: Callable[[Path], Catalogue]
) -> Catalogue:
    """``load`` is the catalogue loader (passed in: the loader calls this module)."""
    departments = dict(city.departments)
    systems = dict(city.systems)
    department_of_system = dict(city.department_of_system)
    classes = dict(city.data_classes)
    schemas = dict(city.schemas)
    district_of = dict(city.district_of_department)
    problems: list[Problem] = []
    for district in districts:
        entry = f"districts ({district.code})"
        directory = (city.source / district.catalogue).resolve()
        try:
            found = load(directory)
        except CatalogueError as exc:
            problems += [Problem(p.file, f"{entry}: {p.entry}", p.field, p.message) for p in exc.problems]
            continue
        if found.district_of_department:
            problems.append(Problem(str(directory), entry, "districts", "a district catalogue cannot name districts"))
        for code, department in found.departments.items():
            if code in departments:
                problems.append(Problem(str(directory), entry, "departments", f"department {code} is also the city's"))
                continue
            departments[code] = department
            district_of[code] = district.code
            for system in department.systems:
                if system.code in systems:
                    problems.append(
                        Problem(str(directory), entry, "systems", f"system {system.code} is also the city's")
                    )
                    continue
                systems[system.code] = system
                department_of_system[system.code] = code
        for data_class in found.federated_up():
            if data_class.code in classes:
                problems.append(
                    Problem(str(directory), entry, "data_classes", f"class {data_class.code} is also the city's")
                )
                continue
            classes[data_class.code] = data_class
            schemas[data_class.code] = found.schema(data_class.code)
    if problems:
        raise CatalogueError(problems)
    return replace(
        city,
        departments=departments,
        systems=systems,
        department_of_system=department_of_system,
        data_classes=classes,
        schemas=schemas,
        district_of_department=district_of,
    )
