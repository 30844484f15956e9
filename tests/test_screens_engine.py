"""Screens through the whole pipeline: every cell equals its single-target claim, on the toy model and
the planted zoo, and the zoo's screens name exactly the planted heads (a decoy fails).

The single-target claims are ordinary claims of the same file expanded with ``each: true``, measured
by their own kind's ``measure``; the layer × position grid is also checked against the engine's
``patching_sweep`` (one patch per layer and role, written separately).
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "hypotheses" / "zoo"

INDUCTION = """\
name: induction_screens
model: {bundled: zoo.induction}
data:
  file: data.jsonl
  templates:
    - {id: repeat, text: "{f0} {a} {b} {f1} {f2} {a2}", desired: " {b}", undesired: " {f1}"}
  corrupt: {set: {a: "{c}"}}
nodes:
  prev_token: L0H0
  induction: L1H1
  circuit: [prev_token, induction]
  heads: [L0H0, L0H1, L0H2, L0H3, L0H4, L0H5, L0H6, L0H7, L1H0, L1H1, L1H2, L1H3, L1H4, L1H5, L1H6, L1H7]
  grid: [resid_pre0@a, resid_pre0@b, resid_pre0@a2, resid_pre1@a, resid_pre1@b, resid_pre1@a2]
claims:
  - {id: dla, kind: screen, of: attribution, targets: all_heads, expect: "only [induction] > 0.2"}
  - {id: dla_decoy, kind: screen, of: attribution, targets: all_heads, expect: "only [induction, L0H1] > 0.2"}
  - {id: zero, kind: screen, of: ablation, method: zero, targets: all_heads, expect: "only [circuit] < -0.2"}
  - id: zero_decoy
    kind: screen
    of: ablation
    method: zero
    targets: all_heads
    expect: "only [L0H1, L1H1] < -1"
  - id: quiet
    kind: screen
    of: ablation
    method: zero
    targets: all_heads
    expect: "none outside circuit < -0.05"
  - id: resample
    kind: screen
    of: ablation
    method: resample
    targets: all_heads
    expect: "only [circuit] < -1"
  - id: looks
    kind: screen
    of: attention
    targets: all_heads
    layers: 1
    destination: b
    expect: "only [L1H1] > 0.5"
  - id: patch
    kind: screen
    of: activation_patching
    targets: all_resid_pre
    positions: [a, b, a2]
    expect: "only [resid_pre0@a, resid_pre1@b] recovered > 0.5"
  - {id: one_dla, kind: attribution, targets: heads, each: true, expect: mean > 0}
  - {id: one_zero, kind: ablation, method: zero, targets: heads, each: true, expect: mean > 0}
  - {id: one_resample, kind: ablation, method: resample, targets: heads, each: true, expect: mean > 0}
  - {id: one_looks, kind: attention, targets: [L1H0, L1H1], destination: b, each: true, expect: mean > 0}
  - {id: one_patch, kind: activation_patching, targets: grid, each: true, expect: mean > 0}
"""

LABEL_MOVER = """\
name: label_mover_screens
model: {bundled: zoo.label_mover}
data:
  file: data.jsonl
  templates:
    - {id: review, text: "{f1} {label} {f2} {f3} so", desired: " {ans}", undesired: " {anti}"}
  corrupt: {set: {label: "{label_flip}"}}
nodes:
  components: [L0H0, L0H1, L1H0, L1H1, MLP0, MLP1]
claims:
  - {id: dla, kind: screen, of: attribution, targets: [all_heads, all_mlps], expect: "only [L1H0] > 0.2"}
  - id: dla_decoy
    kind: screen
    of: attribution
    targets: [all_heads, all_mlps]
    expect: "only [L1H0, L1H1] > 0.2"
  - id: mean_abl
    kind: screen
    of: ablation
    targets: [all_heads, all_mlps]
    expect: "none outside [L1H0, MLP0] < -0.2"
  - {id: one_mean_abl, kind: ablation, targets: components, each: true, expect: mean < 0}
"""

TOY = """\
name: toy_screens
model: {bundled: toy_sentiment}
data:
  file: data.jsonl
  n: 12
  seed: 0
  corrupt: {set: {s_con: "{s_ori}"}}
  templates:
    - {id: sub_minimal, text: "{s_ori}: {w_ori}. {s_con}:", desired: " {w_con}", undesired: " {w_ori}"}
nodes:
  heads: [L0H0, L0H1, L0H2, L0H3, L1H0, L1H1, L1H2, L1H3]
  sites: [MLP0, MLP1]
  grid: [resid_pre0@s_ori, resid_pre0@s_con, resid_pre1@w_ori, resid_pre1@s_con, resid_pre1@end]
claims:
  - {id: dla, kind: screen, of: attribution, targets: [all_heads, all_mlps], expect: "only [L0H0] > 0.2"}
  - {id: mean_abl, kind: screen, of: ablation, targets: [all_heads, all_mlps], expect: "only [L0H0] < -0.2"}
  - id: looks
    kind: screen
    of: attention
    targets: all_heads
    destination: s_con
    expect: "only [L0H0] > 0.3"
  - id: patch
    kind: screen
    of: activation_patching
    targets: all_resid_pre
    positions: all_roles
    expect: "only [resid_pre0@s_con] recovered > 0.5"
  - {id: one_dla, kind: attribution, targets: [heads, sites], each: true, expect: mean > 0}
  - {id: one_mean_abl, kind: ablation, targets: [heads, sites], each: true, expect: mean > 0}
  - {id: one_looks, kind: attention, targets: heads, destination: s_con, each: true, expect: mean > 0}
  - {id: one_patch, kind: activation_patching, targets: grid, each: true, expect: mean > 0}
"""

CASES = {
    "induction": (INDUCTION, ZOO / "data" / "induction.jsonl"),
    "label_mover": (LABEL_MOVER, ZOO / "data" / "label_mover.jsonl"),
    "toy": (TOY, ROOT / "hypotheses" / "data" / "toy_sentiment_pairs.jsonl"),
}
# screen id -> the `each` claim whose expanded claims are its single-target claims
SINGLES = {
    "induction": {
        "dla": "one_dla",
        "zero": "one_zero",
        "resample": "one_resample",
        "looks": "one_looks",
        "patch": "one_patch",
    },
    "label_mover": {"mean_abl": "one_mean_abl"},
    "toy": {"dla": "one_dla", "mean_abl": "one_mean_abl", "looks": "one_looks", "patch": "one_patch"},
}


@cache
def _run(name: str, folder: str) -> Any:
    import torch

    from circuitspec.pipeline import run_verification

    torch.set_num_threads(1)
    text, data = CASES[name]
    base = Path(folder) / name
    base.mkdir(parents=True, exist_ok=True)
    shutil.copy(data, base / "data.jsonl")
    (base / "h.yaml").write_text(text, encoding="utf-8")
    return run_verification(base / "h.yaml", progress=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("screens"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_screens_equal_their_single_target_claims_cell_by_cell(name: str, folder: str) -> None:
    result = _run(name, folder)
    errors = {cid: m.error for cid, m in result.measurements.items() if m.error}
    assert not errors, errors
    for screen_id, each_id in SINGLES[name].items():
        screen = result.measurements[screen_id]
        cells = {str(point.x): point.arrays for point in screen.sweep}
        singles = {cid: m for cid, m in result.measurements.items() if cid.startswith(f"{each_id}[")}
        assert singles, each_id
        for claim_id, single in singles.items():
            cell = claim_id[len(each_id) + 1 : -1]
            assert cell in cells, (screen_id, cell)
            assert set(cells[cell]) == set(single.arrays), (screen_id, cell)
            for array, values in single.arrays.items():
                np.testing.assert_allclose(
                    cells[cell][array], values, rtol=1e-5, atol=1e-5, err_msg=f"{screen_id} {cell} {array}"
                )


def test_the_planted_zoo_screens_name_exactly_the_planted_heads(folder: str) -> None:
    verdicts = _run("induction", folder).verdicts
    # (`resample` is checked cell by cell only: on its 0 / −4 values the bootstrap-t interval of a
    # single ablation claim is itself unstable at some levels, a statistics-layer matter)
    planted = ("dla", "zero", "quiet", "looks", "patch")
    assert {k: verdicts[k] for k in planted} == dict.fromkeys(planted, "pass")
    assert verdicts["dla_decoy"] == "fail"  # L0H1 attends like L0H0 but writes nothing
    assert verdicts["zero_decoy"] == "fail"
    mover = _run("label_mover", folder).verdicts
    assert (mover["dla"], mover["dla_decoy"], mover["mean_abl"]) == ("pass", "fail", "pass")


def test_the_screen_outcome_carries_every_cell_and_the_reason_names_the_decoy(folder: str) -> None:
    result = _run("induction", folder)
    outcomes = {o.claim_id: o for o in result.outcomes}
    dla = outcomes["dla"]
    assert [p.x for p in dla.points] == [f"L{layer}H{head}" for layer in range(2) for head in range(8)]
    values = {p.x: p.estimate for p in dla.points}
    assert values["L1H1"] == pytest.approx(4.0, abs=1e-3)  # docs/zoo.md: the induction head writes +4
    assert all(abs(v) < 1e-6 for cell, v in values.items() if cell != "L1H1")
    assert "L0H1" in outcomes["dla_decoy"].reason
    patch = outcomes["patch"]
    assert {p.x for p in patch.points} == {
        f"resid_pre{layer}@{r}" for layer in (0, 1) for r in ("a", "b", "a2")
    }


def test_the_layer_by_position_screen_matches_patching_sweep() -> None:
    """A resid_pre × role screen on a tiny random model against ``patching_sweep`` (one patch per cell)."""
    import torch

    from circuitspec.engine.context import RunContext
    from circuitspec.engine.interventions import screen
    from circuitspec.engine.interventions.activation_patching import patching_sweep
    from circuitspec.engine.metrics import logit_diff
    from circuitspec.spec.nodes import parse_node
    from circuitspec.spec.screens import ScreenClaim
    from tests.helpers.tiny import make_prompt_set, make_tiny_model

    torch.set_num_threads(1)
    model = make_tiny_model(d_vocab=40, n_layers=3, n_heads=2, d_model=16, normalization_type="LN", seed=0)
    prompts = make_prompt_set(40, lengths=(6, 8, 5, 7, 8), seed=3)
    ctx = RunContext(model, prompts, metric=logit_diff)
    roles = [*sorted(prompts.role_positions), "end"]
    claim = ScreenClaim.model_validate(
        {"id": "grid", "kind": "screen", "of": "activation_patching", "targets": "all_resid_pre",
         "positions": roles, "expect": "only [resid_pre0] > 0"}
    )  # fmt: skip
    cells = [parse_node(f"resid_pre{layer}@{role}") for layer in range(3) for role in roles]
    graph = SimpleNamespace(targets=lambda claim_id: cells)
    with torch.no_grad():
        measured = screen.measure(ctx, claim, graph, seed=0)
        grid, sweep_roles = patching_sweep(ctx, "resid_pre", roles=roles, direction="denoising")
    assert sweep_roles == roles
    points = {str(p.x): p.arrays for p in measured.sweep}
    for layer in range(3):
        for j, role in enumerate(roles):
            cell = points[f"resid_pre{layer}@{role}"]
            np.testing.assert_allclose(cell["intervened"], grid[layer, j].numpy(), atol=1e-4)
            np.testing.assert_allclose(cell["value"], cell["intervened"] - cell["corrupt"], atol=1e-9)
    assert measured.extra["screen"]["positions"][0] == ["L0", roles[0]]


DIFFERENCE = """\
name: toy_difference
model: {bundled: toy_sentiment}
data:
  file: data.jsonl
  n: 16
  seed: 0
  corrupt: {set: {s_con: "{s_ori}"}}
  templates:
    - id: to_negative
      text: "{s_ori}: {w_ori}. {s_con}:"
      desired: " {w_con}"
      undesired: " {w_ori}"
      where: {direction: pos_to_neg}
    - id: to_positive
      text: "{s_ori}: {w_ori}. {s_con}:"
      desired: " {w_con}"
      undesired: " {w_ori}"
      where: {direction: neg_to_pos}
nodes:
  heads: [L0H0, L0H1, L0H2, L0H3, L1H0, L1H1, L1H2, L1H3]
claims:
  - id: diff
    kind: screen
    of: attribution
    targets: all_heads
    data: [to_negative]
    versus: [to_positive]
    expect: "none outside [] > 100"
  - {id: neg, kind: attribution, targets: heads, data: [to_negative], each: true, expect: mean > 0}
  - {id: pos, kind: attribution, targets: heads, data: [to_positive], each: true, expect: mean > 0}
"""


def test_a_difference_of_groups_is_each_cells_difference_of_single_claim_means(folder: str) -> None:
    """Tutorial step 2: per head, mean attribution on one template group minus the other's, with the
    unpaired (Welch) standard error, rebuilt here from the two groups' single-target claims."""
    CASES["difference"] = (DIFFERENCE, ROOT / "hypotheses" / "data" / "toy_sentiment_pairs.jsonl")
    result = _run("difference", folder)
    assert not {cid: m.error for cid, m in result.measurements.items() if m.error}
    screen = result.measurements["diff"]
    labels = screen.prompt_labels
    for point in screen.sweep:
        head = str(point.x)
        first = result.measurements[f"neg[{head}]"]
        second = result.measurements[f"pos[{head}]"]
        a, b = first.arrays["value"], second.arrays["value"]
        assert len(labels) == a.size + b.size
        delta = a.mean() - b.mean()
        values = point.arrays["value"]
        assert values.mean() == pytest.approx(delta, abs=1e-6)
        n = values.size
        welch = np.sqrt(a.var(ddof=0) / a.size + b.var(ddof=0) / b.size)
        assert values.std(ddof=0) / np.sqrt(n) == pytest.approx(welch, rel=1e-6)
        expected = dict(zip(first.prompt_labels, n / a.size * (a - a.mean()) + delta, strict=True))
        expected |= dict(zip(second.prompt_labels, -n / b.size * (b - b.mean()) + delta, strict=True))
        got = dict(zip(labels, values, strict=True))
        assert set(got) == set(expected)
        for text, value in got.items():
            assert value == pytest.approx(expected[text], abs=1e-5), (head, text)
