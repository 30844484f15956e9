"""Imports every bundled-model module so each registers itself in ``circuitspec.zoo.BUNDLED``.

Registration must not import torch: modules define shapes at import and load weights lazily.
"""

from __future__ import annotations

# imported for their registration
import circuitspec.zoo.planted
import circuitspec.zoo.toy_sentiment  # noqa: F401

from . import BUNDLED

__all__ = ["BUNDLED"]
