"""Load the model a hypothesis names into a :class:`LoadedModel` (HookedTransformer + TextTokenizer +
shape + identity): a bundled model, a TransformerLens name (hub cache only), a Hugging Face directory
(``path``; any decoder TransformerLens converts, BERT as a sentence encoder), a GGUF file (``gguf``) or an
installed package shipping either (``package``). :func:`circuitspec.graph.model_sources.resolve_source`
says which; ``loading/`` converts (``hf_convert``) and caches dequantized GGUF weights (``gguf_cache``).

Never hangs on the network: a ``name`` is only loaded when the Hugging Face cache already holds it
(with ``HF_HUB_OFFLINE=1``); otherwise :class:`ModelNotAvailable` says where we looked and how to
point at a local copy. Weights are read with safetensors or ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from circuitspec.errors import CircuitSpecError, ModelNotAvailable
from circuitspec.spec.schema import ModelShape, ModelSpec
from circuitspec.tokenizer import TextTokenizer

__all__ = [
    "LoadedModel",
    "device_identity",
    "hf_cache_dir",
    "load_model",
    "resolve_device",
    "shape_of",
    "weights_sha256",
]

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


@dataclass
class LoadedModel:
    """A model ready to run: ``identity`` records source, checkpoint, weights_sha256, device, dtype."""

    model: Any  # transformer_lens.HookedTransformer
    tokenizer: TextTokenizer
    shape: ModelShape
    identity: dict[str, Any] = field(default_factory=dict)


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available else ``cpu``; anything else as given."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def device_identity(requested: str, device: str) -> dict[str, Any]:
    """The report identity's device: where the model ran, and why when ``auto`` fell back to the CPU."""
    if requested == "auto" and device == "cpu":
        return {"device": device, "device_note": "device auto: no CUDA device found, ran on the CPU"}
    return {"device": device}


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the state dict (sorted names, dtype, shape and raw bytes): same weights, same hash."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def shape_of(cfg: Any) -> ModelShape:
    """The :class:`ModelShape` of a HookedTransformerConfig."""
    return ModelShape(
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        d_model=cfg.d_model,
        d_mlp=cfg.d_mlp if cfg.d_mlp else None,
        d_vocab=cfg.d_vocab,
        n_ctx=cfg.n_ctx,
        causal=getattr(cfg, "attention_dir", "causal") != "bidirectional",
        n_kv_heads=kv if (kv := getattr(cfg, "n_key_value_heads", None)) and kv < cfg.n_heads else None,
    )


def hf_cache_dir() -> Path:
    """Where the Hugging Face hub cache lives (``HF_HUB_CACHE`` / ``HF_HOME`` / ``~/.cache``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Set ``HF_HUB_OFFLINE=1`` for the block (loads come from the cache, never the network),
    then restore whatever was there."""
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def load_model(spec: ModelSpec, base_dir: Path, checkpoint: int | str | None = None) -> LoadedModel:
    """Load ``spec``'s model (``checkpoint`` overrides ``spec.checkpoint``); one-line errors.

    Only loads: the dictionaries ``spec`` declares are spliced in by the caller
    (:func:`circuitspec.features.splice.with_dictionaries`, which the pipeline calls).
    """
    from circuitspec.graph.model_sources import resolve_source

    checkpoint = checkpoint if checkpoint is not None else spec.checkpoint
    device = resolve_device(spec.device)
    dtype = _DTYPES[spec.dtype]
    if spec.uses_nnsight:  # a Hugging Face model through nnsight (engine/backends)
        from .backends.nnsight_loading import load_nnsight

        adapter, tokenizer, shape, identity = load_nnsight(spec, base_dir, device, dtype, checkpoint)
        identity["weights_sha256"] = "remote" if spec.remote else weights_sha256(adapter.hf)
        identity.update(device_identity(spec.device, device), dtype=spec.dtype)
        return LoadedModel(model=adapter, tokenizer=tokenizer, shape=shape, identity=identity)
    source = resolve_source(spec, base_dir)
    extra: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if source.kind == "bundled":
            model, tokenizer = _load_bundled(source.location, checkpoint)
            model = _place(model, device, dtype)
        elif source.kind == "name":
            model, tokenizer = _load_name(source.location, checkpoint, device, dtype, spec.prepend_bos)
        elif source.kind == "gguf":
            model, tokenizer, extra = _load_gguf(Path(source.location), device, dtype, spec.prepend_bos)
        else:
            model, tokenizer = _load_path(
                Path(source.location), device, dtype, spec.prepend_bos, source.label
            )
        model.eval()
    _store_transposed(model)
    identity = {
        "source": source.label,
        "checkpoint": checkpoint,
        "weights_sha256": weights_sha256(model),
        **device_identity(spec.device, device),
        "dtype": spec.dtype,
        "prepend_bos": tokenizer.bos_id is not None,
        **_attention_identity(model.cfg),
        **extra,
    }
    return LoadedModel(model=model, tokenizer=tokenizer, shape=shape_of(model.cfg), identity=identity)


def _attention_identity(cfg: Any) -> dict[str, Any]:
    """Grouped-query attention, when the model has it: how many key/value heads, and that hook_k /
    hook_v hold one (repeated) copy per query head (``ungroup_grouped_query_attention``)."""
    n_kv = getattr(cfg, "n_key_value_heads", None)
    if not n_kv or n_kv == cfg.n_heads:
        return {}
    cfg.ungroup_grouped_query_attention = True
    return {"grouped_query_attention": {"n_key_value_heads": int(n_kv), "ungrouped": True}}


def _store_transposed(model: Any) -> None:
    """Keep the weights TransformerLens multiplies as ``W.T.contiguous()`` stored column-major.

    TransformerLens 3.9's gated MLP and unembedding call ``F.linear(x, W.T.contiguous())`` on every
    forward pass, a full copy of each weight; with the storage transposed that copy is a no-op.
    Values, shapes and :func:`weights_sha256` are unchanged; on SmolLM2-135M (CPU, one thread) a pass
    took 0.62 s instead of 0.96 s with identical logits.
    """
    from transformer_lens.components import GatedMLP, Unembed

    with torch.no_grad():
        for module in model.modules():
            names: tuple[str, ...] = ("W_gate", "W_in", "W_out") if isinstance(module, GatedMLP) else ()
            names = ("W_U",) if isinstance(module, Unembed) else names
            for name in names:
                weight = getattr(module, name, None)
                if isinstance(weight, torch.nn.Parameter) and weight.dim() == 2:
                    weight.data = weight.data.T.contiguous().T


def _place(model: Any, device: str, dtype: torch.dtype) -> Any:
    """Move a HookedTransformer (its ``to`` takes one device *or* dtype) and keep ``cfg`` in step."""
    model = model.to(device, print_details=False)
    if next(model.parameters()).dtype != dtype:
        model = model.to(dtype, print_details=False)
        model.cfg.dtype = dtype
    return model


# ------------------------------------------------------------------------- sources


def _load_bundled(name: str, checkpoint: int | str | None) -> tuple[Any, TextTokenizer]:
    from circuitspec.zoo.catalog import BUNDLED

    if name not in BUNDLED:
        known = ", ".join(sorted(BUNDLED)) or "none registered"
        raise ModelNotAvailable(f"no bundled model '{name}' (valid: {known})")
    # each bundled model resolves its own checkpoint names (a step, "step_00100", "final") and says
    # in one line which exist when asked for another
    return BUNDLED[name].load(checkpoint)


def _checkpoint_kwargs(checkpoint: int | str | None) -> dict[str, Any]:
    """``int``/digits → training step (``checkpoint_value``); ``index:N`` → ``checkpoint_index``."""
    if checkpoint is None:
        return {}
    text = str(checkpoint)
    if text.startswith("index:") and text[6:].isdigit():
        return {"checkpoint_index": int(text[6:])}
    if text.isdigit():
        return {"checkpoint_value": int(text)}
    raise CircuitSpecError(f"checkpoint '{checkpoint}' is not a training step or 'index:N'")


def _load_name(
    name: str, checkpoint: int | str | None, device: str, dtype: torch.dtype, prepend_bos: bool | None
) -> tuple[Any, TextTokenizer]:
    """A TransformerLens model from the local Hugging Face cache only (no downloads)."""
    from transformer_lens import HookedTransformer
    from transformer_lens.loading_from_pretrained import get_official_model_name

    cache = hf_cache_dir()
    hint = "point at a local copy with 'model: {path: DIR}' (a Hugging Face model directory)"
    try:
        official = get_official_model_name(name)
    except ValueError:
        raise ModelNotAvailable(f"'{name}' is not a TransformerLens model name; {hint}") from None
    folder = cache / ("models--" + official.replace("/", "--"))
    if not folder.exists():
        raise ModelNotAvailable(
            f"model '{name}' (Hugging Face '{official}') is not in the Hugging Face cache {folder} and "
            f"downloads are off; {hint}"
        )
    try:
        with hub_offline():
            model = HookedTransformer.from_pretrained(
                name, device=device, dtype=dtype, **_checkpoint_kwargs(checkpoint)
            )
    except CircuitSpecError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ModelNotAvailable(
            f"could not load '{name}' (Hugging Face '{official}') from the cache {folder}: {reason}; {hint}"
        ) from None
    bos = bool(model.cfg.default_prepend_bos) if prepend_bos is None else prepend_bos
    return model, TextTokenizer.from_hf(model.tokenizer, prepend_bos=bos)


def _load_path(
    directory: Path, device: str, dtype: torch.dtype, prepend_bos: bool | None, where: str
) -> tuple[Any, TextTokenizer]:
    """A local Hugging Face directory: BERT → SentenceEncoder, a decoder → HookedTransformer."""
    if not (directory / "config.json").exists():
        raise ModelNotAvailable(f"no Hugging Face model at {directory} (config.json missing)")
    from transformers import AutoConfig

    from .loading.hf_convert import bos_convention, hooked_from_directory
    from .loading.weights import check_weight_files, one_line_load_errors

    try:
        model_type = AutoConfig.from_pretrained(directory, local_files_only=True).model_type
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ModelNotAvailable(f"{where}: cannot read {directory / 'config.json'}: {reason}") from None
    with one_line_load_errors(directory, where):
        if model_type == "bert":  # sentence encoders (BERT family) → SentenceEncoder
            from .encoder import load_encoder

            check_weight_files(directory, where)  # safetensors only: pickles are refused, never opened
            return load_encoder(directory, device, dtype)
        model, hf_tokenizer = hooked_from_directory(directory, device, dtype, where)
    model = _place(model, device, dtype)
    if prepend_bos is None:
        prepend_bos = bos_convention(hf_tokenizer, bool(model.cfg.default_prepend_bos))
    model.cfg.default_prepend_bos = prepend_bos
    return model, TextTokenizer.from_hf(hf_tokenizer, prepend_bos=prepend_bos)


def _load_gguf(
    file: Path, device: str, dtype: torch.dtype, prepend_bos: bool | None
) -> tuple[Any, TextTokenizer, dict[str, Any]]:
    """A GGUF file, through its dequantized directory in circuitspec's cache."""
    from .loading.gguf_cache import dequantized_dir

    directory, sha, hit = dequantized_dir(file)
    model, tokenizer = _load_path(directory, device, dtype, prepend_bos, f"gguf:{file.name}")
    return model, tokenizer, {"source_file": file.name, "source_sha256": sha, "cache_hit": hit}
