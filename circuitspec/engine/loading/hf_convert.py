"""A Hugging Face decoder directory → HookedTransformer, with TransformerLens' own conversion.

The config is read from the directory only (``local_files_only``), turned into a
HookedTransformerConfig by ``transformer_lens.loading_from_pretrained.convert_hf_model_config``, and the
weights by ``get_pretrained_state_dict`` (which dispatches to ``convert_<arch>_weights``) on the
Hugging Face model we loaded; processing (LayerNorm folding, centring) is what ``from_pretrained`` does.
Nothing here is written per architecture, except Gemma 3, whose TransformerLens config exists only by
hub name: its ``google/gemma-3-270m`` template takes the directory's sizes.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from circuitspec.errors import ModelNotAvailable

from .weights import check_weight_files

__all__ = ["GEMMA3_TYPES", "bos_convention", "hooked_from_directory", "tl_config_dict"]

GEMMA3_TYPES = {"gemma3", "gemma3_text"}
TESTED = "llama, gemma3, gpt2, gpt_neox, qwen2, mistral, bert"


def _architecture(hf_config: Any) -> str:
    """``architectures[0]``, or the causal-LM class transformers maps the model_type to (GGUF configs)."""
    if getattr(hf_config, "architectures", None):
        return str(hf_config.architectures[0])
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return str(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(hf_config.model_type, hf_config.model_type))


def _gemma3_dict(hf_config: Any) -> dict[str, Any]:
    """TransformerLens' Gemma-3-270m config (its only, name-keyed one) with the directory's sizes."""
    from transformer_lens.loading_from_pretrained import convert_hf_model_config

    text = getattr(hf_config, "text_config", None) or hf_config
    cfg = convert_hf_model_config("google/gemma-3-270m")
    rope = getattr(text, "rope_parameters", None) or {}
    cfg.update(
        d_model=text.hidden_size,
        d_head=text.head_dim,
        n_heads=text.num_attention_heads,
        n_key_value_heads=text.num_key_value_heads,
        d_mlp=text.intermediate_size,
        n_layers=text.num_hidden_layers,
        n_ctx=min(int(text.max_position_embeddings), 8192),  # TransformerLens' cap for Gemma 3
        eps=text.rms_norm_eps,
        d_vocab=text.vocab_size,
        act_fn=text.hidden_activation,
        attn_scale=float(text.query_pre_attn_scalar) ** 0.5,
        window_size=text.sliding_window,
        attn_types=["local" if t == "sliding_attention" else "global" for t in text.layer_types],
        original_architecture="Gemma3ForCausalLM",
    )
    if "full_attention" in rope:
        cfg["rotary_base"] = rope["full_attention"].get("rope_theta", cfg["rotary_base"])
    if "sliding_attention" in rope:
        cfg["rotary_base_local"] = rope["sliding_attention"].get("rope_theta", cfg["rotary_base_local"])
    return cfg


def tl_config_dict(hf_config: Any, where: str) -> dict[str, Any]:
    """TransformerLens' config dict for ``hf_config``; a one-line error when it cannot convert it."""
    from transformer_lens.loading_from_pretrained import convert_hf_model_config

    if hf_config.model_type in GEMMA3_TYPES:
        return _gemma3_dict(hf_config)
    architecture = _architecture(hf_config)
    # TransformerLens reads the config from a directory and also matches names in its path ("llama",
    # "gemma", …): give it a neutral temporary directory holding only this config.
    with tempfile.TemporaryDirectory(prefix="circuitspec-config-") as neutral:
        data = hf_config.to_dict()
        data["architectures"] = [architecture]
        if "n_positions" in data:  # transformers 5 no longer writes GPT-2's n_ctx, TransformerLens reads it
            data.setdefault("n_ctx", data["n_positions"])
        (Path(neutral) / "config.json").write_text(json.dumps(data), encoding="utf-8")
        try:
            cfg = convert_hf_model_config(neutral)
        except Exception as exc:
            reason = " ".join(str(exc).split())[:160]
            raise ModelNotAvailable(
                f"{where}: model_type '{hf_config.model_type}' ({architecture}) is not supported: "
                f"TransformerLens cannot convert it ({reason}); supported and tested: {TESTED}"
            ) from None
    if cfg.get("original_architecture") != architecture:
        raise ModelNotAvailable(
            f"{where}: TransformerLens read {architecture} as {cfg.get('original_architecture')}"
        )
    return cfg


def _finish(
    cfg: dict[str, Any], hf_config: Any, device: str, dtype: torch.dtype
) -> tuple[Any, dict[str, bool]]:
    """The HookedTransformerConfig ``from_pretrained`` would build, and its processing flags."""
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.utilities.architectures import POST_NORM_ARCHITECTURES

    post_norm = cfg["original_architecture"] in POST_NORM_ARCHITECTURES
    softcap = bool(cfg.get("output_logits_soft_cap") and cfg["output_logits_soft_cap"] > 0)
    fold = not post_norm and cfg.get("positional_embedding_type") != "shortformer"
    if fold and cfg["normalization_type"] in ("LN", "RMS"):
        cfg["normalization_type"] += "Pre"
    cfg.update(
        model_name=str(getattr(hf_config, "_name_or_path", "") or cfg["original_architecture"]).split("/")[
            -1
        ],
        init_weights=False,
        device=device,
        dtype=dtype,
        n_devices=1,
        from_checkpoint=False,
        tokenizer_name=None,  # the tokenizer is set from the directory, never fetched by name
        # one key/value copy per query head in hook_k / hook_v (grouped-query attention ungrouped)
        ungroup_grouped_query_attention=True,
    )
    cfg.setdefault("default_prepend_bos", True)
    flags = {
        "fold_ln": fold,
        "center_writing_weights": fold,
        "center_unembed": not softcap and cfg.get("positional_embedding_type") != "shortformer",
        "fold_value_biases": True,
    }
    return HookedTransformerConfig.from_dict(cfg), flags


def hooked_from_directory(directory: Path, device: str, dtype: torch.dtype, where: str) -> tuple[Any, Any]:
    """(HookedTransformer, Hugging Face tokenizer) from a local decoder directory; no hub access."""
    from transformer_lens import HookedTransformer
    from transformer_lens.loading_from_pretrained import get_pretrained_state_dict
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    hf_config = AutoConfig.from_pretrained(directory, local_files_only=True)
    cfg, flags = _finish(tl_config_dict(hf_config, where), hf_config, device, dtype)
    check_weight_files(directory, where)  # safetensors only: pickles are refused, never opened
    hf_model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, dtype=torch.float32)
    hf_model.eval()
    state_dict = get_pretrained_state_dict(str(directory), cfg, hf_model, dtype=torch.float32)
    del hf_model
    model = HookedTransformer(cfg, move_to_device=False)
    model.load_and_process_state_dict(state_dict, **flags)
    hf_tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model.set_tokenizer(hf_tokenizer, default_padding_side="right")
    return model, hf_tokenizer


def bos_convention(hf_tokenizer: Any, architecture_default: bool) -> bool:
    """Whether prompts start with BOS, from the model's tokenizer: yes when it adds BOS itself (Llama,
    Gemma, Mistral); when it adds none, only if its BOS is the end-of-text document separator (GPT-2's
    ``<|endoftext|>``) and TransformerLens prepends it for the architecture. SmolLM2's tokenizer adds no
    BOS and its BOS is ``<|im_start|>``, a chat marker: not prepended."""
    bos = hf_tokenizer.bos_token_id
    if bos is None:
        return False
    plain = hf_tokenizer("a", add_special_tokens=False)["input_ids"]
    special = hf_tokenizer("a")["input_ids"]
    if len(special) > len(plain) and special[0] == bos:
        return True
    return architecture_default and bos == hf_tokenizer.eos_token_id
