"""Prompt shards (``verify --ray --shard-prompts K``) without Ray: the toy hypothesis measured in 3
shards in-process and merged gives the unsharded run's per-prompt arrays, verdicts and intervals.

What was seen (2-core CPU, float32 toy model): every claim's arrays are bit-equal to the unsharded
run's except, for some claims, a few ulps of float32 on an edited pass run over a smaller batch (the
largest: 3.3e-6 on patched logit differences of about 8, in 59 of 384 prompts of one layer-1
activation-patching claim). So arrays are compared to float32 resolution relative to the size of the
claim's metric (1e-6 of its largest value), and intervals exactly (1e-9) where the arrays are
bit-equal, to the same resolution where they are not.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from circuitspec import pipeline
from circuitspec.claims.registry import splits_over_prompts
from circuitspec.distributed.shards import merge_measurements, merge_verifications
from circuitspec.errors import CircuitSpecError
from circuitspec.measurement import Measurement, RunCost, SweepPoint, TargetValues

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "hypotheses" / "toy_sentiment.yaml"
SHARDS = 3
MEAN_ABLATIONS = ["word_carriers_serve_transformation", "unused_head_control"]  # read the whole set's mean
FLOAT32 = 1e-6  # relative: a few float32 ulps


@pytest.fixture(scope="module")
def runs():
    """The unsharded toy run and its 3 shards merged, on one model load."""
    from circuitspec.spec.loader import load_hypothesis

    loaded = load_hypothesis(TOY)
    model = pipeline.load_hypothesis_model(loaded.spec.model, loaded.base_dir, loaded.spec.model.checkpoint)
    whole = pipeline.run_verification(TOY, progress=False, loaded_model=model)
    parts = [
        pipeline.run_verification(TOY, progress=False, loaded_model=model, shard=(i, SHARDS))
        for i in range(SHARDS)
    ]
    return whole, parts, merge_verifications(parts), model


def _scale(m: Measurement) -> float:
    """The size of the metric a claim's arrays are differences of (float32 noise is relative to it)."""
    return max([1.0, *(float(np.nanmax(np.abs(v))) for v in m.arrays.values() if v.size)])


def _bit_equal(a: Measurement, b: Measurement) -> bool:
    pairs = [(a.arrays, b.arrays)] + [(p.arrays, q.arrays) for p, q in zip(a.sweep, b.sweep, strict=True)]
    return all(np.array_equal(x[k], y[k], equal_nan=True) for x, y in pairs for k in x)


@pytest.mark.slow
def test_merged_shards_give_the_unsharded_arrays(runs) -> None:
    whole, _, merged, _ = runs
    assert list(merged.measurements) == [c.id for c in whole.graph.claims]
    for claim in whole.graph.claims:
        a, b = whole.measurements[claim.id], merged.measurements[claim.id]
        assert a.error is None and b.error is None, (claim.id, a.error, b.error)
        assert (b.n_prompts, b.prompt_labels) == (a.n_prompts, a.prompt_labels), claim.id
        assert sorted(b.arrays) == sorted(a.arrays)
        noise = FLOAT32 * _scale(a)
        for name, values in a.arrays.items():
            np.testing.assert_allclose(b.arrays[name], values, rtol=0, atol=noise, err_msg=claim.id)
        assert [p.x for p in b.sweep] == [p.x for p in a.sweep]
        for p, q in zip(a.sweep, b.sweep, strict=True):
            for name, values in p.arrays.items():
                np.testing.assert_allclose(q.arrays[name], values, rtol=0, atol=noise)
        if a.random_baseline is not None:  # whole claims: measured as the unsharded run measures them
            np.testing.assert_array_equal(b.random_baseline, a.random_baseline)
    split = [c.id for c in whole.graph.claims if splits_over_prompts(c)]
    assert set(MEAN_ABLATIONS) <= set(split) and len(split) >= 10  # most of the work really was split
    assert all(_bit_equal(whole.measurements[i], merged.measurements[i]) for i in MEAN_ABLATIONS)


@pytest.mark.slow
def test_merged_shards_give_the_unsharded_verdicts_and_intervals(runs) -> None:
    whole, _, merged, _ = runs
    assert merged.verdicts == whole.verdicts
    for a, b in zip(whole.outcomes, merged.outcomes, strict=True):
        exact = _bit_equal(whole.measurements[a.claim_id], merged.measurements[a.claim_id])
        tolerance = 1e-9 if exact else FLOAT32 * _scale(whole.measurements[a.claim_id])
        assert (a.estimate is None) == (b.estimate is None)
        if a.estimate is not None:
            assert abs(a.estimate - b.estimate) <= tolerance, a.claim_id
        assert (a.ci is None) == (b.ci is None)
        if a.ci is not None:
            assert abs(a.ci.low - b.ci.low) <= tolerance and abs(a.ci.high - b.ci.high) <= tolerance, (
                a.claim_id
            )
        assert a.p_adjusted == pytest.approx(b.p_adjusted, abs=tolerance)


@pytest.mark.slow
def test_whole_claims_run_once_and_split_claims_on_every_shard(runs) -> None:
    whole, parts, _, _ = runs
    for claim in whole.graph.claims:
        holders = [i for i, part in enumerate(parts) if claim.id in part.measurements]
        if splits_over_prompts(claim):
            assert holders == list(range(SHARDS)), claim.id
            sizes = [parts[i].measurements[claim.id].n_prompts for i in holders]
            assert max(sizes) - min(sizes) <= 1 and sum(sizes) == whole.measurements[claim.id].n_prompts
        else:
            assert len(holders) == 1, claim.id
    counts = [
        sum(not splits_over_prompts(c) for c in p.graph.claims if c.id in p.measurements) for p in parts
    ]
    assert max(counts) - min(counts) <= 1  # whole claims dealt round-robin


@pytest.mark.slow
def test_a_shard_mean_ablation_reads_the_whole_sets_mean(runs) -> None:
    """Planted contrast: the shard's own mean would give other values, so the merge's equality with the
    unsharded run is owed to the link to the whole prompt set."""
    from circuitspec.engine.context import PassCounter
    from circuitspec.engine.planner import _prompt_sets, measure_claim, prompt_key
    from circuitspec.engine.shards import shard_rows
    from circuitspec.spec.loader import load_rows

    whole, parts, _, model = runs
    graph, claim_id = whole.graph, MEAN_ABLATIONS[0]
    claim = graph.claim(claim_id)
    rows = load_rows(graph.hypothesis.data, whole.hypothesis.base_dir, hypothesis=whole.hypothesis)
    prompts = _prompt_sets(graph, model, rows)[prompt_key(graph, claim)][0]
    block = prompts.take(shard_rows(len(prompts), (1, SHARDS)))
    own_mean = measure_claim(graph, claim, model, block, PassCounter(), {}, seed=whole.seed)
    linked = parts[1].measurements[claim_id]
    assert own_mean.error is None and own_mean.prompt_labels == linked.prompt_labels
    assert np.max(np.abs(own_mean.arrays["value"] - linked.arrays["value"])) > 1e-3
    offset = shard_rows(len(prompts), (1, SHARDS)).start
    n = len(block)
    np.testing.assert_array_equal(
        linked.arrays["value"], whole.measurements[claim_id].arrays["value"][offset : offset + n]
    )


def _part(values: list[float], labels: list[str], **changes) -> Measurement:
    m = Measurement("c", "scaling", len(values), prompt_labels=labels, seed=3)
    m.arrays = {"value": np.array(values)}
    m.sweep = [SweepPoint(0.5, {"value": np.array(values) * 2})]
    m.plots = [TargetValues({"L0H0": np.array(values)})]
    m.cost = RunCost(len(values), 10 * len(values), 1.0, 0.5)
    return dataclasses.replace(m, **changes)


def test_merge_concatenates_in_shard_order_and_sums_costs() -> None:
    merged = merge_measurements([_part([1.0, 2.0], ["a", "b"]), _part([3.0], ["c"])])
    assert merged.n_prompts == 3 and merged.prompt_labels == ["a", "b", "c"]
    assert merged.arrays["value"].tolist() == [1.0, 2.0, 3.0]
    assert merged.sweep[0].x == 0.5 and merged.sweep[0].arrays["value"].tolist() == [2.0, 4.0, 6.0]
    assert merged.plots[0].values["L0H0"].tolist() == [1.0, 2.0, 3.0]  # type: ignore[union-attr]
    assert merged.cost == RunCost(3, 30, 2.0, 1.0) and merged.seed == 3


def test_a_shard_that_failed_makes_the_claim_an_error_not_a_partial_result() -> None:
    failed = Measurement("c", "scaling", 1, error="out of memory on an edited pass", seed=3)
    merged = merge_measurements([_part([1.0, 2.0], ["a", "b"]), failed])
    assert merged.error == "out of memory on an edited pass" and merged.arrays == {} and merged.n_prompts == 3


def test_shards_that_disagree_are_refused_in_one_line() -> None:
    other = _part([3.0], ["c"], extra={"note": 1})
    with pytest.raises(CircuitSpecError, match="c: its notes differ between prompt shards"):
        merge_measurements([_part([1.0], ["a"]), other])
    swept = _part([3.0], ["c"], sweep=[SweepPoint(1.0, {"value": np.array([3.0])})])
    with pytest.raises(CircuitSpecError, match="c: the prompt shards swept different points"):
        merge_measurements([_part([1.0], ["a"]), swept])


@pytest.mark.parametrize("n", [0, 1, 2, 7, 64])
def test_shard_blocks_cover_the_prompts_once_in_order(n: int) -> None:
    from circuitspec.engine.shards import shard_rows

    blocks = [list(range(n))[shard_rows(n, (i, SHARDS))] for i in range(SHARDS)]
    assert [i for block in blocks for i in block] == list(range(n))
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def test_a_bad_shard_is_one_line() -> None:
    from circuitspec.engine.shards import check_shard

    with pytest.raises(CircuitSpecError, match=r"prompt shard 3 of 3: write \(index, count\)"):
        check_shard((3, 3))


REFERENCED = (
    "  - {id: ref_mean, kind: ablation, targets: [L0H0@end, MLP0], data: [sub_minimal], split: all,\n"
    "     mean_from: {data: [neg_minimal], split: all}, expect: mean < 0}\n"
    "  - {id: every_position_mean, kind: ablation, targets: [MLP0], data: [sub_minimal], split: all,\n"
    "     expect: mean < 0}\n"
)


def test_mean_from_and_per_position_means_survive_sharding(tmp_path: Path) -> None:
    """A ``mean_from`` claim keeps its separate reference set on every shard, and an unpinned node's
    per-position mean is the whole set's: 2 shards merged equal the unsharded measurements."""
    import shutil

    from circuitspec.engine.planner import run_claims
    from circuitspec.engine.shards import run_claims_on_shard
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis, load_rows

    shutil.copytree(TOY.parent / "data", tmp_path / "data")
    (tmp_path / "toy.yaml").write_text(TOY.read_text() + REFERENCED)
    hypothesis = load_hypothesis(tmp_path / "toy.yaml")
    loaded = pipeline.load_hypothesis_model(hypothesis.spec.model, hypothesis.base_dir)
    graph = compile_hypothesis(hypothesis, shape=loaded.shape)
    graph.claims = [graph.claim("ref_mean"), graph.claim("every_position_mean")]
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
    whole = run_claims(graph, loaded, rows, tmp_path, progress=False)
    parts = [run_claims_on_shard(graph, loaded, rows, tmp_path, (i, 2)) for i in range(2)]
    for claim_id, measured in whole.items():
        merged = merge_measurements([part[claim_id] for part in parts])
        assert measured.error is None and merged.error is None, (measured.error, merged.error)
        assert [len(part[claim_id].prompt_labels) for part in parts] == [measured.n_prompts // 2] * 2
        for name, values in measured.arrays.items():
            np.testing.assert_allclose(merged.arrays[name], values, rtol=0, atol=FLOAT32 * _scale(measured))


def test_take_cuts_every_per_prompt_field_alike() -> None:
    """``PromptSet.take``, the one subsetting of a prompt set: a slice and the same rows as indices
    agree, reindexing follows the indices (scrubbing's repeats included), padding width is kept."""
    import torch

    from circuitspec.engine.prompts import PromptSet

    n = 5
    prompts = PromptSet(
        tokens=torch.arange(n * 4).reshape(n, 4),
        corrupt_tokens=-torch.arange(n * 4).reshape(n, 4),
        lengths=torch.tensor([4, 3, 4, 2, 4]),
        role_positions={"w": torch.tensor([1, 1, 2, 0, 3])},
        desired=torch.arange(n),
        undesired=torch.arange(n) + 10,
        corrupt_desired=torch.arange(n) + 20,
        corrupt_undesired=torch.arange(n) + 30,
        rows=[{"i": str(i)} for i in range(n)],
        template_ids=[f"t{i}" for i in range(n)],
        texts=[f"p{i}" for i in range(n)],
    )
    by_slice, by_index = prompts.take(slice(1, 4)), prompts.take([1, 2, 3])
    for name in ("tokens", "corrupt_tokens", "lengths", "desired", "undesired", "corrupt_desired"):
        assert torch.equal(getattr(by_slice, name), getattr(by_index, name)), name
    assert by_slice.texts == by_index.texts == ["p1", "p2", "p3"] and by_slice.corrupt_texts == []
    again = prompts.take([4, 0, 0])
    assert again.template_ids == ["t4", "t0", "t0"] and again.tokens.shape == (3, 4)
    assert again.role_positions["w"].tolist() == [3, 1, 1]
    assert again.corrupt_undesired.tolist() == [34, 30, 30]
