"""Every error sharebus defines descends from the one root, so callers can catch the project's errors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

from sharebus_core.errors import SharebusError

SERVICES = Path(__file__).resolve().parents[2] / "services"


def project_modules() -> list[str]:
    names = []
    for package in sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").exists()):
        names.append(package)
        for info in pkgutil.walk_packages([str(SERVICES / package)], prefix=f"{package}."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


def test_every_project_exception_descends_from_the_root() -> None:
    defined: list[type[BaseException]] = []
    for name in project_modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                defined.append(value)
    assert len(defined) > 30  # the walk found the project's errors, not nothing
    strays = sorted(f"{e.__module__}.{e.__qualname__}" for e in defined if not issubclass(e, SharebusError))
    assert strays == []
