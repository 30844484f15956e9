"""Screens without a model: the grammar, compiling against a shape, and the verdict's set rule.

The engine side (each cell equals its single-target claim; the planted zoo's verdicts) is in
``tests/test_screens_engine.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitspec.errors import CircuitSpecError
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.measurement import Measurement, SweepPoint
from circuitspec.spec.expectations import ExpectationSyntaxError
from circuitspec.spec.loader import load_hypothesis
from circuitspec.spec.nodes import NodeSyntaxError, parse_layer_range
from circuitspec.spec.screens import parse_screen_expectation
from circuitspec.stats import evaluate_claim, evaluate_family
from circuitspec.stats.family import ClaimRequest

# --------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("text", "which", "names", "statistic", "op", "threshold"),
    [
        ("only [L0H0, L1H1] > 0.2", "only", ("L0H0", "L1H1"), "mean", ">", 0.2),
        ("only circuit recovered >= 0.9", "only", ("circuit",), "recovered", ">=", 0.9),
        ("none  outside [L0H0] < -0.05", "none_outside", ("L0H0",), "mean", "<", -0.05),
        ("none outside [] median <= 1e-2", "none_outside", (), "median", "<=", 0.01),
    ],
)
def test_screen_expectations_parse(text, which, names, statistic, op, threshold) -> None:
    parsed = parse_screen_expectation(text)
    assert (parsed.which, parsed.names, parsed.statistic, parsed.op) == (which, names, statistic, op)
    assert parsed.threshold == pytest.approx(threshold)
    cell = parsed.cell_expectation()
    assert (cell.form, cell.statistic, cell.op, cell.threshold) == (
        "compare",
        statistic,
        op,
        parsed.threshold,
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("mean > 0.2", "cannot parse screen expectation"),
        ("only [L0H0] == 0.2", "cannot parse screen expectation"),
        ("only [L0H0] average > 0.2", "unknown cell statistic 'average'"),
        ("only [] > 0.2", "names no cell"),
        ("only [L0H0,,L1H1] > 0.2", "empty name"),
    ],
)
def test_bad_screen_expectations_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(ExpectationSyntaxError, match=fragment):
        parse_screen_expectation(text)


def test_layer_ranges() -> None:
    assert parse_layer_range("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_layer_range(5) == [5]
    assert parse_layer_range(" 2 - 4 ") == [2, 3, 4]
    for bad in ("3-1", "a", "1-", True):
        with pytest.raises(NodeSyntaxError):
            parse_layer_range(bad)


# --------------------------------------------------------------------------- compiling

S = "{id: s, kind: screen, "  # the start of every one-line screen claim below

ZOO = Path(__file__).resolve().parents[1] / "hypotheses" / "zoo"
HEADER = """\
name: screens
model: {bundled: zoo.induction}
data:
  file: induction.jsonl
  templates:
    - {id: repeat, text: "{f0} {a} {b} {f1} {f2} {a2}", desired: " {b}", undesired: " {f1}"}
  corrupt: {set: {a: "{c}"}}
nodes:
  prev_token: L0H0
  induction: L1H1
  circuit: [prev_token, induction]
paths:
  key_path: "L0H0 -> L1H1.k -> logits"
claims:
"""


def _compile(tmp_path: Path, claims: str):
    (tmp_path / "induction.jsonl").write_text((ZOO / "data" / "induction.jsonl").read_text())
    path = tmp_path / "h.yaml"
    path.write_text(HEADER + claims)
    return path, compile_hypothesis(load_hypothesis(path))


def test_a_screen_expands_to_its_cells_without_drawing_them(tmp_path: Path) -> None:
    claims = """\
  - {id: heads, kind: screen, of: attribution, targets: all_heads, expect: "only [induction] > 0.2"}
  - id: grid
    kind: screen
    of: activation_patching
    targets: [all_resid_pre]
    layers: "1"
    positions: all_roles
    expect: "only [resid_pre1@b] recovered > 0.5"
  - {id: mover, kind: screen, of: ablation, targets: all_heads, layers: 1, expect: "only [L1H1] < -1"}
"""
    _, graph = _compile(tmp_path, claims)
    heads = [n.text for n in graph.targets("heads")]
    assert heads == [f"L{layer}H{head}" for layer in range(2) for head in range(8)]
    roles = ["f0", "a", "b", "f1", "f2", "a2", "end"]
    assert [n.text for n in graph.targets("grid")] == [f"resid_pre1@{r}" for r in roles]
    assert [n.text for n in graph.targets("mover")] == [f"L1H{h}" for h in range(8)]
    assert graph.claim("heads").named_cells == ("L1H1",)
    # the circuit drawing holds the hypothesis' own nodes and paths, none of the 31 cells
    assert set(graph.digraph.nodes) == {"L0H0", "L1H1", "L1H1.k", "logits"}


def test_a_name_without_a_role_names_its_component_at_every_position(tmp_path: Path) -> None:
    claims = """\
  - id: grid
    kind: screen
    of: ablation
    targets: all_heads
    positions: [b, end]
    expect: "none outside [L1H1, L0H0@b] < -0.5"
"""
    _, graph = _compile(tmp_path, claims)
    assert graph.claim("grid").named_cells == ("L1H1@b", "L1H1@end", "L0H0@b")


@pytest.mark.parametrize(
    ("claim", "line_text", "fragment"),
    [
        (
            S + 'of: attribution, targets: all_heads, expect: "only [L0H9] > 0.2"}',
            "expect",
            "'L0H9' is not a cell of this screen",
        ),
        (
            S + 'of: attribution, targets: all_heads, layers: 1, expect: "only [L0H1] > 0"}',
            "expect",
            "'L0H1' is not a cell of this screen",
        ),
        (
            S + 'of: attribution, targets: all_heads, layers: 0-5, expect: "only [L0H1] > 0"}',
            "layers",
            "layer 5 out of range for a model with 2 layers",
        ),
        (
            S + 'of: attention, destination: b, targets: all_resid_pre, expect: "only [x] > 0"}',
            "targets",
            "attention targets must be heads",
        ),
        (
            S + 'of: ablation, targets: all_heads, positions: [nope], expect: "only [a] < 0"}',
            "positions",
            "role 'nope' (screen position) is not defined",
        ),
        (
            S + 'of: attention, destination: end, source: b, targets: all_heads, expect: "only [a] > 0"}',
            "destination",
            "cannot attend forward",
        ),
        (
            S + 'of: attribution, targets: all_heads, versus: [nope], expect: "only [a] > 0"}',
            "versus",
            "unknown template or tag 'nope'",
        ),
        (
            S + 'of: attribution, targets: all_heads, versus: [repeat], expect: "only [a] > 0"}',
            "versus",
            "template 'repeat' is in both groups",
        ),
        (
            S + 'of: attribution, targets: all_heads, expect: "only [L0H0 -> L1H1] > 0"}',
            "expect",
            "is not a node name",
        ),
    ],
)
def test_screen_errors_point_at_the_yaml_line(
    tmp_path: Path, claim: str, line_text: str, fragment: str
) -> None:
    with pytest.raises(CircuitSpecError) as info:
        _compile(tmp_path, f"  - {claim}\n")
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'h.yaml'}:{len(HEADER.splitlines()) + 1}:")
    column = int(message.split(":")[2])  # at the value of the key that is wrong
    assert claim[: column - 5].rstrip("[ ").endswith(f"{line_text}:"), claim[column - 5 :]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("targets: [L0H0]", "'L0H0' is not a screen target"),
        ("targets: all_heads, direction: noising", "'direction' is for activation_patching screens"),
        ("targets: all_heads, versus: [t]", "'versus' is for attribution screens"),
        ("targets: all_heads, each: true", "leave out 'each'"),
        ("targets: all_heads, random_baseline: {n: 5}", "no random baseline"),
        ("targets: all_heads, expect2: x", "expect2"),
    ],
)
def test_screen_fields_are_checked_by_the_loader(tmp_path: Path, extra: str, fragment: str) -> None:
    claim = f'  - {{id: s, kind: screen, of: ablation, {extra}, expect: "only [L0H0] < 0"}}\n'
    with pytest.raises(CircuitSpecError, match=fragment) as info:
        _compile(tmp_path, claim)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ('expect: "only [L1H1] recovered > 0.5"', "recovered needs clean and corrupted runs"),
        ('versus: [repeat], expect: "only [L1H1] median > 0"', "judged on its mean"),
    ],
)
def test_an_attribution_screen_refuses_what_it_cannot_judge(tmp_path: Path, extra: str, fragment: str):
    with pytest.raises(CircuitSpecError, match=fragment):
        _compile(tmp_path, f"  - {{id: s, kind: screen, of: attribution, targets: all_heads, {extra}}}\n")


# --------------------------------------------------------------------------- the verdict's rule


def _screen(cells: dict[str, np.ndarray], named: list[str], family: str = "holm") -> Measurement:
    n = len(next(iter(cells.values())))
    positions = [["L0", c] for c in cells]
    extra = {"screen": {"of": "attribution", "cells": list(cells), "positions": positions, "named": named}}
    extra["screen"]["cell_family"] = family
    sweep = [SweepPoint(c, {"value": v}) for c, v in cells.items()]
    return Measurement("s", "screen", n, sweep=sweep, sweep_variable="cell", extra=extra)


def _cells(rng: np.random.Generator, means: dict[str, float], sd: float = 0.01, n: int = 40) -> dict:
    return {c: m + sd * rng.standard_normal(n) for c, m in means.items()}


def test_only_passes_on_exactly_the_named_set_and_fails_on_a_decoy() -> None:
    rng = np.random.default_rng(0)
    cells = _cells(rng, {"A": 1.0, "B": 0.8, "C": 0.0, "D": 0.01})
    assert evaluate_claim(_screen(cells, ["A", "B"]), "only [A, B] > 0.2").verdict == "pass"
    decoy = evaluate_claim(_screen(cells, ["A", "B", "C"]), "only [A, B, C] > 0.2")
    assert decoy.verdict == "fail" and "named cell(s) C miss mean > 0.2" in decoy.reason
    missing = evaluate_claim(_screen(cells, ["A"]), "only [A] > 0.2")
    assert missing.verdict == "fail" and "unnamed cell(s) B clear" in missing.reason
    outcome = evaluate_claim(_screen(cells, ["A", "B"]), "only [A, B] > 0.2")
    assert outcome.estimate == 2 and [p.x for p in outcome.points] == list(cells)
    assert outcome.details["screen"]["states"] == {"A": "clears", "B": "clears", "C": "misses", "D": "misses"}


def test_none_outside_judges_only_the_unnamed_cells() -> None:
    rng = np.random.default_rng(1)
    cells = _cells(rng, {"A": 1.0, "B": 0.0, "C": -0.3})
    assert evaluate_claim(_screen(cells, ["A"]), "none outside [A] > 0.05").verdict == "pass"
    assert evaluate_claim(_screen(cells, []), "none outside [] > 0.05").verdict == "fail"
    noisy = {**cells, "B": 0.05 + 0.5 * rng.standard_normal(40)}  # its interval spans 0.05
    outcome = evaluate_claim(_screen(noisy, ["A"]), "none outside [A] > 0.05")
    assert outcome.verdict == "inconclusive" and "B" in outcome.reason


def _marginal(rng: np.random.Generator, n: int = 40) -> np.ndarray:
    """Values whose 95% interval clears 0.2 but whose 1 − 0.05/16 interval does not."""
    x = rng.standard_normal(n)
    x = (x - x.mean()) / x.std(ddof=1)
    return 0.2 + 0.11 + 0.25 * x  # mean 0.31, standard error ≈ 0.04


def test_cells_are_corrected_as_a_family() -> None:
    rng = np.random.default_rng(2)
    marginal = _marginal(rng)
    alone = Measurement("m", "attribution", marginal.size, arrays={"value": marginal})
    single = evaluate_claim(alone, "mean > 0.2")
    assert single.verdict == "pass"  # at 95% on its own
    corrected = evaluate_claim(alone, "mean > 0.2", confidence=1 - 0.05 / 16)
    assert corrected.verdict == "inconclusive"  # the reference: the same cell at 1 − α/16
    cells = {"M": marginal, **_cells(rng, {f"Z{i}": 0.0 for i in range(15)})}
    outcome = evaluate_claim(_screen(cells, ["M"], "bonferroni"), "only [M] > 0.2")
    assert outcome.details["screen"]["states"]["M"] == "straddles"
    assert outcome.verdict == "inconclusive"
    assert outcome.details["screen"]["levels"]["M"] == pytest.approx(1 - 0.05 / 16)
    in_screen = {p.x: p.ci for p in outcome.points}["M"]
    assert (in_screen.low, in_screen.high) == pytest.approx((corrected.ci.low, corrected.ci.high))


def test_holm_relaxes_the_level_of_cells_left_after_the_decided_ones() -> None:
    rng = np.random.default_rng(3)
    cells = {"M": _marginal(rng), **_cells(rng, {f"Z{i}": 0.0 for i in range(15)})}
    holm = evaluate_claim(_screen(cells, ["M"], "holm"), "only [M] > 0.2")
    bonferroni = evaluate_claim(_screen(cells, ["M"], "bonferroni"), "only [M] > 0.2")
    # the 15 zeros are decided in Holm's first round, so M is re-judged alone at 95%: it clears
    assert holm.details["screen"]["levels"]["M"] == pytest.approx(0.95)
    assert holm.verdict == "pass"
    assert bonferroni.verdict == "inconclusive"


def test_a_screen_takes_its_level_from_the_files_family() -> None:
    rng = np.random.default_rng(4)
    cells = _cells(rng, {"A": 1.0, "B": 0.0})
    plain = Measurement("p", "attribution", 40, arrays={"value": rng.standard_normal(40) + 3})
    outcomes = evaluate_family(
        [ClaimRequest(_screen(cells, ["A"]), "only [A] > 0.2"), ClaimRequest(plain, "mean > 0")], "bonferroni"
    )
    assert [o.verdict for o in outcomes] == ["pass", "pass"]
    assert outcomes[0].details["level"] == pytest.approx(0.975)
    levels = outcomes[0].details["screen"]["levels"]
    assert levels["A"] == pytest.approx(1 - 0.025 / 2)


def test_a_screen_without_cells_or_with_bad_values_is_an_error() -> None:
    empty = Measurement("s", "screen", 0)
    assert evaluate_claim(empty, "only [A] > 0").verdict == "error"
    bad = _screen({"A": np.array([1.0, np.nan, 1.0, 1.0]), "B": np.zeros(4)}, ["A"])
    outcome = evaluate_claim(bad, "only [A] > 0", min_n=2)
    assert outcome.verdict == "error" and "cell s[A]" in outcome.reason


@pytest.mark.parametrize("confidence", [0.95, 1 - 0.05 / 144])
def test_batched_bootstrap_t_equals_the_one_row_interval(confidence: float) -> None:
    """The screen's shared-draw intervals against ``bootstrap_t_interval`` row by row: spread,
    shifted, tied (Student t fallback) and constant (degenerate) rows."""
    from circuitspec.stats.batched_intervals import bootstrap_t_intervals
    from circuitspec.stats.intervals import bootstrap_t_interval

    rng = np.random.default_rng(5)
    rows = np.vstack(
        [
            rng.standard_normal(30),
            1e3 + 1e-3 * rng.standard_normal(30),
            rng.exponential(size=30),
            np.r_[np.zeros(29), 1.0],
            np.full(30, -2.0),
        ]
    )
    got = bootstrap_t_intervals(rows, confidence, seed=11, n_resamples=2999)
    for row, interval in zip(rows, got, strict=True):
        reference = bootstrap_t_interval(row, confidence, 11, 2999)
        assert interval.method == reference.method
        assert (interval.low, interval.high) == pytest.approx(
            (reference.low, reference.high), rel=1e-7, abs=1e-9
        )
        assert interval.level == reference.level
