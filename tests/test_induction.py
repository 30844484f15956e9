"""The ``induction`` claim: scores on a head built to be an induction head, and against plain hooks.

References: (1) a hand-built attention-only model whose L0H0 attends to the previous token and copies
its identity, and whose L1H0 attends where that copied identity equals its own token (an induction
head by construction; the other heads have zero weights, so they attend uniformly); (2) a random
model scored here with ``run_with_cache`` and an explicit loop over second-half positions.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.interventions.induction import induction_scores, measure, repeated_sequences
from circuitspec.engine.metrics import logit_diff
from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import HeadGrid
from circuitspec.spec.induction_claim import InductionClaim
from circuitspec.spec.nodes import parse_node
from tests.helpers.tiny import make_prompt_set, make_tiny_model, make_tokenizer

VOCAB, N_CTX = 40, 24


def _induction_model():
    """2 layers × 2 heads, attention-only, no norms; residual = [token one-hot | position one-hot |
    previous token one-hot]. L0H0: previous-token head writing the previous token's one-hot; L1H0:
    query = own token, key = previous token, so it attends to the token after an earlier occurrence."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    d_model, d_head, big = 2 * VOCAB + N_CTX, max(VOCAB, N_CTX), 40.0
    cfg = HookedTransformerConfig(
        n_layers=2, n_heads=2, d_model=d_model, d_head=d_head, d_vocab=VOCAB, n_ctx=N_CTX,
        attn_only=True, normalization_type=None, act_fn="relu", device="cpu", dtype=torch.float32,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(cfg)
    tok, pos, prev = slice(0, VOCAB), slice(VOCAB, VOCAB + N_CTX), slice(VOCAB + N_CTX, d_model)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
        model.embed.W_E[:, tok] = torch.eye(VOCAB)
        model.pos_embed.W_pos[:, pos] = torch.eye(N_CTX)
        a0, a1 = model.blocks[0].attn, model.blocks[1].attn
        scale = big * d_head**0.5  # TransformerLens divides scores by sqrt(d_head)
        a0.W_Q[0, pos, :N_CTX] = torch.eye(N_CTX) * scale  # query at p ...
        a0.W_K[0, pos, :N_CTX] = torch.eye(N_CTX, N_CTX).roll(1, dims=1)  # ... matches key at p − 1
        a0.W_V[0, tok, :VOCAB] = torch.eye(VOCAB)
        a0.W_O[0, :VOCAB, prev] = torch.eye(VOCAB)
        a1.W_Q[0, tok, :VOCAB] = torch.eye(VOCAB) * scale  # own token ...
        a1.W_K[0, prev, :VOCAB] = torch.eye(VOCAB)  # ... equals the key's previous token
    model.eval()
    return model


def _ctx(model, d_vocab: int) -> RunContext:
    return RunContext(model, make_prompt_set(d_vocab), metric=logit_diff)


def _claim(**fields) -> InductionClaim:
    return InductionClaim.model_validate({"id": "ind", "kind": "induction", "expect": "mean > 0.4", **fields})


def _graph(*targets: str) -> SimpleNamespace:
    return SimpleNamespace(targets=lambda claim_id: [parse_node(t) for t in targets])


def test_repeated_sequences_are_seeded_distinct_and_repeated():
    tokens = repeated_sequences(5, 8, 30, seed=3, bos=1, avoid=(0, 1))
    assert tokens.shape == (5, 17)
    assert torch.equal(tokens, repeated_sequences(5, 8, 30, seed=3, bos=1, avoid=(0, 1)))
    assert not torch.equal(tokens, repeated_sequences(5, 8, 30, seed=4, bos=1, avoid=(0, 1)))
    assert torch.all(tokens[:, 0] == 1)
    first, second = tokens[:, 1:9], tokens[:, 9:]
    assert torch.equal(first, second)
    assert all(len(set(row.tolist())) == 8 for row in first)  # no repeats inside a half
    assert not torch.isin(first, torch.tensor([0, 1])).any()
    with pytest.raises(CircuitSpecError, match="seq_len 40"):
        repeated_sequences(2, 40, 30, seed=0)


def test_the_built_induction_head_scores_near_one_and_the_others_low():
    model = _induction_model()
    ctx = _ctx(model, VOCAB)
    ctx.tokenizer = make_tokenizer()  # BOS = 1 first (without it, L0H0 at position 0 reads its own token)
    claim = _claim(seq_len=10, sequences=6, seed=5)
    m = measure(ctx, claim, _graph("L1H0"), seed=0)
    assert m.n_prompts == 6 and m.arrays["value"].shape == (6,)
    assert m.arrays["value"].min() > 0.95  # every sequence: almost all attention on the induction stripe
    grid = next(p for p in m.plots if isinstance(p, HeadGrid)).values
    assert len(grid) == 2 and len(grid[0]) == 2
    assert grid[1][0] > 0.95
    # L0H0 attends to the previous token, one before the induction target; zero-weight heads are uniform
    assert max(grid[0][0], grid[0][1], grid[1][1]) < 0.2
    assert ctx.counter.forward_passes == 6  # one pass per sequence, nothing else
    assert ctx.counter.tokens == 6 * 21  # BOS + two halves of 10


def test_scores_equal_an_independent_reading_of_the_patterns():
    model = make_tiny_model(n_layers=2, n_heads=3, d_model=24, d_vocab=50, n_ctx=32, seed=2)
    ctx = _ctx(model, 50)
    seq_len = 7
    tokens = repeated_sequences(4, seq_len, 50, seed=1, bos=1)
    scores = induction_scores(ctx, tokens, seq_len)
    _, cache = model.run_with_cache(tokens)
    for layer in range(2):
        pattern = cache["pattern", layer]  # [n, heads, q, k]
        expected = torch.zeros(4, 3)
        for i in range(seq_len):  # second-half token i sits at 1 + seq_len + i; its first copy at 1 + i
            expected += pattern[:, :, 1 + seq_len + i, 2 + i]
        torch.testing.assert_close(scores[:, layer], expected / seq_len, rtol=1e-5, atol=1e-6)


def test_several_targets_average_per_sequence():
    model = make_tiny_model(n_layers=2, n_heads=2, d_model=16, d_vocab=50, seed=0)
    claim = _claim(seq_len=5, sequences=3)
    m = measure(_ctx(model, 50), claim, _graph("L0H1", "L1H0"), seed=9)
    tokens = repeated_sequences(3, 5, 50, seed=9)  # no tokenizer in this context: no BOS
    scores = induction_scores(_ctx(model, 50), tokens, 5)
    expected = ((scores[:, 0, 1] + scores[:, 1, 0]) / 2).double().numpy()
    assert m.arrays["value"] == pytest.approx(expected, rel=1e-6)
    assert m.extra["induction_seed"] == 9


def _validate(tmp_path: Path, claim: str) -> str:
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis

    toy = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"
    (tmp_path / "data").symlink_to(toy.parent / "data")
    path = tmp_path / "toy.yaml"
    path.write_text(toy.read_text() + claim)
    with pytest.raises(CircuitSpecError) as info:
        compile_hypothesis(load_hypothesis(path))
    return str(info.value)


@pytest.mark.parametrize(
    ("claim", "fragment"),
    [
        ("  - {id: i1, kind: induction, targets: L0H0@end, expect: mean > 0.4}\n", "without @role"),
        ("  - {id: i2, kind: induction, targets: MLP0, expect: mean > 0.4}\n", "induction targets are heads"),
        ("  - {id: i3, kind: induction, targets: L0H0, seq_len: 4000, expect: mean > 0.4}\n", "context"),
        ("  - {id: i4, kind: induction, expect: mean > 0.4}\n", "needs at least one target"),
    ],
)
def test_validate_refuses_bad_induction_claims_in_one_line(tmp_path: Path, claim: str, fragment: str):
    message = _validate(tmp_path, claim)
    assert fragment in message and "\n" not in message


def test_templates_without_answers_are_fine_for_an_induction_claim(tmp_path: Path):
    """The claim reads its own random sequences, so a hypothesis whose templates have no answers compiles."""
    import shutil

    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis

    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / "hypotheses" / "zoo" / "data" / "induction.jsonl", tmp_path / "induction.jsonl")
    (tmp_path / "h.yaml").write_text(
        "name: no_answers\nmodel: {bundled: zoo.induction}\n"
        "data:\n  file: induction.jsonl\n  templates:\n    - {id: plain, text: '{f0} {a} {b}'}\n"
        "claims:\n  - {id: ind, kind: induction, targets: L1H1, seq_len: 4, expect: mean > 0.4}\n",
        encoding="utf-8",
    )
    graph = compile_hypothesis(load_hypothesis(tmp_path / "h.yaml"))
    assert [n.text for n in graph.targets("ind")] == ["L1H1"]
