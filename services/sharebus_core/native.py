"""The modules of the router's per-record path that are compiled to C extensions with mypyc.

They are ordinary, strictly typed Python: mypyc turns each into an extension module that Python imports in
place of its source (an extension is found before a ``.py`` of the same name). The record's walk, for one,
costs about a third of its pure-Python time compiled (docs/router-data-path.md, "Compiled modules").
``make setup`` builds them (``setup.py``, from scripts/bootstrap.sh) when a source is newer than its extension,
and removes the extension of a module taken off the list. ``check()`` says whether that is so: the tests stop
when it is not, since a stale extension would run code that is not the source's.

This module imports nothing of the project's, so that ``setup.py`` can read the list before anything is
installed.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

# Source files under services/, compiled together (calls between them stay native).
MODULES = (
    "sharebus_core/wire.py",
    "sharebus_core/audit_fact.py",
    "sharebus_rules/walk.py",
    "sharebus_rules/splice.py",
    "sharebus_router/bus_headers.py",
    "sharebus_router/message_size.py",
    "sharebus_router/audit_facts.py",
    "sharebus_router/projector.py",
    "sharebus_router/decoding.py",
    "sharebus_router/reader_schemas.py",
    "sharebus_router/delivery.py",
    "sharebus_router/handler.py",
)
# The name of the shared library the compiled modules load their code from.
GROUP = "sharebus_native"
SERVICES = Path(__file__).resolve().parent.parent
_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def extension(source: Path) -> Path:
    """Where the extension built from ``source`` is (this interpreter's suffix)."""
    return source.with_name(source.stem + _SUFFIX)


def stale(root: Path = SERVICES) -> list[str]:
    """The modules whose extension is missing or older than their source (``root``: the services folder)."""
    late = []
    for name in MODULES:
        source, built = root / name, extension(root / name)
        if not built.exists() or built.stat().st_mtime < source.stat().st_mtime:
            late.append(name)
    return late


def orphans(root: Path = SERVICES) -> list[Path]:
    """Extensions of modules no longer listed: each would still shadow its source, so the build removes them."""
    listed = {extension(root / name) for name in MODULES} | {root / f"{GROUP}__mypyc{_SUFFIX}"}
    found = [*root.glob(f"sharebus_*/*{_SUFFIX}"), *root.glob(f"{GROUP}__mypyc*")]
    return sorted(path for path in found if path not in listed)


def in_checkout(root: Path = SERVICES) -> bool:
    """Whether these modules run from the project's checkout (built in place), not from an installed wheel,
    whose files' times say nothing of which was built from which."""
    return (root.parent / "setup.py").is_file() and (root.parent / "pyproject.toml").is_file()


def check(root: Path = SERVICES) -> str | None:
    """None when every module's extension is current and no other is left; else what is wrong and how to mend it."""
    late, left = stale(root), orphans(root)
    if not late and not left:
        return None
    wrong = [f"missing or older than their source: {', '.join(late)}"] if late else []
    wrong += [f"no longer listed: {', '.join(str(path.relative_to(root)) for path in left)}"] if left else []
    return f"compiled modules are not current ({'; '.join(wrong)}): run `make setup`"
