"""Load a hypothesis' model for the nnsight backend: a Hugging Face causal LM wrapped by nnsight.

Sources: ``model: {nnsight: NAME_OR_PATH}`` (a local Hugging Face directory or GGUF file relative to the
hypothesis, else a hub name read from the local cache only, or run on NDIF with ``remote: true``), or
``backend: nnsight`` beside ``path`` / ``gguf`` / ``package``: transformers loads the same directory (a
GGUF dequantized once into circuitspec's cache, ``loading/gguf_cache``) that the TransformerLens
backend converts, so both backends run the same weights. Weights load with eager attention (its
weights are the ``attention`` claim's pattern) and safetensors only.
"""

from __future__ import annotations

import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from circuitspec.errors import CircuitSpecError, ModelNotAvailable
from circuitspec.spec.schema import ModelShape, ModelSpec
from circuitspec.tokenizer import TextTokenizer

from .nnsight_adapter import FAMILIES, NNsightAdapter

__all__ = ["load_nnsight", "nnsight_shape"]


def load_nnsight(
    spec: ModelSpec, base_dir: Path, device: str, dtype: torch.dtype, checkpoint: int | str | None
) -> tuple[NNsightAdapter, TextTokenizer, ModelShape, dict[str, Any]]:
    """(adapter, tokenizer, shape, identity) of ``spec`` on the nnsight backend; ``engine/models.py``
    makes the ``LoadedModel`` (and hashes the weights)."""
    from circuitspec.graph.model_sources import resolve_source

    source = resolve_source(spec, base_dir)
    if checkpoint is not None:
        raise CircuitSpecError("the nnsight backend loads one set of weights: drop 'checkpoint'")
    if spec.dictionaries:
        raise CircuitSpecError("the nnsight backend does not splice dictionaries: drop 'model.dictionaries'")
    if source.kind == "bundled" or (source.kind == "name" and not spec.nnsight):
        raise CircuitSpecError(
            f"the nnsight backend runs Hugging Face models, not {source.label}: "
            "use 'nnsight: NAME_OR_PATH', or 'backend: nnsight' with path, gguf or package"
        )
    extra: dict[str, Any] = {}
    if source.kind == "name" and spec.remote:
        lm, tokenizer = _remote(source.location)
    else:
        directory, extra = _directory(source.kind, Path(source.location), source.location)
        lm, tokenizer = _local(directory, device, dtype, source.label)
    adapter = NNsightAdapter(lm, remote=spec.remote)
    bos = spec.prepend_bos
    if bos is None:
        from ..loading.hf_convert import bos_convention

        bos = bos_convention(tokenizer, True)
    identity = {
        "source": source.label,
        "checkpoint": None,
        "backend": "nnsight",
        "nnsight_version": metadata.version("nnsight"),
        "remote": spec.remote,
        "prepend_bos": bos,
        **extra,
    }
    if adapter.arch.n_kv_heads:
        kv = {"n_key_value_heads": adapter.arch.n_kv_heads, "ungrouped": False}  # shared heads run once
        identity["grouped_query_attention"] = kv
    return (
        adapter,
        TextTokenizer.from_hf(tokenizer, prepend_bos=bos),
        nnsight_shape(adapter.hf.config),
        identity,
    )


def nnsight_shape(config: Any) -> ModelShape:
    """The :class:`ModelShape` of a Llama-style Hugging Face config (as TransformerLens reads it)."""
    heads = int(config.num_attention_heads)
    kv = int(getattr(config, "num_key_value_heads", None) or heads)
    return ModelShape(
        n_layers=int(config.num_hidden_layers),
        n_heads=heads,
        d_model=int(config.hidden_size),
        d_mlp=int(config.intermediate_size),
        d_vocab=int(config.vocab_size),
        n_ctx=int(config.max_position_embeddings),
        causal=True,
        n_kv_heads=kv if kv < heads else None,
    )


def _directory(kind: str, location: Path, name: str) -> tuple[Path, dict[str, Any]]:
    """The Hugging Face directory to load: as given, a GGUF's dequantized copy, or a hub name's snapshot
    in the local cache (never downloaded)."""
    if kind == "gguf":
        from ..loading.gguf_cache import dequantized_dir

        directory, sha, hit = dequantized_dir(location)
        return directory, {"source_file": location.name, "source_sha256": sha, "cache_hit": hit}
    if kind == "path":
        return location, {}
    from huggingface_hub import snapshot_download

    try:  # the cache HF_HOME / HF_HUB_CACHE name; local_files_only: never the network
        return Path(snapshot_download(name, local_files_only=True)), {}
    except Exception:
        raise ModelNotAvailable(
            f"nnsight model '{name}' is not in the local Hugging Face cache and downloads are off; "
            "point 'nnsight:' at a local directory, or run it on NDIF with 'remote: true'"
        ) from None


def _local(directory: Path, device: str, dtype: torch.dtype, where: str) -> tuple[Any, Any]:
    """(nnsight TransformersModel, Hugging Face tokenizer) for a local decoder directory."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ..loading.weights import check_weight_files, one_line_load_errors

    if not (directory / "config.json").is_file():
        raise ModelNotAvailable(f"no Hugging Face model at {directory} (config.json missing)")
    with one_line_load_errors(directory, where):
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
        biased = bool(getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False))
        if config.model_type not in FAMILIES or biased:
            what = f"model_type '{config.model_type}'" + (" with attention / MLP biases" if biased else "")
            raise ModelNotAvailable(
                f"{where}: the nnsight backend runs bias-free Llama-style decoders ({', '.join(FAMILIES)}), "
                f"not {what}; use the TransformerLens backend"
            )
        check_weight_files(directory, where)  # safetensors only: pickles are refused, never opened
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf = AutoModelForCausalLM.from_pretrained(
                directory, local_files_only=True, dtype=dtype, attn_implementation="eager"
            )
        model: Any = hf  # transformers types .to() through a wrapper mypy misreads
        model.to(device).eval().requires_grad_(False)  # inference only: no autograd graph in hooks
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    return _wrap(hf, tokenizer), tokenizer


def _remote(name: str) -> tuple[Any, Any]:
    """A hub model run on NDIF: nnsight builds it on the meta device (no weights here); the key comes
    from ``NDIF_API_KEY`` (nnsight reads it). Cannot be tested offline."""
    import os

    if not os.environ.get("NDIF_API_KEY"):
        raise CircuitSpecError("remote: true runs on NDIF and needs an API key in NDIF_API_KEY")
    lm = _wrap(name, None)
    return lm, lm.tokenizer


def _wrap(model: Any, tokenizer: Any) -> Any:
    """nnsight's ``TransformersModel`` around a loaded Hugging Face model (or a hub name, for NDIF)."""
    try:
        from nnsight import TransformersModel
    except ImportError:
        raise CircuitSpecError(
            "the nnsight backend needs the 'nnsight' package (pip install 'circuitspec[nnsight]')"
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TransformersModel(model, task="text-generation", tokenizer=tokenizer)
