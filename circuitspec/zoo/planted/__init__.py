"""Planted-circuit models: constructed weights whose true circuit is known exactly.

Each submodule defines its shape and vocabulary at import (no torch) and builds weights only
inside ``load``. Importing this package registers every model in ``circuitspec.zoo.BUNDLED``.
See docs/zoo.md for each construction and its true circuit.
"""

from __future__ import annotations

import functools

from circuitspec.zoo import BundledModel, register

from . import induction, label_mover, suppression
from ._build import check_checkpoint

__all__ = ["PLANTED_MODULES"]

PLANTED_MODULES = (induction, label_mover, suppression)

for _module in PLANTED_MODULES:
    register(
        BundledModel(
            name=_module.NAME,
            shape=_module.SHAPE,
            load=_module.load,
            checkpoints=("default",),
            description=(_module.__doc__ or "").strip().splitlines()[0],
            check_checkpoint=functools.partial(check_checkpoint, _module.NAME),
        )
    )
