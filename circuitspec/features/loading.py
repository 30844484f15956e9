"""Load a declared dictionary (``model.dictionaries``) as a sae-lens ``SAE`` or ``Transcoder``.

Formats (``DictionarySpec.format``):

- ``sae_lens``: a directory written by ``SAE.save_model`` (``path``), or a sae-lens ``release`` /
  ``sae_id`` already in the local Hugging Face cache (downloads stay off).
- ``dunefsky``: one ``final_sparse_autoencoder_gpt2-small_blocks.{L}.ln2.hook_normalized_24576.pt``
  file from Dunefsky et al. (2024), converted by :func:`dunefsky_transcoder`.
- ``bundled``: the small transcoders shipped for a bundled model (sae-lens disk format under
  ``circuitspec/zoo/<model>/transcoders/<key>/``).

Weights are read with safetensors or ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from circuitspec.errors import CircuitSpecError, ModelNotAvailable
from circuitspec.spec.geometry import hook_name
from circuitspec.spec.nodes import parse_node
from circuitspec.spec.schema import DictionarySpec

__all__ = [
    "DUNEFSKY_KEYS",
    "bundled_dictionary_dir",
    "dictionary_hooks",
    "dunefsky_transcoder",
    "load_dictionary",
    "transcoder_from_weights",
]

DUNEFSKY_KEYS = ("W_enc", "b_enc", "W_dec", "b_dec", "b_dec_out")
"""State-dict keys of a Dunefsky transcoder: ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``,
``W_dec [d_sae, d_out]``, ``b_dec [d_in]`` (subtracted from the input), ``b_dec_out [d_out]``."""


def dictionary_hooks(key: str) -> tuple[str, str]:
    """``(input hook, output hook)`` a dictionary at ``key`` (``MLP3.tc``, ``resid_pre5.sae``) must use."""
    node = parse_node(f"{key}[0]")
    output = hook_name(node).removesuffix(".hook_sae_acts_post")
    if node.dictionary and node.dictionary.endswith(".tc"):
        return f"blocks.{node.layer}.ln2.hook_normalized", output
    return output, output


def transcoder_from_weights(
    W_enc: Any, b_enc: Any, W_dec: Any, b_dec_out: Any, hook_in: str, hook_out: str, b_dec_in: Any = None
):
    """A sae-lens ``Transcoder`` computing ``ReLU((x − b_dec_in) W_enc + b_enc) W_dec + b_dec_out``.

    sae-lens transcoders never subtract an input bias (``apply_b_dec_to_input=False``), so
    ``b_dec_in`` is folded into the encoder bias: ``b_enc − b_dec_in · W_enc`` (exact).
    """
    import torch
    from sae_lens.saes.sae import SAEMetadata
    from sae_lens.saes.transcoder import Transcoder, TranscoderConfig

    W_enc, b_enc, W_dec, b_dec_out = (torch.as_tensor(t).float() for t in (W_enc, b_enc, W_dec, b_dec_out))
    if b_dec_in is not None:
        b_enc = b_enc - torch.as_tensor(b_dec_in).float() @ W_enc
    d_in, d_sae = W_enc.shape
    d_out = W_dec.shape[1]
    cfg = TranscoderConfig(
        d_in=d_in,
        d_sae=d_sae,
        d_out=d_out,
        apply_b_dec_to_input=False,
        metadata=SAEMetadata(hook_name=hook_in, hook_name_out=hook_out),
    )
    transcoder = Transcoder(cfg)
    with torch.no_grad():
        transcoder.W_enc.copy_(W_enc)
        transcoder.b_enc.copy_(b_enc)
        transcoder.W_dec.copy_(W_dec)
        transcoder.b_dec.copy_(b_dec_out)
    return transcoder


def dunefsky_transcoder(path: str | Path, layer: int):
    """Convert one Dunefsky GPT-2 transcoder file (layer ``layer``'s MLP) to a sae-lens ``Transcoder``.

    The file holds the state dict (keys :data:`DUNEFSKY_KEYS`), either flat or under
    ``"state_dict"``; it is read with ``torch.load(weights_only=True)``, so a file that also pickles
    a config object must first be re-saved as a plain state dict.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelNotAvailable(
            f"no Dunefsky transcoder file at {path}; download it yourself (e.g. from "
            "pchlenski/gpt2-transcoders) and point 'model.dictionaries.<key>.path' at it"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:160]
        raise CircuitSpecError(
            f"{path}: not a plain state dict readable with torch.load(weights_only=True) ({reason}); "
            "re-save its 'state_dict' entry with torch.save"
        ) from None
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    missing = [k for k in DUNEFSKY_KEYS if not isinstance(state, dict) or k not in state]
    if missing or not isinstance(state, dict):
        raise CircuitSpecError(f"{path}: not a Dunefsky transcoder (missing {', '.join(missing)})")
    return transcoder_from_weights(
        state["W_enc"],
        state["b_enc"],
        state["W_dec"],
        state["b_dec_out"],
        hook_in=f"blocks.{layer}.ln2.hook_normalized",
        hook_out=f"blocks.{layer}.hook_mlp_out",
        b_dec_in=state["b_dec"],
    )


def bundled_dictionary_dir(bundled: str, key: str) -> Path:
    """Where a bundled model keeps the dictionary ``key`` (sae-lens disk format)."""
    from circuitspec import zoo

    return Path(zoo.__file__).parent / bundled / "transcoders" / key


def _from_hub(spec: DictionarySpec):
    from sae_lens import SAE

    from circuitspec.engine.models import hub_offline

    try:
        with hub_offline():
            return SAE.from_pretrained(spec.release, spec.sae_id or "")
    except Exception as exc:
        reason = " ".join(str(exc).split())[:160]
        raise ModelNotAvailable(
            f"sae-lens release '{spec.release}' / '{spec.sae_id}' is not in the local Hugging Face cache "
            f"and downloads are off ({reason}); save it with SAE.save_model and give 'path: DIR'"
        ) from None


def load_dictionary(key: str, spec: DictionarySpec, base_dir: Path, bundled: str | None = None):
    """The sae-lens ``SAE`` / ``Transcoder`` declared as ``model.dictionaries[key]``; one-line errors."""
    import warnings

    from sae_lens import SAE

    layer = parse_node(f"{key}[0]").layer
    assert layer is not None
    if spec.format == "dunefsky":
        if not spec.path:
            raise CircuitSpecError(f"dictionary '{key}': format dunefsky needs 'path' (the .pt file)")
        return dunefsky_transcoder((Path(base_dir) / spec.path).resolve(), layer)
    if spec.format == "bundled":
        if not bundled:
            raise CircuitSpecError(f"dictionary '{key}': format bundled needs a bundled model")
        directory = bundled_dictionary_dir(bundled, key)
        if not directory.is_dir():
            raise ModelNotAvailable(f"bundled model '{bundled}' ships no dictionary '{key}' ({directory})")
    elif spec.path:
        directory = (Path(base_dir) / spec.path).resolve()
        if not directory.is_dir():
            raise ModelNotAvailable(
                f"dictionary '{key}': no sae-lens directory at {directory} (save one with SAE.save_model)"
            )
    elif spec.release:
        return _from_hub(spec)
    else:
        raise CircuitSpecError(f"dictionary '{key}': give 'path' or 'release' for format sae_lens")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SAE.load_from_disk(directory)
    except Exception as exc:  # a missing cfg.json / weights file, a bad config: one line, exit 2
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise ModelNotAvailable(
            f"dictionary '{key}': {directory} is not a sae-lens directory SAE.load_from_disk can read "
            f"({reason})"
        ) from None
