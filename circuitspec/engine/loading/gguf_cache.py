"""A GGUF file → a dequantized Hugging Face directory in circuitspec's cache, made once.

transformers reads and dequantizes the GGUF (``from_pretrained(dir, gguf_file=...)``, needs the
``gguf`` package, seconds to tens of seconds); the result is saved with ``save_pretrained``
(config.json, safetensors weights, tokenizer) under ``<cache>/dequantized/<sha256 of the GGUF>``, so a
second load reads safetensors and goes down the same path as ``model: {path: DIR}``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from circuitspec.errors import ModelNotAvailable
from circuitspec.graph.model_sources import cache_root, file_sha256

__all__ = ["dequantized_dir"]

_DONE = "circuitspec-complete"


def dequantized_dir(gguf_file: Path) -> tuple[Path, str, bool]:
    """(the cached directory, the GGUF's sha256, whether the cache already held it)."""
    sha = file_sha256(gguf_file)
    target = cache_root() / "dequantized" / sha
    if (target / _DONE).is_file():
        return target, sha, True
    partial = target.with_name(f"{sha}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _dequantize(gguf_file, partial)
    except ModelNotAvailable:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(partial, ignore_errors=True)
        reason = " ".join(str(exc).split())[:200]
        raise ModelNotAvailable(f"could not read the GGUF file {gguf_file}: {reason}") from None
    (partial / _DONE).write_text(gguf_file.name, encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    return target, sha, False


def _dequantize(gguf_file: Path, out: Path) -> None:
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF)
    except ImportError:
        raise ModelNotAvailable("reading a GGUF model needs the 'gguf' package (pip install gguf)") from None
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    where, name = gguf_file.parent, gguf_file.name
    config = AutoConfig.from_pretrained(where, gguf_file=name, local_files_only=True)
    text = getattr(config, "text_config", None)
    if text is not None:  # a multimodal config (Gemma 3): the decoder is the text model
        config = text
    model = AutoModelForCausalLM.from_pretrained(
        where, gguf_file=name, config=config, dtype=torch.float32, local_files_only=True
    )
    tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name, local_files_only=True)
    out.mkdir(parents=True, exist_ok=True)
    # save_pretrained refuses a model transformers marks as GGUF-quantized: its weights are plain
    # float32 tensors now, so write them (shared tensors once) and a config without the GGUF origin
    from safetensors.torch import save_model

    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    config.architectures = [type(model).__name__]
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    config.save_pretrained(out)
    tokenizer.save_pretrained(out)
