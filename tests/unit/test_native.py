"""The router's per-record modules run compiled, and the freshness check notices a stale or orphaned one."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from sharebus_core import native


def test_every_listed_module_is_imported_from_its_compiled_extension() -> None:
    for name in native.MODULES:
        module = importlib.import_module(name.removesuffix(".py").replace("/", "."))
        assert module.__file__ == str(native.extension(native.SERVICES / name)), name
    assert native.check() is None
    assert native.in_checkout()


def _tree(root: Path) -> None:
    for name in native.MODULES:
        source = root / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("")
        native.extension(source).write_bytes(b"")


def test_a_source_newer_than_its_extension_is_stale(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert native.check(tmp_path) is None
    edited = tmp_path / native.MODULES[0]
    later = native.extension(edited).stat().st_mtime + 5
    os.utime(edited, (later, later))
    assert native.stale(tmp_path) == [native.MODULES[0]]
    assert f"older than their source: {native.MODULES[0]}" in (native.check(tmp_path) or "")


def test_a_missing_extension_is_stale_and_an_unlisted_one_is_an_orphan(tmp_path: Path) -> None:
    _tree(tmp_path)
    native.extension(tmp_path / native.MODULES[-1]).unlink()
    unlisted = native.extension(tmp_path / "sharebus_router" / "dead_letters.py")
    unlisted.write_bytes(b"")
    assert native.stale(tmp_path) == [native.MODULES[-1]]
    assert native.orphans(tmp_path) == [unlisted]
    assert "no longer listed: sharebus_router/dead_letters" in (native.check(tmp_path) or "")


def test_only_the_projects_own_extensions_can_be_orphans(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "numpy").mkdir()
    native.extension(tmp_path / "numpy" / "core.py").write_bytes(b"")
    assert native.orphans(tmp_path) == []
    assert not native.in_checkout(tmp_path)  # installed (a wheel): no setup.py beside the packages
