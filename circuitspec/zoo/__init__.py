"""Bundled models: planted circuits with constructed weights, and the trained toy sentiment model.

``BUNDLED`` maps a bundled name (``model: {bundled: NAME}`` in a hypothesis) to a
:class:`BundledModel`: its shape (known without torch, for ``validate``) and a loader that
builds or reads the weights (imports torch lazily).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from circuitspec.spec.schema import ModelShape

if TYPE_CHECKING:  # pragma: no cover
    from circuitspec.tokenizer import TextTokenizer

__all__ = ["BUNDLED", "BundledModel", "register"]


@dataclass(frozen=True)
class BundledModel:
    name: str
    shape: ModelShape
    # load(checkpoint) -> (HookedTransformer, TextTokenizer); checkpoint None means the default
    load: Callable[[int | str | None], tuple[Any, TextTokenizer]]
    checkpoints: tuple[str, ...] = ()
    description: str = ""
    # check_checkpoint(checkpoint) raises a one-line CircuitSpecError for a checkpoint it lacks (no torch)
    check_checkpoint: Callable[[int | str | None], Any] | None = None
    # tokenizer() -> TextTokenizer without the weights (no torch), so `validate` can find unknown words
    tokenizer: Callable[[], TextTokenizer] | None = None


BUNDLED: dict[str, BundledModel] = {}


def register(model: BundledModel) -> BundledModel:
    BUNDLED[model.name] = model
    return model
