"""mhr2_ros.io and mhr2_ros.body re-export lazily (mhr2_ros/lazy.py): every name the repository
imports from them resolves, and the packages still list their own names."""

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mhr2_ros.io", "mhr2_ros.body")


def _imported_names(package: str):
    """(file, name) of every `from <package> import name` in the repository's Python files."""
    for path in sorted(p for d in ("mhr2_ros", "test", "benchmarks") for p in (ROOT / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == package:
                yield from ((path.name, alias.name) for alias in node.names)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_the_repository_imports_resolves(package):
    module = importlib.import_module(package)
    names = list(_imported_names(package))
    assert names, f"no `from {package} import` found: the scan is broken"
    for where, name in names:
        if name != "*" and not hasattr(module, name) and importlib.util.find_spec(f"{package}.{name}") is None:
            pytest.fail(f"{where}: `from {package} import {name}` fails")


@pytest.mark.parametrize("package", PACKAGES)
def test_dir_lists_the_module_names_and_the_lazy_ones(package):
    module = importlib.import_module(package)
    listed = dir(module)
    assert {"__doc__", "__name__", "__all__"} <= set(listed)  # the lazy __dir__ used to drop them
    assert set(module.__all__) <= set(listed)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nothing_here'"):
        module.nothing_here
