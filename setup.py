"""Builds the router's hot modules as C extensions with mypyc; the package's metadata is in pyproject.toml.

``pip install`` builds them with the rest of the package; ``python setup.py build_ext --inplace`` rebuilds them
next to their sources (scripts/bootstrap.sh does, when one is stale). The list: sharebus_core/native.py.
"""

import importlib.util
from pathlib import Path

from mypyc.build import mypycify
from setuptools import setup

_spec = importlib.util.spec_from_file_location("native", Path(__file__).parent / "services/sharebus_core/native.py")
assert _spec is not None and _spec.loader is not None
native = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native)

setup(
    ext_modules=mypycify(
        [f"services/{name}" for name in native.MODULES],
        opt_level="3",
        group_name=native.GROUP,
        target_dir="build/mypyc",
    )
)
