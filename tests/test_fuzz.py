"""Fuzzing with ``hypothesis``: mutated hypothesis files through ``validate``, mutated report.json files
through ``diff``, and mutated zoo hypotheses through ``verify``: no traceback, every rejection a one-line
:class:`CircuitSpecError` (exit 2 at the command line, as tests/test_bad_inputs.py checks).

``CIRCUITSPEC_FUZZ_EXAMPLES`` (default 2000, split 3:1 between validate and diff; verify gets one
example per 300, at least 6) sets the budget; ``make fuzz`` runs a nightly-sized one. Examples are
derandomized, so CI runs the same ones every time; a failure prints the input that caused it.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rich.console import Console

from circuitspec.cli.main import _compile
from circuitspec.errors import CircuitSpecError
from circuitspec.regress.diff import diff_reports
from circuitspec.reports import render_json
from tests.helpers.report_sample import sample_report_input

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("CIRCUITSPEC_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

BASE_HYPOTHESIS: dict[str, Any] = {
    "name": "fuzz",
    "model": {"bundled": "zoo.induction"},
    "data": {
        "file": "data/induction.jsonl",
        "n": 4,
        "seed": 0,
        "templates": [
            {
                "id": "repeat",
                "text": "{f0} {a} {b} {f1} {f2} {a2}",
                "desired": " {b}",
                "undesired": " {f1}",
                "tags": ["induction"],
            }
        ],
        "corrupt": {"set": {"a": "{c}"}},
    },
    "nodes": {"prev_token": "L0H0", "circuit": ["prev_token", "L1H1"]},
    "paths": {"key_path": "L0H0 -> L1H1.k -> logits"},
    "claims": [
        {"id": "attends", "kind": "attention", "targets": ["L0H0"], "source": "b", "destination": "a",
         "expect": "mean > 0.9"},
        {"id": "key", "kind": "path_patching", "targets": ["key_path"], "expect": "mean < -3",
         "tolerance": 0.5},
        {"id": "scale", "kind": "scaling", "targets": ["circuit"], "alphas": [0, 1, 2],
         "expect": "mean increases with alpha"},
        {"id": "ablate", "kind": "ablation", "method": "mean", "targets": ["prev_token"],
         "data": ["induction"], "expect": "no effect within 0.1", "random_baseline": {"n": 5, "seed": 1}},
    ],
    "checkpoints": ["default"],
}  # fmt: skip

# values that have broken parsers before, next to plain random ones
TRICKY = [
    "L0H0", "L1H1.k", "L١H١", "L0H0@a", "MLP9.tc[3]", "resid_pre1", "embed@a -> L1H1.k -> logits", "logits",
    "mean > 0", "mean > ３", "no effect within -1", "recovered within ±0.1", "mean increases with layer",
    "{a}", "{missing}", "{a:text}", "{", "../x", "/proc/self/status", "/dev/zero", "data", "\u202e", "\x85",
    "a\x00b", "data/\x00", "index:3", "step_00100", "final", "default", "1e309", ".nan", "-0", "true", "",
    " ", "ablation",
]  # fmt: skip
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(TRICKY),
    st.text(max_size=12),
    st.lists(st.sampled_from(TRICKY), max_size=3),
    st.dictionaries(st.sampled_from(["n", "seed", "kind", "id", "x"]), st.integers(-3, 3), max_size=2),
)


def _slots(node: Any, found: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) pair in a JSON-like document, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in list(items):
        found.append((node, key))
        _slots(value, found)
    return found


def mutate(doc: Any, data: st.DataObject) -> None:
    """Replace, delete, rename or add one entry somewhere in ``doc`` (in place)."""
    slots = _slots(doc, [])
    container, key = data.draw(st.sampled_from(slots))
    action = data.draw(st.sampled_from(["replace", "replace", "delete", "rename", "add"]))
    if action == "replace":
        container[key] = data.draw(LEAVES)
    elif action == "delete":
        del container[key]
    elif isinstance(container, dict) and action == "rename":
        name = str(key)
        cut = data.draw(st.integers(0, max(len(name) - 1, 0)))
        container[name[:cut] + name[cut + 1 :]] = container.pop(key)
    elif isinstance(container, dict):
        container[data.draw(st.sampled_from(["extra", "expct", "n", "seed", "allow_outside"]))] = data.draw(
            LEAVES
        )
    else:
        container.append(data.draw(LEAVES))


def _text(doc: Any, data: st.DataObject) -> str:
    """The document as YAML text (JSON is YAML; non-ASCII raw or as \\u escapes), sometimes with a few
    characters spliced in."""
    text = json.dumps(doc, ensure_ascii=data.draw(st.booleans()), allow_nan=True)
    if data.draw(st.integers(0, 3)) == 0:
        at = data.draw(st.integers(0, len(text)))
        text = (
            text[:at]
            + data.draw(st.sampled_from(["&a ", "*a", "!!python/object ", "---\n", ": ", "\t", "١"]))
            + text[at:]
        )
    return text


def assert_one_line(error: CircuitSpecError) -> None:
    text = str(error)
    assert text and "\n" not in text and text.isprintable(), repr(text)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    (path / "data").mkdir()
    shutil.copyfile(
        REPO / "hypotheses" / "zoo" / "data" / "induction.jsonl", path / "data" / "induction.jsonl"
    )
    return path


def test_the_base_hypothesis_is_valid(folder):
    (folder / "base.yaml").write_text(json.dumps(BASE_HYPOTHESIS))
    assert _compile(folder / "base.yaml", with_rows=True).hypothesis.name == "fuzz"


@settings(FUZZ, max_examples=EXAMPLES * 3 // 4)
@given(data=st.data())
def test_validate_on_mutated_hypotheses_raises_only_one_line_errors(folder, data):
    doc = copy.deepcopy(BASE_HYPOTHESIS)
    for _ in range(data.draw(st.integers(1, 3))):
        mutate(doc, data)
    path = folder / "fuzzed.yaml"
    path.write_text(_text(doc, data), encoding="utf-8")
    try:
        _compile(path, with_rows=True)  # what `circuitspec validate` runs; it exits 2 on CircuitSpecError
    except CircuitSpecError as error:
        assert_one_line(error)


@pytest.fixture(scope="module")
def report(folder) -> dict:
    report_input = sample_report_input()
    report_input.outcomes = report_input.outcomes[:3]
    path = folder / "report.json"
    path.write_text(render_json(report_input))
    return json.loads(path.read_text())


@settings(FUZZ, max_examples=EXAMPLES // 4)
@given(data=st.data())
def test_diff_on_mutated_reports_raises_only_one_line_errors(folder, report, data):
    doc = copy.deepcopy(report)
    for _ in range(data.draw(st.integers(1, 3))):
        mutate(doc, data)
    path = folder / "fuzzed.json"
    path.write_text(_text(doc, data), encoding="utf-8")
    quiet = Console(quiet=True)
    for base, new in ((folder / "report.json", path), (path, folder / "report.json")):
        try:
            diff_reports(base, new, console=quiet)
        except CircuitSpecError as error:
            assert_one_line(error)


# fields a verify run reads, each with values validate accepts but the run may find unusual
VERIFY_MUTATIONS: list[tuple[tuple[str | int, ...], st.SearchStrategy]] = [
    (("data", "n"), st.integers(1, 70)),
    (("data", "seed"), st.integers(0, 2**31)),
    (("seed",), st.integers(0, 2**31)),
    (("claims", 2, "alphas"), st.lists(st.floats(-4, 4), min_size=2, max_size=4, unique=True)),
    (("claims", 3, "method"), st.sampled_from(["zero", "mean", "resample", "soft"])),
    (("claims", 3, "random_baseline", "n"), st.integers(1, 6)),
    (("claims", 0, "source"), st.sampled_from(["a", "b", "f1", "a2", "end"])),
    (("claims", 0, "destination"), st.sampled_from(["a", "b", "f0", "a2", "end"])),
    (("claims", 1, "targets"),
     st.sampled_from([["L0H0 -> L1H1.v"], ["embed@a -> L1H1.k"], ["L0H1 -> L1H1.q"]])),
    (("claims", 1, "mlps"), st.sampled_from(["frozen", "recomputed"])),
    (("data", "templates", 0, "desired"), st.sampled_from([" {a}", " {f2}", " {b}", " {c}"])),
    (("claims", 0, "expect"), st.sampled_from(["mean < 0", "mean >= 0.5", "no effect within 0.01"])),
]  # fmt: skip


@pytest.mark.slow
@settings(FUZZ, max_examples=max(6, EXAMPLES // 300), phases=[Phase.generate])  # no slow shrinking
@given(data=st.data())
def test_verify_on_mutated_zoo_hypotheses_exits_0_1_or_2(folder, data):
    """The whole run, model included, on the planted induction model (each example ~1 s)."""
    from circuitspec.pipeline import verify

    doc = copy.deepcopy(BASE_HYPOTHESIS)
    doc["claims"][3]["random_baseline"]["n"] = 3
    for _ in range(data.draw(st.integers(1, 3))):
        (*parents, last), values = data.draw(st.sampled_from(VERIFY_MUTATIONS))
        target = doc
        for part in parents:
            target = target[part]
        target[last] = data.draw(values)
    path = folder / "verify.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")
    try:
        code = verify(path, out=folder / "reports", progress=False, console=Console(quiet=True))
    except CircuitSpecError as error:
        assert_one_line(error)
    else:
        assert code in (0, 1, 2)
