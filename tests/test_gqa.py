"""Grouped-query attention: node grammar, validation and engine semantics on a tiny GQA model.

The model has 4 query heads sharing 2 key/value heads (query heads 0, 1 read KV head 0; 2, 3 read KV
head 1) and is loaded ungrouped, so ``hook_k`` / ``hook_v`` hold one copy per query head.
``L1H3.v`` is query head 3's own copy; ``L1KV1.v`` is the shared head, i.e. the copies of heads 2 and
3 together. Every engine result is checked against plain TransformerLens hooks.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import ablate
from circuitspec.engine.interventions.path_patching import PathJob, path_patch_jobs
from circuitspec.engine.interventions.scaling import scale_sweep
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.sites import resolve_site
from circuitspec.errors import CircuitSpecError
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.graph.gguf_header import gguf_shape
from circuitspec.graph.node_checks import node_error
from circuitspec.graph.shapes import shape_from_config
from circuitspec.spec.geometry import expand_kv, hook_name, query_heads
from circuitspec.spec.loader import load_hypothesis
from circuitspec.spec.nodes import NodeKind, NodeSyntaxError, parse_node
from circuitspec.spec.schema import ModelShape
from tests.helpers.tiny import make_prompt_set
from tests.references.path_patching import naive_path_patch

torch.set_num_threads(1)

N_HEADS, N_KV = 4, 2
GQA_SHAPE = ModelShape(n_layers=3, n_heads=N_HEADS, d_model=16, d_mlp=32, n_kv_heads=N_KV)
MHA_SHAPE = ModelShape(n_layers=3, n_heads=N_HEADS, d_model=16, d_mlp=32)


def make_gqa_model(ungroup: bool = True, seed: int = 0, llama: bool = True):
    """A randomised 3-layer GQA HookedTransformer (Llama-like: RMSNorm, rotary, gated SiLU MLP)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    style = (
        dict(act_fn="silu", gated_mlp=True, normalization_type="RMS", positional_embedding_type="rotary")
        if llama
        else dict(act_fn="gelu_new", normalization_type="LN")
    )
    cfg = HookedTransformerConfig(
        n_layers=3,
        n_heads=N_HEADS,
        n_key_value_heads=N_KV,
        ungroup_grouped_query_attention=ungroup,
        d_model=16,
        d_head=4,
        d_mlp=32,
        d_vocab=50,
        n_ctx=32,
        seed=seed,
        device="cpu",
        dtype=torch.float32,
        **style,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # every weight and bias non-trivial (grouped K/V weights are ``_W_K``/``_W_V``)
        for name, param in model.named_parameters():
            if ".W_" in name or "._W_" in name or name.endswith(("W_E", "W_pos", "W_U")):
                param.copy_(torch.randn(param.shape, generator=gen) * 0.4)
            elif name.endswith(".w"):
                param.copy_(1.0 + 0.2 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(0.1 * torch.randn(param.shape, generator=gen))
    model.eval()
    return model


@pytest.fixture(scope="module")
def setup():
    model = make_gqa_model()
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(6, 8, 7, 5), seed=4, n_corrupted=2)
    return model, prompts


def _ctx(model, prompts) -> RunContext:
    return RunContext(model=model, prompts=prompts, metric=logit_diff)


# ------------------------------------------------------------------------------------------ model


@pytest.mark.parametrize("llama", [True, False], ids=["llama", "gpt2-like"])
def test_ungrouped_model_logits_equal_the_grouped_model(llama):
    grouped = make_gqa_model(ungroup=False, llama=llama)
    ungrouped = make_gqa_model(ungroup=True, llama=llama)
    ungrouped.load_state_dict(grouped.state_dict())
    tokens = torch.randint(3, 50, (3, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ungrouped(tokens), grouped(tokens), atol=1e-5, rtol=1e-5)
        _, cache = ungrouped.run_with_cache(tokens, names_filter=lambda n: n.endswith(("hook_k", "hook_v")))
    v = cache["blocks.1.attn.hook_v"]
    assert v.shape[2] == N_HEADS  # one copy per query head ...
    torch.testing.assert_close(v[:, :, 2], v[:, :, 3])  # ... identical within a group
    assert not torch.allclose(v[:, :, 1], v[:, :, 2])


def test_split_qkv_inputs_have_one_copy_per_query_head(setup):
    """TransformerLens 3.9 gives ungrouped GQA ``n_heads`` copies in ``hook_{q,k,v}_input``, so the
    engine's receivers (and the reference) index them by query head with no special case."""
    model, prompts = setup
    model.set_use_split_qkv_input(True)
    try:
        with torch.no_grad():
            _, cache = model.run_with_cache(prompts.tokens, names_filter=lambda n: n.endswith("_input"))
    finally:
        model.set_use_split_qkv_input(False)
    for chan in "qkv":
        assert cache[f"blocks.1.hook_{chan}_input"].shape[2] == N_HEADS


# ------------------------------------------------------------------------------------------ grammar


def test_kv_nodes_parse_and_expand_to_their_group():
    node = parse_node("L7KV1.v@s_con")
    assert (node.kind, node.layer, node.kv_head, node.head, node.role) == (NodeKind.KV_V, 7, 1, None, "s_con")
    assert node.is_kv and parse_node("L7KV0.k").kind is NodeKind.KV_K
    assert hook_name(node) == "blocks.7.attn.hook_v"
    assert query_heads(node, 9, 3) == (3, 4, 5)
    assert [n.text for n in expand_kv(node, 9, 3)] == ["L7H3.v@s_con", "L7H4.v@s_con", "L7H5.v@s_con"]
    assert node.with_role(None).text == "L7KV1.v" and node.with_role(None).kv_head == 1
    for bad in ("L7KV1", "L7KV1.q", "L7KV1@end"):
        with pytest.raises(NodeSyntaxError, match=r"valid: L7KV1\.k, L7KV1\.v"):
            parse_node(bad)


def test_validation_of_kv_nodes_against_the_shape():
    assert node_error(parse_node("L1KV1.v"), GQA_SHAPE, {}) is None
    assert node_error(parse_node("L1H3.v"), GQA_SHAPE, {}) is None
    assert node_error(parse_node("L1KV2.k"), GQA_SHAPE, {}) == (
        "'L1KV2.k': key/value head 2 out of range for a model with 2 key/value heads per layer (valid: 0–1)"
    )
    assert node_error(parse_node("L1KV1.v"), MHA_SHAPE, {}) == (
        "'L1KV1.v': this model has no grouped-query attention; use L1H1.v"
    )
    assert "layer 5" in str(node_error(parse_node("L5KV0.v"), GQA_SHAPE, {}))
    with pytest.raises(ValueError, match="must divide"):
        ModelShape(n_layers=1, n_heads=4, d_model=8, n_kv_heads=3)


def _hypothesis(tmp_path: Path, shape: str, node: str) -> Path:
    text = f"""
name: gqa
model:
  name: tiny-gqa
  shape: {shape}
data:
  rows: [{{s: Positive, s2: Negative, w: good, w2: bad}}]
  templates:
    - {{id: t, text: "{{s}}: {{w}}. {{s2}}:", desired: " {{w2}}", undesired: " {{w}}"}}
paths:
  value: "embed -> {node} -> logits"
claims:
  - {{id: scale_value, kind: scaling, targets: [{node}], alphas: [0, 1], expect: mean increases with alpha}}
  - {{id: path, kind: path_patching, targets: value, expect: mean < 0}}
"""
    path = tmp_path / "gqa.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_accepts_kv_nodes_on_gqa_and_locates_errors(tmp_path):
    gqa = "{n_layers: 3, n_heads: 4, d_model: 16, d_mlp: 32, n_kv_heads: 2}"
    graph = compile_hypothesis(load_hypothesis(_hypothesis(tmp_path, gqa, "L1KV1.v@s")))
    assert [n.text for n in graph.targets("scale_value")] == ["L1KV1.v@s"]
    mha = "{n_layers: 3, n_heads: 4, d_model: 16, d_mlp: 32}"
    with pytest.raises(CircuitSpecError) as err:
        compile_hypothesis(load_hypothesis(_hypothesis(tmp_path, mha, "L1KV1.v@s")))
    message = str(err.value)
    assert "gqa.yaml:" in message and "\n" not in message
    assert "this model has no grouped-query attention; use L1H1.v" in message
    with pytest.raises(CircuitSpecError, match="key/value head 3 out of range"):
        compile_hypothesis(load_hypothesis(_hypothesis(tmp_path, gqa, "L1KV3.v")))


def test_scrubbing_rejects_kv_nodes_at_validate():
    from circuitspec.claims.rules import PATH_RECEIVER, PATH_SENDER, SCRUB_RECEIVER, SCRUB_SENDER

    node = parse_node("L1KV0.v")
    assert PATH_SENDER(node) and PATH_RECEIVER(node)
    assert not SCRUB_SENDER(node) and not SCRUB_RECEIVER(node)


# ------------------------------------------------------------------------------------------ shapes


def test_shapes_read_kv_heads_from_configs():
    llama = {"model_type": "llama", "num_hidden_layers": 30, "num_attention_heads": 9, "hidden_size": 576,
             "intermediate_size": 1536, "vocab_size": 49152, "num_key_value_heads": 3}  # fmt: skip
    assert shape_from_config(llama).n_kv_heads == 3
    assert shape_from_config({**llama, "num_key_value_heads": 9}).n_kv_heads is None  # no sharing
    gpt2 = {"model_type": "gpt2", "n_layer": 2, "n_head": 4, "n_embd": 16, "vocab_size": 50}
    assert shape_from_config(gpt2).n_kv_heads is None


def _gguf(path: Path, meta: dict[str, int | str]) -> Path:
    """A GGUF v3 file with a metadata header and no tensors."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta)))
    for key, value in meta.items():
        out += struct.pack("<Q", len(key)) + key.encode()
        if isinstance(value, str):
            out += struct.pack("<IQ", 8, len(value)) + value.encode()
        else:
            out += struct.pack("<II", 4, value)
    path.write_bytes(bytes(out))
    return path


def test_gguf_header_gives_kv_heads(tmp_path):
    meta: dict[str, int | str] = {
        "general.architecture": "llama",
        "llama.block_count": 30,
        "llama.attention.head_count": 9,
        "llama.attention.head_count_kv": 3,
        "llama.embedding_length": 576,
        "llama.feed_forward_length": 1536,
    }
    assert gguf_shape(_gguf(tmp_path / "a.gguf", meta)).n_kv_heads == 3
    del meta["llama.attention.head_count_kv"]
    assert gguf_shape(_gguf(tmp_path / "b.gguf", meta)).n_kv_heads is None


# ------------------------------------------------------------------------------------------ sites


def _hooked_metric(model, prompts, hook: str, edit) -> torch.Tensor:
    """The metric of the clean prompts with ``edit(act)`` applied in place on ``hook`` (plain hooks)."""

    def fn(act, hook):
        act = act.clone()
        edit(act)
        return act

    with torch.no_grad():
        logits = model.run_with_hooks(prompts.tokens, fwd_hooks=[(hook, fn)])
    ends = prompts.lengths - 1
    return logit_diff(logits[torch.arange(len(prompts)), ends], prompts)


def _heads_of(node: str) -> list[int]:
    return {"L1H3.v": [3], "L1KV1.v": [2, 3], "L1H0.k": [0], "L1KV0.k": [0, 1]}[node.split("@")[0]]


@pytest.mark.parametrize("node", ["L1H3.v", "L1KV1.v", "L1KV0.k@a"])
def test_scaling_edits_one_copy_or_the_whole_group(setup, node):
    model, prompts = setup
    ctx = _ctx(model, prompts)
    site = resolve_site(parse_node(node), prompts, ctx.adapter.arch)
    assert list(site.heads) == _heads_of(node)
    alphas = [-1.0, 0.0, 2.0]
    grid = scale_sweep(ctx, [site], alphas)
    rows = torch.arange(len(prompts))
    for a, alpha in enumerate(alphas):

        def scale(act, alpha=alpha):
            for h in _heads_of(node):
                if "@" in node:
                    act[rows, prompts.positions("a"), h] *= alpha
                else:
                    act[:, :, h] *= alpha

        expected = _hooked_metric(model, prompts, hook_name(parse_node(node)), scale)
        torch.testing.assert_close(grid[a], expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("method", ["zero", "mean"])
@pytest.mark.parametrize("node", ["L1H3.v@b", "L1KV1.v@b", "L1KV1.v"])
def test_ablation_edits_one_copy_or_the_whole_group(setup, node, method):
    model, prompts = setup
    ctx = _ctx(model, prompts)
    got = ablate(ctx, [resolve_site(parse_node(node), prompts, ctx.adapter.arch)], method)
    hook = hook_name(parse_node(node))
    with torch.no_grad():
        _, cache = model.run_with_cache(prompts.tokens, names_filter=[hook])
    clean, rows, pos = cache[hook], torch.arange(len(prompts)), prompts.positions("b")
    real = (torch.arange(clean.shape[1])[None, :] < prompts.lengths[:, None]).float()[..., None, None]
    per_position = (clean * real).sum(0) / real.sum(0).clamp(min=1)

    def ablate_ref(act):
        for h in _heads_of(node):
            if "@" in node:
                act[rows, pos, h] = 0.0 if method == "zero" else clean[rows, pos, h].mean(0)
            else:
                act[:, :, h] = 0.0 if method == "zero" else per_position[:, h]

    expected = _hooked_metric(model, prompts, hook, ablate_ref)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_one_copy_and_the_shared_head_differ(setup):
    """Not vacuous: editing head 3's copy alone is not editing the shared head (heads 2 and 3)."""
    model, prompts = setup
    ctx = _ctx(model, prompts)
    arch = ctx.adapter.arch
    one = ablate(ctx, [resolve_site(parse_node("L1H3.v"), prompts, arch)], "zero")
    shared = ablate(ctx, [resolve_site(parse_node("L1KV1.v"), prompts, arch)], "zero")
    both = ablate(ctx, [resolve_site(parse_node(n), prompts, arch) for n in ("L1H2.v", "L1H3.v")], "zero")
    assert (one - shared).abs().max() > 1e-3
    torch.testing.assert_close(shared, both)


def test_kv_site_without_gqa_or_arch_is_an_error(setup):
    from tests.helpers.tiny import make_tiny_model

    _, prompts = setup
    with pytest.raises(ValueError, match="needs the model's arch"):
        resolve_site(parse_node("L1KV0.v"), prompts)
    mha = make_tiny_model(n_layers=2, n_heads=4, d_model=16)
    ctx = _ctx(mha, make_prompt_set(mha.cfg.d_vocab))
    with pytest.raises(ValueError, match=r"no grouped-query attention; use L1H0\.v"):
        resolve_site(parse_node("L1KV0.v"), ctx.prompts, ctx.adapter.arch)
    with pytest.raises(CircuitSpecError, match="no grouped-query attention"):
        path_patch_jobs(ctx, [PathJob.chain([parse_node("embed"), parse_node("L1KV0.v")])])


# ------------------------------------------------------------------------------------------ paths

JOBS = [
    ["L0H1", "L1H2.q"],
    ["L0H1", "L1H2.k"],
    ["embed", "L1H2.v"],
    ["L0H0", "L1KV0.v"],
    ["L0H3@a", "L2KV1.k@a"],
    ["L0KV1.v", "L2H0.q"],  # a shared head sends what its group's heads write
    ["L0H0", "L1KV1.v", "logits"],  # through the shared value head and on to the logits
    ["MLP0@a", "L1KV0.v@a", "L2H1.v", "logits"],
]


def _naive(model, prompts, job, **kwargs) -> torch.Tensor:
    positions = {role: prompts.positions(role) for role in [*prompts.role_positions, "end"]}
    tokens, corrupt = prompts.tokens, prompts.corrupt_tokens
    logits = naive_path_patch(model, tokens, corrupt, job, positions=positions, **kwargs)
    return logit_diff(logits, prompts)


@pytest.mark.parametrize("mlps", ["frozen", "recomputed"])
@pytest.mark.parametrize("direction", ["noising", "denoising"])
def test_path_patching_through_qkv_and_shared_heads_matches_plain_hooks(setup, mlps, direction):
    model, prompts = setup
    jobs = [PathJob.chain([parse_node(n) for n in chain]) for chain in JOBS]
    patched, base, _ = path_patch_jobs(_ctx(model, prompts), jobs, mlps=mlps, direction=direction)
    for row, job in enumerate(jobs):
        expected = _naive(model, prompts, job, mlps=mlps, direction=direction)
        torch.testing.assert_close(patched[row], expected, atol=1e-4, rtol=1e-4, msg=f"job {JOBS[row]}")
        assert (expected - base).abs().max() > 1e-4, f"job {JOBS[row]} moves nothing"


def test_receiving_through_the_shared_head_is_receiving_through_every_copy(setup):
    """``A -> L1KV0.v`` equals ``A -> L1H0.v`` and ``A -> L1H1.v`` patched jointly, not one copy alone."""
    model, prompts = setup
    n = {name: parse_node(name) for name in ("L0H0", "L1KV0.v", "L1H0.v", "L1H1.v")}
    jobs = [
        PathJob.chain([n["L0H0"], n["L1KV0.v"]]),
        PathJob.joint([(n["L0H0"], n["L1H0.v"]), (n["L0H0"], n["L1H1.v"])]),
        PathJob.chain([n["L0H0"], n["L1H0.v"]]),
    ]
    patched, _, _ = path_patch_jobs(_ctx(model, prompts), jobs)
    torch.testing.assert_close(patched[0], patched[1])
    assert (patched[0] - patched[2]).abs().max() > 1e-4


def test_reports_name_every_head_of_a_shared_group():
    from circuitspec.engine.architecture import Architecture
    from circuitspec.engine.planner import _name_shared_heads
    from circuitspec.measurement import Measurement

    arch = Architecture(n_layers=3, n_heads=4, d_model=16, d_head=4, d_vocab=40, n_kv_heads=2)
    measurement = Measurement("c", "scaling", 4)
    _name_shared_heads(measurement, [parse_node("L1KV1.v@b"), parse_node("L1H0.v")], arch)
    assert measurement.extra["shared_kv_heads"] == {"L1KV1.v@b": ["L1H2.v@b", "L1H3.v@b"]}
    plain = Measurement("d", "scaling", 4)
    _name_shared_heads(plain, [parse_node("L1H0.v")], arch)
    assert "shared_kv_heads" not in plain.extra
