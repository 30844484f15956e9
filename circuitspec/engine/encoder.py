"""BERT-family sentence encoders as TransformerLens ``HookedEncoder`` models, from a local directory.

:func:`load_encoder` reads a Hugging Face ``BertModel`` directory (``config.json``,
``model.safetensors``, ``tokenizer.json``) with no network, converts the weights to TransformerLens'
layout, and reads sentence-transformers' ``modules.json`` / ``1_Pooling/config.json`` to pool
exactly as the model was trained (mean over real tokens, or the CLS token) and to L2-normalise
when a ``Normalize`` module is listed.

:class:`SentenceEncoder` is a ``HookedEncoder`` whose forward returns the sentence embedding
``[batch, d_model]`` instead of MLM logits, with the attention mask derived from the pad id, so
every intervention that calls ``model.run_with_hooks(tokens, fwd_hooks=...)`` runs on it unchanged;
``start_at_layer`` / ``stop_at_layer`` give partial passes as on a ``HookedTransformer`` (path patching).
TransformerLens' BERT blocks are post-LN: the residual between blocks is
``blocks.L.hook_normalized_resid_post`` (= ``blocks.L+1.hook_resid_pre``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from circuitspec.errors import ModelNotAvailable
from circuitspec.tokenizer import TextTokenizer

__all__ = ["PoolingConfig", "SentenceEncoder", "bert_state_dict", "load_encoder", "pool", "pooling_config"]


@dataclass(frozen=True)
class PoolingConfig:
    """How token states become one sentence embedding (sentence-transformers' Pooling + Normalize)."""

    mode: str = "mean"  # "mean" | "cls"
    normalize: bool = False


def pooling_config(directory: Path) -> PoolingConfig:
    """Read ``modules.json`` and the Pooling module's ``config.json``; plain BERT dirs → CLS, no norm."""
    modules_file = directory / "modules.json"
    if not modules_file.exists():
        return PoolingConfig(mode="cls", normalize=False)
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    normalize = any(m.get("type", "").endswith("models.Normalize") for m in modules)
    mode = "cls"
    for module in modules:
        if module.get("type", "").endswith("models.Pooling"):
            config = json.loads((directory / module["path"] / "config.json").read_text(encoding="utf-8"))
            unsupported = [
                k for k in ("pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens") if config.get(k)
            ]
            if unsupported or (
                config.get("pooling_mode_mean_tokens") and config.get("pooling_mode_cls_token")
            ):
                raise ModelNotAvailable(
                    f"{directory}: pooling {config} is not supported (valid: mean or cls)"
                )
            mode = "mean" if config.get("pooling_mode_mean_tokens") else "cls"
    return PoolingConfig(mode=mode, normalize=normalize)


def pool(resid: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """``[batch, pos, d]`` token states → ``[batch, d]``: mean over ``mask == 1`` tokens, or the CLS token."""
    if mode == "cls":
        return resid[:, 0]
    weights = mask.to(resid.dtype)[..., None]
    return (resid * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _encoder_base() -> type:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformer_lens import HookedEncoder
    return HookedEncoder


class _SentenceEncoding:
    """The sentence-embedding behaviour :func:`_make_class` mixes into TransformerLens' ``HookedEncoder``
    (kept out of that function so the class body stays readable; the base loads lazily)."""

    is_encoder = True
    __call__: Callable[..., Any]  # nn.Module's, from the HookedEncoder base
    cfg: Any
    embed: Any
    blocks: Any
    pooling: PoolingConfig
    pad_id: int
    hook_embed: Any
    hook_pos_embed: Any
    hook_full_embed: Any
    hook_pooled: Any
    hook_embedding: Any

    def set_use_split_qkv_input(self, use_split_qkv_input: bool) -> None:
        """Per-head ``hook_{q,k,v}_input`` (a ``HookedTransformer`` toggle missing on encoders)."""
        self.cfg.use_split_qkv_input = use_split_qkv_input

    def set_use_hook_mlp_in(self, use_hook_mlp_in: bool) -> None:
        """``blocks.L.hook_mlp_in`` (the MLP's input before its post-attention LayerNorm)."""
        self.cfg.use_hook_mlp_in = use_hook_mlp_in

    def attention_mask(self, tokens: torch.Tensor) -> torch.Tensor:
        """1 on real tokens, 0 on padding (``pad_id`` never occurs inside a prompt)."""
        return (tokens != self.pad_id).long()

    def token_states(
        self, tokens: torch.Tensor, one_zero_attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Final-layer token states ``[batch, pos, d_model]`` (padding masked out of attention)."""
        return self(
            tokens, one_zero_attention_mask=one_zero_attention_mask, stop_at_layer=self.cfg.n_layers
        )

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``BertEmbed``'s computation (token + position + token-type 0, then LayerNorm), hooked as
        ``hook_embed`` / ``hook_pos_embed`` like a decoder's embeddings."""
        embed = self.embed
        positions = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
        words = self.hook_embed(embed.embed(tokens))
        where = self.hook_pos_embed(embed.pos_embed(positions))
        token_type = embed.hook_token_type_embed(embed.token_type_embed(torch.zeros_like(tokens)))
        return self.hook_full_embed(embed.ln(words + where + token_type))

    def readout(self, resid: torch.Tensor, one_zero_attention_mask: torch.Tensor) -> torch.Tensor:
        """Final token states ``[batch, pos, d]`` → embeddings ``[batch, d]``: pool, normalise."""
        mask = one_zero_attention_mask.to(resid.device)
        pooled = self.hook_pooled(pool(resid, mask, self.pooling.mode))
        if self.pooling.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return self.hook_embedding(pooled)

    def forward(
        self,
        tokens: torch.Tensor,
        return_type: str | None = "embedding",
        one_zero_attention_mask: torch.Tensor | None = None,
        start_at_layer: int | None = None,
        stop_at_layer: int | None = None,
    ) -> torch.Tensor | None:
        """Token ids ``[batch, pos]`` → sentence embeddings ``[batch, d_model]``.

        Like ``HookedTransformer``, ``start_at_layer`` makes the input the residual stream entering
        that block (then the mask must be given: padding cannot be read off a residual stream), and
        ``stop_at_layer`` returns the residual stream entering that block instead of the embedding.
        """
        if start_at_layer is None:
            tokens = tokens.to(self.cfg.device)
            mask = (
                self.attention_mask(tokens)
                if one_zero_attention_mask is None
                else one_zero_attention_mask
            )
            resid = self.embed_tokens(tokens)
        elif one_zero_attention_mask is None:
            raise ValueError("start_at_layer needs one_zero_attention_mask")
        else:
            mask, resid = one_zero_attention_mask, tokens.to(self.cfg.device)
        mask = mask.to(resid.device)
        additive = torch.where(mask[:, None, None, :] == 0, -torch.inf, 0.0).to(resid.dtype)
        for block in self.blocks[start_at_layer:stop_at_layer]:
            resid = block(resid, additive)
        if stop_at_layer is not None:
            return resid
        if return_type is None:
            return None
        return self.readout(resid, mask)


def _make_class() -> type:
    from transformer_lens.hook_points import HookPoint

    base = _encoder_base()

    class SentenceEncoderImpl(_SentenceEncoding, base):  # type: ignore[misc, valid-type]
        """A ``HookedEncoder`` returning the pooled (and, if configured, normalised) sentence embedding."""

        def __init__(self, cfg: Any, pooling: PoolingConfig, pad_id: int) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                super().__init__(cfg, move_to_device=False)
            # heads a sentence embedding never uses: drop them so the state dict is only real weights
            for unused in ("mlm_head", "unembed", "nsp_head", "pooler"):
                delattr(self, unused)
            self.pooling = pooling
            self.pad_id = pad_id
            # the embeddings are hooked under TransformerLens' decoder names (nodes `embed`, `pos_embed`)
            del self.embed.hook_embed, self.embed.hook_pos_embed
            self.hook_embed = HookPoint()  # [batch, pos, d_model] token embeddings, before embed.ln
            self.hook_pos_embed = HookPoint()  # [batch, pos, d_model] position embeddings, before embed.ln
            self.hook_pooled = HookPoint()  # [batch, d_model] before normalisation
            self.hook_embedding = HookPoint()  # [batch, d_model] the sentence embedding
            self.setup()

    return SentenceEncoderImpl


_CLASS: type | None = None


def SentenceEncoder(cfg: Any, pooling: PoolingConfig, pad_id: int) -> Any:
    """Build a :class:`SentenceEncoder` (the class is made on first use: TransformerLens loads lazily)."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _make_class()
    return _CLASS(cfg, pooling, pad_id)


def bert_state_dict(weights: dict[str, torch.Tensor], n_heads: int, n_layers: int) -> dict[str, torch.Tensor]:
    """Hugging Face ``BertModel`` tensors (with or without a ``bert.`` prefix) → HookedEncoder names."""
    import einops

    w = {k.removeprefix("bert."): v for k, v in weights.items()}
    out = {
        "embed.embed.W_E": w["embeddings.word_embeddings.weight"],
        "embed.pos_embed.W_pos": w["embeddings.position_embeddings.weight"],
        "embed.token_type_embed.W_token_type": w["embeddings.token_type_embeddings.weight"],
        "embed.ln.w": w["embeddings.LayerNorm.weight"],
        "embed.ln.b": w["embeddings.LayerNorm.bias"],
    }
    for layer in range(n_layers):
        p = f"encoder.layer.{layer}."
        for name, hf in (("Q", "query"), ("K", "key"), ("V", "value")):
            out[f"blocks.{layer}.attn.W_{name}"] = einops.rearrange(
                w[f"{p}attention.self.{hf}.weight"], "(i h) m -> i m h", i=n_heads
            )
            out[f"blocks.{layer}.attn.b_{name}"] = einops.rearrange(
                w[f"{p}attention.self.{hf}.bias"], "(i h) -> i h", i=n_heads
            )
        out[f"blocks.{layer}.attn.W_O"] = einops.rearrange(
            w[f"{p}attention.output.dense.weight"], "m (i h) -> i h m", i=n_heads
        )
        out[f"blocks.{layer}.attn.b_O"] = w[f"{p}attention.output.dense.bias"]
        out[f"blocks.{layer}.ln1.w"] = w[f"{p}attention.output.LayerNorm.weight"]
        out[f"blocks.{layer}.ln1.b"] = w[f"{p}attention.output.LayerNorm.bias"]
        out[f"blocks.{layer}.mlp.W_in"] = w[f"{p}intermediate.dense.weight"].T
        out[f"blocks.{layer}.mlp.b_in"] = w[f"{p}intermediate.dense.bias"]
        out[f"blocks.{layer}.mlp.W_out"] = w[f"{p}output.dense.weight"].T
        out[f"blocks.{layer}.mlp.b_out"] = w[f"{p}output.dense.bias"]
        out[f"blocks.{layer}.ln2.w"] = w[f"{p}output.LayerNorm.weight"]
        out[f"blocks.{layer}.ln2.b"] = w[f"{p}output.LayerNorm.bias"]
    return {k: v.contiguous() for k, v in out.items()}


def _config(hf: dict[str, Any], device: str, dtype: torch.dtype) -> Any:
    from transformer_lens import HookedTransformerConfig

    if hf.get("hidden_act", "gelu") != "gelu" or hf.get("position_embedding_type", "absolute") != "absolute":
        raise ModelNotAvailable(
            f"BERT with hidden_act '{hf.get('hidden_act')}' / position_embedding_type "
            f"'{hf.get('position_embedding_type')}' is not supported (valid: gelu, absolute)"
        )
    return HookedTransformerConfig(
        d_model=hf["hidden_size"],
        d_head=hf["hidden_size"] // hf["num_attention_heads"],
        n_heads=hf["num_attention_heads"],
        d_mlp=hf["intermediate_size"],
        n_layers=hf["num_hidden_layers"],
        n_ctx=hf["max_position_embeddings"],
        eps=hf.get("layer_norm_eps", 1e-12),
        d_vocab=hf["vocab_size"],
        act_fn="gelu",
        attention_dir="bidirectional",
        normalization_type="LN",
        original_architecture="BertForMaskedLM",
        device=device,
        dtype=dtype,
    )


def encoder_tokenizer(directory: Path) -> TextTokenizer:
    """The directory's ``tokenizer.json`` with padding/truncation off: prompts are ``[CLS] text [SEP]``."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_file(str(directory / "tokenizer.json"))
    backend.no_padding()
    backend.no_truncation()
    tokenizer = TextTokenizer._with_specials(backend, "[CLS]", "[PAD]", "[SEP]")
    tokenizer.sep_id = tokenizer.eos_id
    return tokenizer


def load_encoder(
    directory: Path, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[Any, TextTokenizer]:
    """A local BERT directory → (:class:`SentenceEncoder`, :class:`TextTokenizer`); no network."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config_file = directory / "config.json"
    if not config_file.exists():
        raise ModelNotAvailable(f"no Hugging Face model at {directory} (config.json missing)")
    hf_config = json.loads(config_file.read_text(encoding="utf-8"))
    if hf_config.get("model_type") != "bert":
        raise ModelNotAvailable(f"{directory}: model_type '{hf_config.get('model_type')}' is not BERT")
    weights_file = directory / "model.safetensors"
    if weights_file.exists():
        weights = load_file(str(weights_file))
    elif (directory / "pytorch_model.bin").exists():
        weights = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise ModelNotAvailable(f"{directory}: no model.safetensors or pytorch_model.bin")
    cfg = _config(hf_config, device, dtype)
    tokenizer = encoder_tokenizer(directory)
    model = SentenceEncoder(cfg, pooling_config(directory), pad_id=tokenizer.pad_id)
    state = bert_state_dict(weights, cfg.n_heads, cfg.n_layers)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(("IGNORE", "mask"))]
    if missing or unexpected:
        raise ModelNotAvailable(
            f"{directory}: weights do not fit (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model = torch.nn.Module.to(model, device=device, dtype=dtype)  # quietly (HookedEncoder.to prints)
    model.cfg.dtype = dtype
    model.eval()
    return model, tokenizer
