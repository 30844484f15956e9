"""A package ``__getattr__`` that imports the module defining a name on first use (PEP 562).

``circuitspec.stats`` and ``circuitspec.reports`` export names from heavy modules (scipy.stats,
matplotlib); importing a light module of either package (``circuitspec diff`` reads reports) must not
import those.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """``package``'s module ``__getattr__``: ``exports`` maps each name to the submodule defining it;
    the value is imported on first use and kept on the package, so later lookups are plain."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
