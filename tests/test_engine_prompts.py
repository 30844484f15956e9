"""Prompt sets: role positions from character offsets, right padding, corrupted twins, errors,
and batched (padded) runs equal to unbatched ones."""

from __future__ import annotations

import pytest
import torch

from circuitspec.engine.context import RunContext
from circuitspec.engine.metrics import (
    desired_prob,
    kl_from_clean,
    logit_diff,
    make_metric,
    normalized_recovery,
    prob_diff,
)
from circuitspec.engine.prompts import build_prompt_set, derangement
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.schema import CorruptionSpec, DataSpec, TemplateSpec
from tests.helpers.tiny import make_tiny_model, make_tokenizer

torch.set_num_threads(1)

ROWS = [
    {"adj": "good", "adj2": "bad", "who": "John"},
    {"adj": "great", "adj2": "awful", "who": "Mary"},
    {"adj": "nice", "adj2": "terrible", "who": "she"},
    {"adj": "fine", "adj2": "poor", "who": "he"},
]


def data(**corrupt) -> DataSpec:
    return DataSpec(
        templates=[
            TemplateSpec(
                id="long",
                text="{who} : the movie was {adj} but the {thing:film} is",
                desired=" {adj}",
                undesired=" {adj2}",
                corrupt=CorruptionSpec(**corrupt) if corrupt else None,
            ),
            TemplateSpec(id="short", text="{who} : {thing:show} is", desired=" {adj}", undesired=" {adj2}"),
        ],
        rows=ROWS,
        corrupt=CorruptionSpec(set={"adj": "{adj2}"}),
    )


def test_roles_padding_and_twins():
    tok = make_tokenizer()
    prompts = build_prompt_set(data(set={"adj": "{adj2}"}), ROWS, tok, None, seed=0, n=None)
    assert len(prompts) == 8
    assert prompts.template_ids == ["long"] * 4 + ["short"] * 4
    assert prompts.lengths.tolist() == [11] * 4 + [5] * 4  # BOS + words
    assert (prompts.tokens[:, 0] == tok.bos_id).all()
    assert (prompts.tokens[4:, 5:] == tok.pad_id).all()
    assert sorted(prompts.role_positions) == ["thing", "who"]  # 'adj' is not in every template
    for i in range(len(prompts)):
        row = prompts.rows[i]
        assert tok.id_to_token(int(prompts.tokens[i, prompts.positions("who")[i]])) == row["who"]
        assert tok.id_to_token(int(prompts.tokens[i, prompts.positions("end")[i]])) == "is"
        assert prompts.desired[i] == tok.token_to_id(row["adj"])
        assert prompts.undesired[i] == tok.token_to_id(row["adj2"])
    assert prompts.corrupt_texts[0] == "John : the movie was bad but the film is"
    assert prompts.corrupt_texts[4] == prompts.texts[4]  # 'short' has no adj slot to corrupt


def test_shuffle_is_a_seeded_derangement_and_corrupt_answers():
    tok = make_tokenizer()
    spec = data(shuffle=["who"], desired=" {adj2}", undesired=" {adj}")
    a = build_prompt_set(spec, ROWS, tok, ["long"], seed=5, n=None)
    b = build_prompt_set(spec, ROWS, tok, ["long"], seed=5, n=None)
    assert torch.equal(a.corrupt_tokens, b.corrupt_tokens)
    for i in range(4):
        who = a.corrupt_texts[i].split()[0]
        assert who != ROWS[i]["who"] and who in {r["who"] for r in ROWS}
    assert torch.equal(a.corrupt_desired, a.undesired) and torch.equal(a.corrupt_undesired, a.desired)
    perm = derangement(7, 3)
    assert sorted(perm.tolist()) == list(range(7)) and all(perm[i] != i for i in range(7))


def test_sampling_rows_is_seeded():
    tok = make_tokenizer()
    a = build_prompt_set(data(), ROWS, tok, ["short"], seed=1, n=2)
    b = build_prompt_set(data(), ROWS, tok, ["short"], seed=1, n=2)
    assert len(a) == 2 and a.rows == b.rows


def test_one_line_errors_name_template_and_row():
    tok = make_tokenizer()
    with pytest.raises(CircuitSpecError) as err:
        build_prompt_set(data(set={"adj": "{adj} {adj2}"}), ROWS, tok, ["long"], seed=0, n=None)
    assert "template 'long', row 0" in str(err.value) and "equal lengths" in str(err.value)
    assert "\n" not in str(err.value)
    rows = [{**ROWS[0], "adj": "good film"}, *ROWS[1:]]
    with pytest.raises(CircuitSpecError) as err:
        build_prompt_set(data(), rows, tok, ["short"], seed=0, n=None)
    assert "template 'short', row 0" in str(err.value) and "' good film' is 2 tokens" in str(err.value)


@pytest.mark.parametrize("norm", ["LN", "LNPre"])
def test_batched_right_padded_equals_unbatched(norm):
    tok = make_tokenizer()
    prompts = build_prompt_set(data(), ROWS, tok, None, seed=0, n=None)
    model = make_tiny_model(2, 2, 16, norm, d_vocab=tok.vocab_size, seed=3)
    ctx = RunContext(model, prompts, metric=logit_diff)
    logits, _ = ctx.clean()
    for metric in (logit_diff, prob_diff, desired_prob):
        batched = metric(logits, prompts)
        for i in range(len(prompts)):
            alone = model(prompts.tokens[i : i + 1, : int(prompts.lengths[i])])[0, -1].detach()
            good, bad = int(prompts.desired[i]), int(prompts.undesired[i])
            probs = alone.softmax(-1)
            expected = {
                logit_diff: alone[good] - alone[bad],
                prob_diff: probs[good] - probs[bad],
                desired_prob: probs[good],
            }[metric]
            assert batched[i].item() == pytest.approx(expected.item(), abs=1e-4)
    kl = kl_from_clean(logits, prompts)
    assert kl(logits, prompts).abs().max().item() < 1e-6
    corrupt_logits, _ = ctx.corrupted()
    assert (kl(corrupt_logits, prompts) >= -1e-6).all()
    assert make_metric("kl", lambda: logits, prompts)(corrupt_logits, prompts).sum() > 0
    assert ctx.counter.forward_passes == 2 * len(prompts)
    assert ctx.counter.tokens == 2 * int(prompts.lengths.sum())
    recovery = normalized_recovery(
        torch.tensor([1.0, 0.5]), torch.tensor([2.0, 1.0]), torch.tensor([0.0, 0.0])
    )
    assert recovery.tolist() == [0.5, 0.5]


def test_reference_only_templates_have_no_answers_and_logit_metrics_say_so():
    """Encoder templates may omit answers; a logit metric on them is a one-line error naming the template."""
    tok = make_tokenizer()
    spec = DataSpec(
        templates=[
            TemplateSpec(id="asked", text="{who} : the movie was {adj}", reference="the {adj} film"),
            TemplateSpec(
                id="answered",
                text="{who} : {thing:show} is",
                desired=" {adj}",
                undesired=" {adj2}",
                reference="the {adj} show",
            ),
        ],
        rows=ROWS,
    )
    answered = build_prompt_set(spec, ROWS, tok, ["answered"], seed=0)
    assert answered.has_answers
    mixed = build_prompt_set(spec, ROWS, tok, None, seed=0)
    assert not mixed.has_answers
    assert mixed.desired.tolist()[:4] == [-1] * 4 and mixed.desired.tolist()[4:] == answered.desired.tolist()
    metric = make_metric("logit_diff", lambda: None, mixed)  # built for every claim, fails only when read
    with pytest.raises(
        ValueError, match=r"^metric 'logit_diff' compares .* no 'desired' / 'undesired' answers: asked$"
    ):
        metric(torch.zeros(len(mixed), 3, tok.vocab_size), mixed)
    # metrics that never read answers stay available
    model = make_tiny_model(d_vocab=tok.vocab_size)
    ctx = RunContext(model, mixed, metric=logit_diff)
    kl = make_metric("kl", lambda: ctx.clean()[0], mixed)
    torch.testing.assert_close(kl(ctx.clean()[0], mixed), torch.zeros(len(mixed)), atol=1e-6, rtol=0)
