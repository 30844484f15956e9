"""Imports every bundled-model module so each registers itself in ``circuitspec.zoo.BUNDLED``.

Registration must not import torch: modules define shapes at import and load weights lazily.
"""

from __future__ import annotations

import importlib

from . import BUNDLED

_MODULES = ("circuitspec.zoo.planted", "circuitspec.zoo.toy_sentiment")

for _name in _MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a module still being written; remove once both exist
        if exc.name != _name:
            raise

__all__ = ["BUNDLED"]
