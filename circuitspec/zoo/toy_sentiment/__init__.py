"""The bundled ``toy_sentiment`` model: a small transformer trained on contrastive sentiment.

Registers itself in :data:`circuitspec.zoo.BUNDLED` at import, reading its shape from the
bundled ``config.json`` (no torch). :func:`load` builds the HookedTransformer and reads a
checkpoint's weights lazily. See ``docs/toy_sentiment.md`` and :mod:`.task` for the task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.schema import ModelShape
from circuitspec.zoo import BundledModel, register

if TYPE_CHECKING:  # pragma: no cover
    from circuitspec.tokenizer import TextTokenizer

__all__ = ["CONFIG_PATH", "PACKAGE_DIR", "load", "load_checkpoint_into", "read_config", "resolve_checkpoint"]

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_PATH = PACKAGE_DIR / "config.json"
TOKENIZER_PATH = PACKAGE_DIR / "tokenizer.json"


def read_config() -> dict[str, Any]:
    """The bundled ``config.json`` (model kwargs, special tokens, checkpoints, metrics)."""
    return json.loads(CONFIG_PATH.read_text())


def resolve_checkpoint(checkpoint: int | str | None, config: dict[str, Any] | None = None) -> str:
    """Checkpoint name for None/"final" (the default), a step int, "123" or "step_00123".

    Raises a one-line :class:`CircuitSpecError` listing the available checkpoints otherwise.
    """
    config = config or read_config()
    names = [c["name"] for c in config["checkpoints"]]
    if checkpoint is None or checkpoint == "final":
        return config["default_checkpoint"]
    step: int | None = None
    if isinstance(checkpoint, int) and not isinstance(checkpoint, bool):
        step = checkpoint
    elif isinstance(checkpoint, str):
        digits = checkpoint.removeprefix("step_")
        if digits.isdigit():
            step = int(digits)
    for entry in config["checkpoints"]:
        if step is not None and entry["step"] == step:
            return entry["name"]
    raise CircuitSpecError(
        f"toy_sentiment has no checkpoint {checkpoint!r} "
        f"(valid: final, {', '.join(names)}, or their step numbers)"
    )


def load_checkpoint_into(model, path: str | Path):
    """Copy a checkpoint's parameters into ``model`` (every parameter must be present); returns it."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    missing = {name for name, _ in model.named_parameters()} - set(state)
    if missing:
        raise CircuitSpecError(f"checkpoint {path} lacks parameters: {', '.join(sorted(missing))}")
    model.load_state_dict(state, strict=False)
    return model


def load(checkpoint: int | str | None = None) -> tuple[Any, TextTokenizer]:
    """(HookedTransformer on CPU in eval mode, TextTokenizer) for a bundled checkpoint."""
    import warnings

    config = read_config()
    name = resolve_checkpoint(checkpoint, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        model = HookedTransformer(HookedTransformerConfig(**config["model"], device="cpu"))
    load_checkpoint_into(model, PACKAGE_DIR / "checkpoints" / f"{name}.safetensors")
    model.eval()
    return model, load_tokenizer(config)


def load_tokenizer(config: dict[str, Any] | None = None) -> TextTokenizer:
    """The bundled word-level tokenizer (``tokenizers`` only, no torch)."""
    from circuitspec.tokenizer import TextTokenizer

    specials = (config or read_config())["special_tokens"]
    return TextTokenizer.from_file(TOKENIZER_PATH, bos=specials["bos"], pad=specials["pad"])


def _register() -> None:
    if not CONFIG_PATH.exists():  # only while train.py bootstraps the bundled files
        return
    config = read_config()
    model_kwargs = config["model"]
    register(
        BundledModel(
            name="toy_sentiment",
            shape=ModelShape(
                n_layers=model_kwargs["n_layers"],
                n_heads=model_kwargs["n_heads"],
                d_model=model_kwargs["d_model"],
                d_mlp=model_kwargs["d_mlp"],
                d_vocab=model_kwargs["d_vocab"],
                n_ctx=model_kwargs["n_ctx"],
            ),
            load=load,
            checkpoints=tuple(c["name"] for c in config["checkpoints"]),
            description=config["description"],
            check_checkpoint=resolve_checkpoint,
            tokenizer=load_tokenizer,
        )
    )


_register()
