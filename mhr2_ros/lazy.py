"""Lazy re-exports for package __init__ files (PEP 562 module __getattr__).

`from mhr2_ros.io import open_source` then imports only io/sources.py, so importing a
package does not load torch, OpenCV or anny for names that do not need them.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Dict, Tuple


def lazy_exports(package: str, exports: Dict[str, str]) -> Tuple[Callable, Callable]:
    """(__getattr__, __dir__) for `package` re-exporting each name of `exports` from its module
    (a submodule name like "atomic", or a full dotted path)."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        path = module if "." in module else f"{package}.{module}"
        return getattr(importlib.import_module(path), name)

    def __dir__():  # the module's own names (__doc__, loaded submodules) and the lazy ones
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
