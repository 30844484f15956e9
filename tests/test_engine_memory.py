"""Memory: shared runs keep end-token logits only and what the claims ask for, chunked under the budget;
a prompt set's caches are freed after the last claim reading them; the logit lens unembeds only the
answer columns; faithfulness edits share one copy of their values."""

from __future__ import annotations

import textwrap

import pytest
import torch

from circuitspec.engine import planner
from circuitspec.engine.context import RunContext
from circuitspec.engine.edits import copies_per_pass
from circuitspec.engine.interventions.faithfulness import circuits_only, complement_edits
from circuitspec.engine.interventions.logit_lens import lens_sites, logit_lens, residual_hook
from circuitspec.engine.memory import ENV_VAR, memory_budget
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.models import LoadedModel, shape_of
from circuitspec.engine.sites import resolve_site
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.spec.loader import load_hypothesis, load_rows
from circuitspec.spec.nodes import parse_node
from tests.helpers.tiny import make_prompt_set, make_tiny_model, make_tokenizer

torch.set_num_threads(1)
ATOL = 1e-5

HYPOTHESIS = """
name: tiny_memory
model: {bundled: tiny}
data:
  rows:
    - {who: John, adj: good, adj2: bad}
    - {who: Mary, adj: great, adj2: awful}
    - {who: she, adj: nice, adj2: terrible}
  corrupt:
    set: {adj: "{adj2}"}
  templates:
    - {id: long, text: "{who} : the movie was {adj} but the film is", desired: " {adj}", undesired: " {adj2}"}
    - {id: short, text: "{who} : it was {adj} . it is", desired: " {adj}", undesired: " {adj2}"}
    - {id: other, text: "{who} : that was {adj} . that is", desired: " {adj}", undesired: " {adj2}"}
claims:
  - {id: both_ablate, kind: ablation, targets: [L1H0], method: zero, data: [long, short], expect: "mean < 0"}
  - {id: long_patch, kind: activation_patching, targets: ["resid_pre1@adj"], data: [long], expect: "mean > 0"}
  - {id: other_scale, kind: scaling, targets: ["L1H0.v@adj"], alphas: [0, 2], data: [other],
     expect: "mean increases with alpha"}
  - {id: long_lens, kind: logit_lens, data: [long], expect: "mean increases with layer"}
  - {id: other_ablate, kind: ablation, targets: [MLP0], method: mean, data: [other], expect: "mean < 0"}
"""


def _tiny():
    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, d_vocab=40, seed=5)
    return model, make_prompt_set(40, lengths=(6, 8, 5, 7, 8, 6), seed=11)


def test_shared_run_logits_are_end_tokens_only():
    model, prompts = _tiny()
    ctx = RunContext(model, prompts, metric=logit_diff)
    logits, _ = ctx.clean()
    assert logits.shape == (len(prompts), model.cfg.d_vocab)  # [batch, vocab], never [batch, pos, vocab]
    with torch.no_grad():
        full = model(prompts.tokens)
    ends = full[torch.arange(len(prompts)), prompts.lengths - 1]
    torch.testing.assert_close(logits, ends, atol=ATOL, rtol=0)


def test_shared_run_in_chunks_equals_one_pass(monkeypatch):
    model, prompts = _tiny()
    names = ["blocks.1.attn.hook_z", "blocks.2.attn.hook_pattern", "blocks.0.hook_resid_pre"]
    whole = RunContext(model, prompts, metric=logit_diff)
    want_logits, want = whole.clean(names)
    monkeypatch.setenv(ENV_VAR, "1e-9")  # one byte: one prompt per pass
    chunked = RunContext(model, prompts, metric=logit_diff)
    assert chunked.prompts_per_pass() == 1
    got_logits, got = chunked.clean(names)
    torch.testing.assert_close(got_logits, want_logits, atol=ATOL, rtol=0)
    for name in names:
        torch.testing.assert_close(got[name], want[name], atol=ATOL, rtol=0)
    assert chunked.counter.forward_passes == len(prompts)  # counted once per prompt, as one pass
    assert chunked.counter.tokens == int(prompts.lengths.sum())


def test_declared_runs_cache_only_what_is_asked_and_undeclared_keep_every_stream():
    model, prompts = _tiny()
    declared = RunContext(model, prompts, metric=logit_diff)
    declared.declare(["blocks.1.attn.hook_z"])
    assert set(declared.clean()[1]) == {"blocks.1.attn.hook_z"}
    ad_hoc = RunContext(model, prompts, metric=logit_diff)
    streams = set(ad_hoc.adapter.arch.stream_hooks)
    assert streams <= set(ad_hoc.clean(["blocks.1.attn.hook_z"])[1])


def test_memory_budget_from_env_var(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "0.5")
    assert memory_budget() == 2**29
    monkeypatch.setenv(ENV_VAR, "lots")
    with pytest.raises(ValueError, match=ENV_VAR):
        memory_budget()
    monkeypatch.delenv(ENV_VAR)
    assert memory_budget() > 0
    model, prompts = _tiny()
    ctx = RunContext(model, prompts, metric=logit_diff)
    monkeypatch.setenv(ENV_VAR, "1e-9")
    assert copies_per_pass(ctx, 10) == 1
    monkeypatch.setenv(ENV_VAR, "1")
    assert copies_per_pass(ctx, 10) == 10


@pytest.mark.parametrize("norm", ["LN", "RMS"])
def test_logit_lens_answer_columns_equal_the_full_vocabulary(norm):
    model = make_tiny_model(n_layers=3, n_heads=2, d_model=16, normalization_type=norm, d_vocab=40, seed=3)
    prompts = make_prompt_set(40, lengths=(6, 8, 5, 7), seed=2)
    ctx = RunContext(model, prompts, metric=logit_diff)
    adapter = ctx.adapter
    ctx.clean([residual_hook(label) for label, _ in lens_sites(3)])  # reads its end logits: every word

    def no_full_vocabulary(*args, **kwargs):
        raise AssertionError("the logit lens unembedded the whole vocabulary for logit_diff")

    full_readout = adapter.unembed_at
    adapter.unembed_at = no_full_vocabulary  # type: ignore[method-assign]
    got = logit_lens(ctx)
    adapter.unembed_at = full_readout  # type: ignore[method-assign]
    _, cache = ctx.clean()
    rows, ends = torch.arange(len(prompts)), prompts.lengths - 1
    for label, _ in lens_sites(3):
        resid = cache[residual_hook(label)][rows, ends][:, None]
        with torch.no_grad():
            logits = model.unembed(model.ln_final(resid))[:, 0]  # every word, then the metric
        torch.testing.assert_close(got[label], logit_diff(logits, prompts), atol=ATOL, rtol=0)
    # a metric reading the whole distribution still gets it
    wrapped = RunContext(model, prompts, metric=lambda logits, p, corrupt=False: logit_diff(logits, p))
    for label, values in logit_lens(wrapped).items():
        torch.testing.assert_close(values, got[label], atol=ATOL, rtol=0)


def test_faithfulness_edits_share_their_values_and_broadcast_their_masks():
    model, prompts = _tiny()
    ctx = RunContext(model, prompts, metric=logit_diff)
    circuits = [[resolve_site(parse_node(node), prompts)] for node in ("L1H0", "MLP2", "L0H1@a")]
    edits = complement_edits(ctx, circuits)
    n = len(prompts)
    for name, edit in edits.items():
        assert edit.values is not None and edit.values.shape[0] == n, name  # one copy's values
        assert edit.mask.shape[0] == 3 * n and edit.mask.shape[-1] == 1, name
    together = circuits_only(ctx, circuits)
    for c, circuit in enumerate(circuits):  # each circuit alone (no tiling) gives the same metric
        torch.testing.assert_close(together[c], circuits_only(ctx, [circuit])[0], atol=ATOL, rtol=0)


@pytest.fixture()
def tiny_run(tmp_path, monkeypatch):
    """Run the planner on a hypothesis over three prompt sets, recording claims and cache releases."""
    path = tmp_path / "tiny.yaml"
    path.write_text(textwrap.dedent(HYPOTHESIS))
    tokenizer = make_tokenizer()
    model = make_tiny_model(2, 2, 16, "LN", d_vocab=tokenizer.vocab_size, seed=5)
    loaded = LoadedModel(model, tokenizer, shape_of(model.cfg), {"source": "test"})
    hypothesis = load_hypothesis(path)
    graph = compile_hypothesis(hypothesis, shape=loaded.shape)
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
    events: list[tuple[str, object]] = []
    caches: list[dict] = []
    measure, release = planner.measure_claim, planner.release_runs

    def measured(graph, claim, loaded, prompts, counter, cache, seed=0):
        events.append(("claim", claim.id))
        caches.append(cache)
        return measure(graph, claim, loaded, prompts, counter, cache, seed=seed)

    def released(cache):
        kept = set(cache.get("clean", (None, {}))[1]) | set(cache.get("corrupt", (None, {}))[1])
        assert kept <= cache["_needed"], kept - cache["_needed"]  # nothing nobody asked for
        events.append(("release", id(cache)))
        release(cache)

    monkeypatch.setattr(planner, "measure_claim", measured)
    monkeypatch.setattr(planner, "release_runs", released)
    results = planner.run_claims(graph, loaded, rows, tmp_path, progress=False)
    return results, events, caches, graph


def test_caches_are_freed_after_the_last_claim_reading_them(tiny_run):
    results, events, caches, graph = tiny_run
    assert not any(m.error for m in results.values()), {k: m.error for k, m in results.items()}
    order = [c.id for c in graph.claims]
    by_claim = dict(zip(order, caches, strict=True))
    released = [e[1] for e in events if e[0] == "release"]
    assert len(released) == len(set(released)) == 3  # each prompt set once
    position = {event: i for i, event in enumerate(events)}

    def freed_after(cache_of: str, *claims: str) -> None:
        at = position[("release", id(by_claim[cache_of]))]
        assert all(position[("claim", c)] < at for c in claims)

    # 'other' is done after its last claim, before the run ends; 'long' slices its runs from
    # 'long + short', which must stay until 'long's last claim (the lens) is done
    freed_after("other_ablate", "other_scale", "other_ablate")
    assert position[("release", id(by_claim["other_scale"]))] == position[("claim", "other_ablate")] + 1
    freed_after("both_ablate", "both_ablate", "long_patch", "long_lens")
    assert position[("release", id(by_claim["both_ablate"]))] < position[("claim", "other_ablate")]
    for cache in caches:  # nothing is left holding activations
        assert "clean" not in cache and "corrupt" not in cache
