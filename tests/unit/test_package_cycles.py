"""The service packages under services/ import one another one way only: no package cycle.

The layout is one package per service plus a small shared core; a cycle (as ``sharebus_access`` importing
``sharebus_federation.plan`` while the federation imports the access package to provision its principal)
makes neither package usable, testable or compiled without the other. The graph is read from the
source with ``ast``, every absolute ``import``/``from`` of a ``sharebus_*`` package anywhere in a module
(inside functions and ``TYPE_CHECKING`` blocks too), so a cycle cannot hide in a late import.
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"


def _packages() -> list[Path]:
    return sorted(p for p in SERVICES.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def _imported_roots(module: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"), str(module))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def package_graph() -> dict[str, set[str]]:
    """Each service package -> the other service packages its modules import."""
    names = {p.name for p in _packages()}
    graph: dict[str, set[str]] = {}
    for package in _packages():
        imported = set[str]().union(*(_imported_roots(m) for m in package.rglob("*.py")))
        graph[package.name] = (imported & names) - {package.name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path per cycle found by depth-first search, each starting and ending at the same package."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for child in sorted(graph.get(node, set())):
            visit(child, [*path, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    return found


def test_the_cycle_finder_sees_a_cycle_and_a_clean_graph() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_is_read_from_the_real_packages() -> None:
    graph = package_graph()
    # Known edges, so that an empty or misread graph cannot pass the test below.
    assert "sharebus_access" in graph["sharebus_federation"]
    assert "sharebus_core" in graph["sharebus_access"]
    assert graph["sharebus_core"] == set()


def test_no_service_package_imports_one_that_imports_it_back() -> None:
    assert cycles(package_graph()) == []


def test_the_access_package_does_not_import_the_federation() -> None:
    # The one cycle there was: the reconciler takes MirrorMaker 2's rights from sharebus_access.mirror_plan.
    assert "sharebus_federation" not in package_graph()["sharebus_access"]
