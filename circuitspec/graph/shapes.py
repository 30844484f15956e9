"""Model shapes known without loading weights, so ``validate`` can check ranges in milliseconds.

:func:`shape_for` picks, in order: an explicit ``model.shape``; a bundled model's shape
(``circuitspec.zoo.BUNDLED``); a known TransformerLens model name; a Hugging Face directory's
``config.json`` or a GGUF's header (``path``, ``gguf``, ``package``, resolved by
:func:`circuitspec.graph.model_sources.resolve_source`). Otherwise it asks for ``model.shape``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError, ModelNotAvailable
from circuitspec.spec.schema import ModelShape, ModelSpec

from .gguf_header import gguf_shape
from .model_sources import resolve_source

__all__ = ["KNOWN_SHAPES", "package_model_dir", "shape_for", "shape_from_config"]


def _shape(
    n_layers: int, n_heads: int, d_model: int, d_mlp: int | None, d_vocab: int, n_ctx: int
) -> ModelShape:
    return ModelShape(
        n_layers=n_layers, n_heads=n_heads, d_model=d_model, d_mlp=d_mlp, d_vocab=d_vocab, n_ctx=n_ctx
    )


_GPT2_VOCAB, _PYTHIA_VOCAB, _NEEL_VOCAB = 50257, 50304, 48262

KNOWN_SHAPES: dict[str, ModelShape] = {
    "gpt2": _shape(12, 12, 768, 3072, _GPT2_VOCAB, 1024),
    "gpt2-medium": _shape(24, 16, 1024, 4096, _GPT2_VOCAB, 1024),
    "gpt2-large": _shape(36, 20, 1280, 5120, _GPT2_VOCAB, 1024),
    "gpt2-xl": _shape(48, 25, 1600, 6400, _GPT2_VOCAB, 1024),
    "distilgpt2": _shape(6, 12, 768, 3072, _GPT2_VOCAB, 1024),
    "pythia-14m": _shape(6, 4, 128, 512, _PYTHIA_VOCAB, 2048),
    "pythia-31m": _shape(6, 8, 256, 1024, _PYTHIA_VOCAB, 2048),
    "pythia-70m": _shape(6, 8, 512, 2048, _PYTHIA_VOCAB, 2048),
    "pythia-160m": _shape(12, 12, 768, 3072, _PYTHIA_VOCAB, 2048),
    "pythia-410m": _shape(24, 16, 1024, 4096, _PYTHIA_VOCAB, 2048),
    "pythia-1b": _shape(16, 8, 2048, 8192, _PYTHIA_VOCAB, 2048),
    # Neel Nanda's toy models (TransformerLens names)
    "attn-only-1l": _shape(1, 8, 512, None, _NEEL_VOCAB, 1024),
    "attn-only-2l": _shape(2, 8, 512, None, _NEEL_VOCAB, 1024),
    "attn-only-3l": _shape(3, 8, 512, None, _NEEL_VOCAB, 1024),
    "attn-only-4l": _shape(4, 8, 512, None, _NEEL_VOCAB, 1024),
    "gelu-1l": _shape(1, 8, 512, 2048, _NEEL_VOCAB, 1024),
    "gelu-2l": _shape(2, 8, 512, 2048, _NEEL_VOCAB, 1024),
    "gelu-3l": _shape(3, 8, 512, 2048, _NEEL_VOCAB, 1024),
    "gelu-4l": _shape(4, 8, 512, 2048, _NEEL_VOCAB, 1024),
}

_ALIASES = {
    "gpt2-small": "gpt2",
    "openai-community/gpt2": "gpt2",
    "openai-community/gpt2-medium": "gpt2-medium",
    "openai-community/gpt2-large": "gpt2-large",
    "openai-community/gpt2-xl": "gpt2-xl",
    "distilbert/distilgpt2": "distilgpt2",
    "distillgpt2": "distilgpt2",
    "attn-only-1l-new": "attn-only-1l",
    "attn-only-2l-new": "attn-only-2l",
}
for _size in ("14m", "31m", "70m", "160m", "410m", "1b"):
    _ALIASES[f"EleutherAI/pythia-{_size}"] = f"pythia-{_size}"
    _ALIASES[f"pythia-{_size}-deduped"] = f"pythia-{_size}"
    _ALIASES[f"EleutherAI/pythia-{_size}-deduped"] = f"pythia-{_size}"
for _n in range(1, 5):
    _ALIASES[f"NeelNanda/Attn_Only_{_n}L512W_C4_Code"] = f"attn-only-{_n}l"
    _ALIASES[f"NeelNanda/GELU_{_n}L512W_C4_Code"] = f"gelu-{_n}l"

_ENCODER_TYPES = {"bert", "roberta", "distilbert", "mpnet", "electra", "albert", "xlm-roberta", "deberta"}


def _first(config: dict[str, Any], *keys: str) -> Any:
    return next((config[k] for k in keys if config.get(k) is not None), None)


def shape_from_config(config: dict[str, Any]) -> ModelShape:
    """A shape from a Hugging Face ``config.json`` (GPT-2, GPT-NeoX, Llama and BERT key names), with
    grouped-query attention's ``n_kv_heads`` when the model shares key/value heads."""
    n_layers = _first(config, "n_layer", "num_hidden_layers", "n_layers", "num_layers")
    n_heads = _first(config, "n_head", "num_attention_heads", "n_heads")
    d_model = _first(config, "n_embd", "hidden_size", "d_model", "dim")
    if not all(isinstance(v, int) for v in (n_layers, n_heads, d_model)):
        raise ValueError("config.json lacks n_layer / n_head / n_embd (or their Hugging Face aliases)")
    d_mlp = _first(config, "n_inner", "intermediate_size", "d_mlp", "hidden_dim")
    if d_mlp is None and config.get("model_type") == "gpt2":
        d_mlp = 4 * d_model  # GPT-2 leaves n_inner null for the default 4 × n_embd
    model_type = str(config.get("model_type", "")).lower()
    architectures = " ".join(config.get("architectures") or [])
    causal = not (
        model_type in _ENCODER_TYPES or "MaskedLM" in architectures or config.get("is_decoder") is False
    )
    return ModelShape(
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_mlp=d_mlp if isinstance(d_mlp, int) else None,
        d_vocab=_first(config, "vocab_size", "d_vocab"),
        n_ctx=_first(config, "n_positions", "max_position_embeddings", "n_ctx"),
        causal=causal,
        n_kv_heads=_kv_heads(config, n_heads),
    )


def _kv_heads(config: dict[str, Any], n_heads: int) -> int | None:
    """Grouped-query attention's key/value heads (Llama / Qwen2 / Mistral / Gemma / Falcon key names);
    None when every query head has its own."""
    n_kv = _first(config, "num_key_value_heads", "n_key_value_heads", "num_kv_heads", "n_head_kv")
    if n_kv is None and config.get("multi_query"):
        n_kv = 1
    return n_kv if isinstance(n_kv, int) and 0 < n_kv < n_heads else None


def _bundled() -> dict[str, Any]:
    """``circuitspec.zoo.BUNDLED`` after the catalog (torch-free) has registered every model."""
    from circuitspec.zoo.catalog import BUNDLED

    return BUNDLED


def package_model_dir(package: str) -> Path:
    """The model directory an installed package ships (``<pkg>/model/config.json``), not importing it."""
    source = resolve_source(ModelSpec(package=package))
    if source.kind != "path":
        raise ModelNotAvailable(
            f"model package '{package}' ships a {source.kind} file, not a model directory"
        )
    return Path(source.location)


def shape_for(model_spec: ModelSpec, base_dir: str | Path | None = None) -> ModelShape:
    """The shape to validate a hypothesis against; raises a one-line :class:`CircuitSpecError`."""
    if model_spec.shape is not None:
        return model_spec.shape
    if model_spec.bundled:
        bundled = _bundled()
        if model_spec.bundled not in bundled:
            raise CircuitSpecError(
                f"unknown bundled model '{model_spec.bundled}' "
                f"(valid: {', '.join(sorted(bundled)) or 'none'})"
            )
        return bundled[model_spec.bundled].shape
    if model_spec.name:
        key = _ALIASES.get(model_spec.name, model_spec.name)
        if key in KNOWN_SHAPES:
            return KNOWN_SHAPES[key]
        raise CircuitSpecError(
            f"the shape of model '{model_spec.name}' is not known without loading it; add "
            "'model.shape: {n_layers: .., n_heads: .., d_model: .., d_mlp: ..}' "
            f"(known: {', '.join(KNOWN_SHAPES)})"
        )
    source = resolve_source(model_spec, base_dir)
    directory = Path(source.location)
    if source.kind == "gguf":
        try:
            return gguf_shape(directory)
        except (OSError, ValueError, struct.error) as exc:
            raise CircuitSpecError(
                f"cannot read a model shape from the GGUF header of '{directory}' ({exc})"
            ) from None
    config_path = directory / "config.json" if directory.is_dir() else directory
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("config.json is not a JSON object")
        return shape_from_config(config)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CircuitSpecError(
            f"cannot read a model shape from '{config_path}' ({exc}); add 'model.shape: "
            "{n_layers: .., n_heads: .., d_model: .., d_mlp: ..}'"
        ) from None
