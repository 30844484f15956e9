"""Two exact shortcuts of edited passes, each against one plain TransformerLens hooked full pass:

- a pass that edits only heads' ``hook_z`` of block L starts after L's attention (the block's output is
  rebuilt from the cached ``z``), on sequential pre-norm blocks only;
- when only each prompt's last token is read out, the last block's MLP runs at those positions alone.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from circuitspec.engine import edits as edits_module
from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import ablate
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.sites import resolve_site
from circuitspec.spec.nodes import parse_node
from tests.helpers.tiny import _randomise, make_prompt_set

torch.set_num_threads(1)
ATOL = 1e-4
VOCAB = 40

# (config overrides, whether the after-attention start applies)
ARCHITECTURES = {
    "layernorm": ({}, True),
    "rmsnorm": ({"normalization_type": "RMS"}, True),
    "no-norm": ({"normalization_type": None}, True),
    "attn-only": ({"attn_only": True}, True),
    "grouped-query": ({"n_heads": 4, "n_key_value_heads": 2, "normalization_type": "RMS"}, True),
    "parallel": ({"parallel_attn_mlp": True}, False),
}


def _model(overrides: dict):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    settings = dict(
        n_layers=3, n_heads=2, d_model=16, d_head=8, d_mlp=32, d_vocab=VOCAB, n_ctx=32, act_fn="gelu_new",
        normalization_type="LN", seed=3, device="cpu", dtype=torch.float32,
    )  # fmt: skip
    settings.update(overrides)
    settings["d_head"] = settings["d_model"] // settings["n_heads"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(HookedTransformerConfig(**settings))
    _randomise(model, 3)
    return model


def _reference(model, prompts, hook: str, heads: list[int]) -> torch.Tensor:
    """Mean-ablate ``heads`` of ``hook`` (per-position mean over real prompts) in one plain full pass."""
    with torch.inference_mode():
        _, cache = model.run_with_cache(prompts.tokens, names_filter=[hook])
        z = cache[hook]
        real = (torch.arange(z.shape[1])[None] < prompts.lengths[:, None]).float()[..., None, None]
        mean = (z * real).sum(0, keepdim=True) / real.sum(0, keepdim=True).clamp(min=1)

        def ablate_heads(act, hook):
            act = act.clone()
            act[:, :, heads] = mean.expand_as(act)[:, :, heads]
            return act

        logits = model.run_with_hooks(prompts.tokens, fwd_hooks=[(hook, ablate_heads)])
    return logit_diff(logits, prompts)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_head_ablation_starting_after_attention_equals_a_full_pass(name, monkeypatch):
    overrides, shortcut = ARCHITECTURES[name]
    model = _model(overrides)
    prompts = make_prompt_set(VOCAB, lengths=(6, 8, 5, 7), seed=4)
    used = []
    original = edits_module._after_attention

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        used.append(out is not None)
        return out

    monkeypatch.setattr(edits_module, "_after_attention", spy)
    ctx = RunContext(model, prompts, logit_diff)
    sites = [resolve_site(parse_node(node), prompts) for node in ("L1H0", "L1H1")]
    got = ablate(ctx, sites, "mean")
    want = _reference(model, prompts, "blocks.1.attn.hook_z", [0, 1])
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
    assert used == [shortcut]


@pytest.mark.parametrize("hook", [None, "blocks.2.mlp.hook_post", "blocks.2.hook_mlp_out"])
def test_last_mlp_at_the_read_positions_only(hook):
    model = _model({})
    prompts = make_prompt_set(VOCAB, lengths=(6, 8, 5, 7), seed=4)
    ctx = RunContext(model, prompts, logit_diff)
    double = [] if hook is None else [(hook, lambda act, hook: act * 2)]
    got = ctx.forward(prompts.tokens, double)  # read at each prompt's last token only
    with torch.inference_mode():
        full = model.run_with_hooks(prompts.tokens, fwd_hooks=double)
    want = full[torch.arange(len(prompts)), prompts.lengths - 1]
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
