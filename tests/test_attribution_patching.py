"""Attribution patching (engine/attribution_patching.py) against closed forms and activation patching.

* A linear toy: an attention-only model without norms whose queries and keys are zero, so every
  attention pattern is the uniform causal one whatever the input and the metric is affine in the
  embeddings. First-order attribution is then exact: every edge score equals the effect computed
  here by hand (matrix products over the weights, no hooks), q / k edges score exactly 0 under EAP,
  EAP-IG and EAP-IG on activations alike, and a node's score is the sum of its outgoing edges.
* The bundled toy model: per-head scores correlate (Pearson >= 0.9) with activation patching each
  head's output from the corrupted run into the clean one, computed with plain TransformerLens hooks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitspec.engine.attribution_patching import attribution_patching, edge_graph
from circuitspec.engine.context import RunContext
from circuitspec.engine.metrics import logit_diff
from tests.helpers.tiny import make_prompt_set, make_tiny_model


def _linear_model():
    model = make_tiny_model(n_layers=2, n_heads=2, d_model=8, normalization_type=None, attn_only=True, seed=3)
    with torch.no_grad():
        for block in model.blocks:
            for name in ("W_Q", "W_K", "b_Q", "b_K"):
                getattr(block.attn, name).zero_()
            block.attn.W_V.mul_(4.0)  # effects of order one, not 1e-2
        model.W_E.mul_(4.0)
        model.W_U.mul_(4.0)
    return model


def _by_hand(model, prompts):
    """Per-edge effects ``{(sender, receiver): mean over prompts}`` from the weights alone."""
    W_E, W_U = model.W_E.detach(), model.W_U.detach()
    blocks = model.blocks
    out: dict[tuple[str, str], list[float]] = {}
    for i in range(len(prompts)):
        length = int(prompts.lengths[i])
        end = length - 1
        A = torch.tril(torch.ones(length, length)) / torch.arange(1, length + 1)[:, None]  # uniform causal
        dx = W_E[prompts.corrupt_tokens[i, :length]] - W_E[prompts.tokens[i, :length]]  # W_pos cancels
        u = W_U[:, prompts.desired[i]] - W_U[:, prompts.undesired[i]]

        def through(layer: int, head: int, delta: torch.Tensor, A: torch.Tensor = A) -> torch.Tensor:
            attn = blocks[layer].attn
            return A @ delta @ attn.W_V[head].detach() @ attn.W_O[head].detach()

        def downstream(delta: torch.Tensor, layer: int, end: int = end, u: torch.Tensor = u) -> float:
            """Effect on the metric of adding ``delta`` to the stream entering ``layer``."""
            total = float(delta[end] @ u)
            if layer < 2:
                total += sum(downstream(through(layer, h, delta), layer + 1) for h in range(2))
            return total

        effects = {("embed", "logits"): float(dx[end] @ u)}
        for h in range(2):
            d0 = through(0, h, dx)
            effects[("embed", f"L0H{h}.v")] = downstream(d0, 1)
            effects[(f"L0H{h}", "logits")] = float(d0[end] @ u)
            effects[("embed", f"L1H{h}.v")] = float(through(1, h, dx)[end] @ u)
            for g in range(2):
                effects[(f"L0H{h}", f"L1H{g}.v")] = float(through(1, g, d0)[end] @ u)
        for g in range(2):
            effects[(f"L1H{g}", "logits")] = float(through(1, g, dx)[end] @ u) + sum(
                float(through(1, g, through(0, h, dx))[end] @ u) for h in range(2)
            )
        for key, value in effects.items():
            out.setdefault(key, []).append(value)
    return {key: float(np.mean(values)) for key, values in out.items()}


@pytest.fixture(scope="module")
def linear_case():
    model = _linear_model()
    prompts = make_prompt_set(model.cfg.d_vocab, lengths=(5, 7, 6, 4, 8), seed=1, n_corrupted=2)
    ctx = RunContext(model, prompts, logit_diff)
    return ctx, _by_hand(model, prompts)


@pytest.mark.parametrize("method", ["eap", "eap-ig", "eap-ig-act"])
def test_linear_toy_edges_are_exact(linear_case, method):
    ctx, expected = linear_case
    result = attribution_patching(ctx, method=method, steps=4, batch_size=2)
    totals = result.totals
    senders, receivers = result.graph.senders, result.graph.receivers
    scale = max(abs(v) for v in expected.values())
    assert scale > 0.1  # the corruption does something
    for (sender, receiver), value in expected.items():
        got = float(totals[senders.index(sender), receivers.index(receiver)])
        assert got == pytest.approx(value, abs=1e-4 * scale), (sender, receiver)
    for s, sender in enumerate(senders):  # fixed attention: queries and keys carry nothing
        for r, receiver in enumerate(receivers):
            if receiver.endswith((".q", ".k")):
                assert abs(float(totals[s, r])) < 1e-6 * scale, (sender, receiver)
    # the embedding's node score is the whole effect of the corruption: corrupted − clean
    assert result.node_scores["embed"] == pytest.approx(result.corrupt - result.clean, abs=1e-4 * scale)


@pytest.mark.parametrize("norm", ["linear", "LN"])
def test_node_score_is_the_sum_of_its_edges(linear_case, norm):
    """The stream is a sum, so the gradient at a sender's write is the sum of its readers' gradients:
    exact for any block (LayerNorm and MLPs included), not only for the linear toy."""
    ctx, _ = linear_case
    if norm == "LN":
        model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, seed=5)
        ctx = RunContext(model, make_prompt_set(model.cfg.d_vocab, seed=2), logit_diff)
    result = attribution_patching(ctx, method="eap")
    totals = result.totals
    for s, sender in enumerate(result.graph.senders):
        assert float(totals[s].sum()) == pytest.approx(result.node_scores[sender], abs=1e-5)


def test_deterministic_and_batch_independent(linear_case):
    ctx, _ = linear_case
    first = attribution_patching(ctx, method="eap-ig", steps=3, batch_size=5)
    again = attribution_patching(ctx, method="eap-ig", steps=3, batch_size=5)
    split = attribution_patching(ctx, method="eap-ig", steps=3, batch_size=2)
    assert torch.equal(first.edge_scores, again.edge_scores)
    torch.testing.assert_close(first.edge_scores, split.edge_scores, atol=1e-5, rtol=1e-4)


def test_edge_graph_is_causal():
    graph = edge_graph(2, 1)
    valid = {
        (s, r)
        for i, s in enumerate(graph.senders)
        for j, r in enumerate(graph.receivers)
        if graph.valid[i, j]
    }
    assert ("L0H0", "MLP0") in valid and ("MLP0", "L1H0.k") in valid and ("embed", "logits") in valid
    assert ("L0H0", "L0H0.q") not in valid and ("MLP0", "MLP0") not in valid and ("L1H0", "MLP0") not in valid
    parallel = edge_graph(2, 1, parallel=True)
    assert not parallel.valid[parallel.senders.index("L0H0"), parallel.receivers.index("MLP0")]


def test_bad_method_is_one_line(linear_case):
    from circuitspec.errors import CircuitSpecError

    ctx, _ = linear_case
    with pytest.raises(CircuitSpecError, match="eap"):
        attribution_patching(ctx, method="acdc")


@pytest.fixture(scope="module")
def toy_session():
    from circuitspec.discover.session import open_session

    return open_session("hypotheses/toy_sentiment.yaml")


def _activation_patching(model, prompts) -> dict[str, float]:
    """Noising by plain hooks: each head's ``hook_z`` at every position from the corrupted run."""
    rows, ends = torch.arange(len(prompts)), prompts.lengths - 1

    def metric(logits):
        last = logits[rows, ends]
        return (last[rows, prompts.desired] - last[rows, prompts.undesired]).mean()

    with torch.no_grad():
        _, corrupt = model.run_with_cache(prompts.corrupt_tokens, names_filter=lambda n: n.endswith("hook_z"))
        clean = metric(model(prompts.tokens))
        out = {}
        for layer in range(model.cfg.n_layers):
            for head in range(model.cfg.n_heads):
                name = f"blocks.{layer}.attn.hook_z"

                def patch(z, hook, head=head, name=name):
                    z[:, :, head] = corrupt[name][:, :, head]
                    return z

                out[f"L{layer}H{head}"] = float(
                    metric(model.run_with_hooks(prompts.tokens, fwd_hooks=[(name, patch)])) - clean
                )
    return out


@pytest.mark.parametrize("method", ["eap", "eap-ig"])
def test_toy_heads_agree_with_activation_patching(toy_session, method):
    reference = _activation_patching(toy_session.loaded.model, toy_session.ctx.prompts)
    result = attribution_patching(toy_session.ctx, method=method)
    scores = np.array([result.node_scores[name] for name in reference])
    patched = np.array(list(reference.values()))
    assert np.ptp(patched) > 1.0  # the label readers matter, the rest barely
    assert np.corrcoef(scores, patched)[0, 1] >= 0.9
    heads = {name: result.node_scores[name] for name in reference}
    assert set(sorted(reference, key=reference.__getitem__)[:2]) == {"L0H0", "L0H3"}  # the label readers
    assert set(sorted(heads, key=heads.__getitem__)[:2]) == {"L0H0", "L0H3"}
