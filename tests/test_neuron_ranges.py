"""MLP neuron ranges as nodes (``MLP0.post[2:6]``): a group of single-neuron nodes wherever a group may stand.

References: the explicit list of neurons the range stands for (same targets), and for the engine a plain
TransformerLens hook zeroing ``hook_post[..., a:b]`` against zero-ablating the range's sites.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.ablation import ablate
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.sites import resolve_site
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.nodes import NodeSyntaxError, expand_neuron_range, parse_node
from tests.helpers.tiny import make_prompt_set, make_tiny_model

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"


def test_a_range_expands_to_its_neurons_half_open_with_the_role():
    assert expand_neuron_range("MLP3.post[10:13]@end") == [
        "MLP3.post[10]@end",
        "MLP3.post[11]@end",
        "MLP3.post[12]@end",
    ]
    assert expand_neuron_range(" MLP0.post[0:1] ") == ["MLP0.post[0]"]
    assert expand_neuron_range("MLP0.post[3]") is None and expand_neuron_range("L0H0") is None
    with pytest.raises(NodeSyntaxError, match="empty"):
        expand_neuron_range("MLP0.post[5:5]")


def _compile(tmp_path: Path, extra: str):
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis

    (tmp_path / "data").symlink_to(TOY.parent / "data")
    path = tmp_path / "toy.yaml"
    text = TOY.read_text().replace("\nnodes:\n", "\nnodes:\n  some_neurons: 'MLP0.post[0:4]'\n", 1)
    path.write_text(text + extra)
    return compile_hypothesis(load_hypothesis(path))


def test_ranges_compile_as_targets_and_group_members(tmp_path: Path):
    graph = _compile(
        tmp_path,
        "  - {id: by_range, kind: ablation, targets: 'MLP0.post[2:5]@end', expect: mean < 0}\n"
        "  - {id: by_list, kind: ablation, expect: mean < 0,\n"
        "     targets: ['MLP0.post[2]@end', 'MLP0.post[3]@end', 'MLP0.post[4]@end']}\n"
        "  - {id: by_group, kind: ablation, targets: some_neurons, expect: mean < 0}\n",
    )
    assert graph.targets("by_range") == graph.targets("by_list")
    assert [n.text for n in graph.targets("by_range")] == [
        "MLP0.post[2]@end",
        "MLP0.post[3]@end",
        "MLP0.post[4]@end",
    ]
    assert [n.index for n in graph.targets("by_group")] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("MLP0.post[5:5]", "is empty"),
        ("MLP0.post[0:100000]", "'MLP0.post[0:100000]' ends past d_mlp = 256"),
        ("MLP0.post[0:2]@nowhere", "role 'nowhere'"),
    ],
)
def test_bad_ranges_are_refused_in_one_line(tmp_path: Path, target: str, fragment: str):
    with pytest.raises(CircuitSpecError) as info:
        _compile(tmp_path, f"  - {{id: bad, kind: ablation, targets: '{target}', expect: mean < 0}}\n")
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


def test_a_range_is_not_a_path_step(tmp_path: Path):
    with pytest.raises(CircuitSpecError, match="a path step must be one node"):
        _compile(
            tmp_path,
            "  - {id: p, kind: path_patching, targets: 'MLP0.post[0:2] -> logits', expect: mean < 0}\n",
        )


def test_zero_ablating_a_range_matches_a_hook_zeroing_those_neurons():
    model = make_tiny_model(n_layers=2, n_heads=2, d_model=16, seed=7)
    prompts = make_prompt_set(model.cfg.d_vocab, seed=7)
    ctx = RunContext(model, prompts, metric=logit_diff)
    names = expand_neuron_range("MLP0.post[10:20]") or []
    sites = [resolve_site(parse_node(name), prompts, ctx.adapter.arch) for name in names]
    ours = ablate(ctx, sites, "zero")

    def zero(act, hook):
        act[..., 10:20] = 0.0
        return act

    with torch.inference_mode():
        logits = model.run_with_hooks(prompts.tokens, fwd_hooks=[("blocks.0.mlp.hook_post", zero)])
    expected = logit_diff(logits, prompts)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    assert (expected - logit_diff(model(prompts.tokens), prompts)).abs().max() > 1e-4  # the ablation matters
