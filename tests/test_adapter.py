"""The model behind one adapter: no engine module but the adapter's reaches into the model, and the
adapter's weight accessors, the architecture record and the hooks they imply match the model.

Only ``engine/adapter.py``, ``engine/architecture.py``, ``engine/models.py`` (loading) and
``engine/encoder.py`` (the encoder model itself) may touch a model's internals; everything else asks
``ctx.adapter`` / ``adapter.arch``, so a second backend (TransformerLens 4's ``TransformerBridge``,
nnsight) is one new adapter and no intervention changes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from circuitspec.claims.hooks import dla_hooks
from circuitspec.engine.adapter import HookedTransformerAdapter
from circuitspec.engine.architecture import Architecture
from tests.helpers.tiny import make_tiny_encoder, make_tiny_model

ENGINE = Path(__file__).resolve().parents[1] / "circuitspec" / "engine"
MAY_TOUCH_THE_MODEL = {"adapter.py", "adapter_generation.py", "architecture.py", "models.py", "encoder.py",
                       "learning.py",  # learning.py: gradients through the model (inference_mode elsewhere)
                       "attribution_patching.py"}  # gradients for attribution patching, likewise
# Model internals: weights and modules, TransformerLens' run helpers, its config and hook registry,
# sae-lens' spliced dictionaries and the encoder flag.
INTERNALS = {
    "blocks", "W_U", "b_U", "W_E", "W_pos", "ln_final", "unembed", "embed", "pos_embed",
    "run_with_hooks", "run_with_cache", "cfg", "hook_dict", "mod_dict", "acts_to_saes",
    "is_encoder", "set_use_split_qkv_input", "set_use_hook_mlp_in",
}  # fmt: skip
# Where the model object itself may be named: the run context builds the adapter from it and the
# planner hands the loaded model to the run context.
MAY_NAME_THE_MODEL = {"context.py", "planner.py", "shards.py"}  # shards.py: the planner of a shard


def _engine_modules() -> list[Path]:
    """Every engine module but those allowed to touch the model (interventions, paths, scrubbing,
    edits, context, planner, feature attribution, sites, ...)."""
    files = sorted(ENGINE.rglob("*.py"))
    assert {"interventions", "paths", "scrubbing"} <= {f.parent.name for f in files}
    backends = ENGINE / "backends"  # other model adapters (nnsight): each is the model's one toucher
    allowed = [f for f in files if f.parent == ENGINE and f.name in MAY_TOUCH_THE_MODEL]
    return [f for f in files if f not in allowed and f.parent != backends]


def _reaches_into_model(path: Path) -> list[str]:
    """``file:line: what`` for each attribute access (or ``getattr`` with a literal name) of a model
    internal, and each ``.model`` outside the modules that hand the model to the adapter."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        name = None
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
        ):
            name = node.args[1].value
        if name in INTERNALS or (name == "model" and path.name not in MAY_NAME_THE_MODEL):
            where = path.relative_to(ENGINE) if path.is_relative_to(ENGINE) else path.name
            found.append(f"{where}:{node.lineno}: .{name}")
    return found


def test_only_the_adapter_touches_the_model():
    modules = _engine_modules()
    names = {f.relative_to(ENGINE).as_posix() for f in modules}
    assert {"edits.py", "context.py", "planner.py", "interventions/logit_lens.py"} <= names
    assert any(n.startswith("scrubbing/") for n in names)
    offences = [line for path in modules for line in _reaches_into_model(path)]
    assert not offences, "ask ctx.adapter / adapter.arch instead:\n" + "\n".join(offences)


def test_the_walker_sees_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(ctx, model):\n"
        "    a = ctx.model.cfg.n_layers\n"
        "    b = model.blocks[0].attn.W_O\n"
        "    c = getattr(model, 'is_encoder', False)\n"
        "    with model.hooks(): model.run_with_hooks(x)\n"
        "    return ctx.adapter.arch.n_layers\n"
    )
    found = " ".join(_reaches_into_model(bad))
    for name in ("model", "cfg", "blocks", "is_encoder", "run_with_hooks"):
        assert f".{name}" in found
    assert ".adapter" not in found and ".arch" not in found


# ------------------------------------------------------------------- the adapter's weights


@pytest.mark.parametrize("norm", ["LN", "LNPre", "RMS", None])
def test_weights_match_the_model(norm):
    model = make_tiny_model(n_layers=2, n_heads=2, d_model=16, d_vocab=30, normalization_type=norm, seed=3)
    adapter = HookedTransformerAdapter(model)
    ids = torch.tensor([3, 7, 3])
    assert torch.equal(adapter.unembed_columns(ids), model.W_U[:, ids].T)
    assert torch.equal(adapter.unembed_bias(ids), model.b_U[ids])
    weight, bias = adapter.final_norm_params()
    assert (weight is not None) == (norm in ("LN", "RMS")) and (bias is not None) == (norm == "LN")
    if weight is not None:
        assert torch.equal(weight, model.ln_final.w)
    for layer in range(2):
        assert (adapter.block_norm_weight(layer, 1) is not None) == (norm in ("LN", "RMS"))
        assert torch.equal(adapter.attention_bias(layer), model.blocks[layer].attn.b_O)
    z = torch.randn(4, 5, 2, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        per_head = adapter.head_writes(1, z)
        assert per_head.shape == (4, 5, 2, 16)
        torch.testing.assert_close(per_head[:, :, 1], adapter.head_write(1, 1, z[:, :, 1]))
        summed = per_head.sum(2) + adapter.attention_bias(1)
        torch.testing.assert_close(summed, adapter.attention_output(1, z))


def test_architecture_decides_the_dla_hooks():
    ln = Architecture.of(make_tiny_model(normalization_type="LN"))
    bare = Architecture.of(make_tiny_model(normalization_type=None, attn_only=True))
    assert (ln.norm, ln.positions, bare.norm, bare.attn_only) == ("layernorm", "learned", "none", True)
    assert {"ln_final.hook_scale", "hook_pos_embed", "blocks.1.hook_mlp_out"} <= set(dla_hooks(ln))
    assert not {"ln_final.hook_scale", "blocks.1.hook_mlp_out"} & set(dla_hooks(bare))
    rotary = Architecture(n_layers=1, n_heads=1, d_model=4, d_head=4, d_vocab=5, positions="rotary")
    assert "hook_pos_embed" not in dla_hooks(rotary)


def test_encoder_pooling_is_architecture_data():
    for mode, normalize in (("mean", True), ("cls", False)):
        model = make_tiny_encoder(n_layers=2, pooling=mode, normalize=normalize)
        adapter = HookedTransformerAdapter(model)
        assert (adapter.arch.encoder, adapter.arch.pooling, adapter.arch.normalized_embedding) == (
            True, mode, normalize,
        )  # fmt: skip
        tokens = torch.tensor([[2, 5, 6, 3, 0], [2, 7, 3, 0, 0]])
        mask = model.attention_mask(tokens)
        with torch.no_grad():
            states = model.token_states(tokens, mask)
            expected = model.readout(states, mask)
            pooled = adapter.pool(states, mask)
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        torch.testing.assert_close(pooled, expected)
    assert Architecture.of(make_tiny_model()).pooling is None
