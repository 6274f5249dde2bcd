"""Provisioning registers exactly the projection schemas the router registers when it builds its routes
with no grant: the same subjects and the same schemas, so the router's first start registers none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
from sharebus_demo.city_catalogue import generate
from sharebus_provision.schemas import catalogue_projection_schemas
from tests.unit.router_harness import TOPICS, Harness


def _generated(directory: Path) -> Catalogue:
    generate("small", directory, partitions=1)
    return load_catalogue(directory)


@pytest.mark.parametrize(
    ("source", "public"), [("demo", False), ("demo", True), ("generated", False), ("generated", True)]
)
def test_provisioning_registers_what_the_router_would(source: str, public: bool, tmp_path: Path) -> None:
    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR) if source == "demo" else _generated(tmp_path)
    router = Harness(catalogue, public=public).schemas.registered
    ahead = catalogue_projection_schemas(catalogue, TOPICS, public)
    assert router  # sensitive fields make projections
    assert {subject: json.loads(text) for subject, text in ahead.items()} == {
        subject: json.loads(text) for subject, text in router.items()
    }
