"""Whether a checkpoint exists for a hypothesis' model, asked before any model loads (torch-free).

``validate`` checks the YAML's ``model.checkpoint`` and ``checkpoints:`` here, ``verify`` its
``--checkpoint`` and ``regress`` every checkpoint it was given, all before the first one runs.
"""

from __future__ import annotations

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.names import checkpoint_name
from circuitspec.spec.schema import ModelSpec

__all__ = ["check_checkpoint"]


def check_checkpoint(model_spec: ModelSpec, checkpoint: object) -> int | str | None:
    """``checkpoint`` as a step (int) or name, if ``model_spec``'s model has it; a one-line error if not.

    Bundled models know their checkpoints; a TransformerLens name takes any well-formed name (its
    loader says which exist); a directory, GGUF file or package holds one set of weights, so it takes none.
    """
    if checkpoint is None:
        return None
    try:
        name = checkpoint_name(checkpoint)
    except ValueError as exc:
        raise CircuitSpecError(str(exc)) from None
    if model_spec.bundled:
        from circuitspec.zoo.catalog import BUNDLED

        model = BUNDLED.get(model_spec.bundled)
        if model is not None and model.check_checkpoint is not None:
            model.check_checkpoint(name)
        return name
    if model_spec.name:  # which steps a hub model has is known only when it loads
        return name
    raise CircuitSpecError(
        f"model '{model_spec.source}' has one set of weights, so it has no checkpoint '{name}' "
        "(checkpoints apply to bundled models and TransformerLens names with training checkpoints)"
    )
