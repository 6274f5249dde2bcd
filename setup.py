"""Builds the router's per-record modules as C extensions with mypyc; the package's metadata is in pyproject.toml.

Only when asked (``SHAREBUS_COMPILE=1``): mypyc type-checks what it compiles against the modules' dependencies,
so these must be installed first, and an isolated build (plain ``pip install``) has none of them.
scripts/bootstrap.sh compiles in place after installing the packages (``build_ext --inplace``), and the
Dockerfile's wheel stage does the same before it builds the wheel. The list: sharebus_core/native.py.
"""

import importlib.util
import os
from pathlib import Path

from setuptools import setup

ext_modules = []
if os.environ.get("SHAREBUS_COMPILE") == "1":
    from mypyc.build import mypycify

    spec = importlib.util.spec_from_file_location("native", Path(__file__).parent / "services/sharebus_core/native.py")
    assert spec is not None and spec.loader is not None
    native = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(native)
    ext_modules = mypycify(
        [f"services/{name}" for name in native.MODULES],
        opt_level="3",
        group_name=native.GROUP,
        target_dir="build/mypyc",
    )

setup(ext_modules=ext_modules)
