"""A prompt set inside a larger one reads its shared runs from the larger set's: same values, fewer passes."""

from __future__ import annotations

import pytest
import torch

from circuitspec.engine.architecture import Architecture
from circuitspec.engine.context import PassCounter, RunContext
from circuitspec.engine.metrics import logit_diff
from circuitspec.engine.planner import needed_hooks
from circuitspec.engine.prompts import build_prompt_set
from circuitspec.engine.shared_runs import link_to_superset

HOOKS = ["blocks.0.attn.hook_z", "blocks.1.attn.hook_pattern", "blocks.1.hook_mlp_out"]


@pytest.fixture(scope="module")
def sets(toy):
    graph, loaded, rows = toy
    data = graph.hypothesis.data
    every = [t.id for t in data.templates]
    some = graph.templates("label_path_through_value")
    assert set(some) < set(every)

    def build(templates):
        return build_prompt_set(data, rows, loaded.tokenizer, templates, seed=data.seed, n=data.n)

    return loaded, build(some), build(every), graph


def _context(loaded, prompts, counter, cache):
    return RunContext(loaded.model, prompts, logit_diff, counter, cache)


def test_linked_runs_equal_the_prompt_sets_own_runs(sets):
    loaded, small, large, _ = sets
    counter = PassCounter()
    large_ctx = _context(loaded, large, counter, {})
    linked_cache: dict = {}
    assert link_to_superset(linked_cache, small, large_ctx) == ["clean", "corrupt"]
    linked = _context(loaded, small, counter, linked_cache)
    own = _context(loaded, small, PassCounter(), {})
    for run in ("clean", "corrupt"):
        got_logits, got = linked.shared_run(run, HOOKS)
        want_logits, want = own.shared_run(run, HOOKS)
        ends = small.lengths - 1
        rows = torch.arange(len(small))
        torch.testing.assert_close(got_logits[rows, ends], want_logits[rows, ends], atol=1e-5, rtol=1e-5)
        for name in HOOKS:
            assert got[name].shape == want[name].shape, name
            real = torch.arange(got[name].shape[1])[None, :] < small.lengths[:, None]  # padding differs
            if name.endswith("hook_pattern"):
                torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=1e-5)
            else:
                torch.testing.assert_close(got[name][real], want[name][real], atol=1e-5, rtol=1e-5)


def test_a_shared_run_is_run_and_counted_once(sets):
    loaded, small, large, graph = sets
    counter = PassCounter()
    large_cache = {"_needed": needed_hooks(graph, ["circuit_faithful"], Architecture.of(loaded.model))}
    large_ctx = _context(loaded, large, counter, large_cache)
    small_cache: dict = {}
    link_to_superset(small_cache, small, large_ctx)
    _context(loaded, small, counter, small_cache).clean(HOOKS)
    assert counter.forward_passes == len(large)  # the larger set's clean run, charged to who asked
    large_ctx.clean(HOOKS)
    _context(loaded, small, counter, small_cache).clean(HOOKS)
    assert counter.forward_passes == len(large)


def test_a_prompt_set_with_other_prompts_is_not_linked(sets):
    loaded, small, large, _ = sets
    other = _context(loaded, small, PassCounter(), {})
    assert link_to_superset({}, large, other) == []
