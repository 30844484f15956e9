"""docs/REFERENCE.md: regenerated and compared (drift), complete (every schema key, claim kind,
statistic, metric, ``CIRCUITSPEC_*`` variable), and true: a real run's measurements carry exactly the
arrays the reference lists per kind, related by the formulas it states."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest

from circuitspec.claims import reference_text as text
from circuitspec.claims.json_schema import hypothesis_json_schema
from circuitspec.claims.reference import REFERENCE_PATH, reference_markdown
from circuitspec.claims.registry import REGISTRY
from circuitspec.spec.claim_models import Metric
from circuitspec.spec.expectations import STATISTICS
from circuitspec.stats.bootstrap import MissingArray, statistic_inputs

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / REFERENCE_PATH


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_committed_reference_is_the_generated_one(doc: str) -> None:
    assert doc == reference_markdown(), (
        f"regenerate it: python -m circuitspec.claims.reference -o {REFERENCE_PATH}"
    )


def test_every_schema_key_appears_as_a_table_row(doc: str) -> None:
    schema = hypothesis_json_schema()
    definitions = [schema, *schema["$defs"].values()]
    keys = {key for definition in definitions for key in definition["properties"]}
    missing = sorted(key for key in keys if f"| `{key}` |" not in doc)
    assert not missing, missing
    assert len(keys) > 60  # the schema was really read (claims, model, data, templates, …)


def test_every_claim_kind_has_a_section_arrays_and_statistics(doc: str) -> None:
    assert set(text.KIND_ARRAYS) == set(REGISTRY) == set(text.KIND_STATISTICS)
    for kind in REGISTRY:
        assert f"#### kind: {kind} " in doc
        assert f"| `{kind}` |" in doc  # the per-kind statistics table


def test_statistics_and_metrics_are_all_described(doc: str) -> None:
    assert set(text.STATISTICS) == set(STATISTICS)
    assert set(text.METRICS) == set(get_args(Metric))
    for name in (*STATISTICS, *text.METRICS):
        assert f"| `{name}` |" in doc


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_each_kind_lists_only_statistics_its_arrays_support(kind: str) -> None:
    """A statistic the reference explains for a kind can be computed from that kind's arrays."""
    arrays, _, _ = text.KIND_ARRAYS[kind]
    extra = {"interaction"} if kind == "scaling" else set()  # with `interaction: true`
    fake = {name: np.array([1.0, 2.0, 3.0]) for name in arrays | extra}
    for statistic in text.KIND_STATISTICS[kind]:
        try:
            statistic_inputs(statistic, fake)
        except MissingArray as missing:
            pytest.fail(f"{kind}: {missing}")


def test_every_circuitspec_environment_variable_is_documented(doc: str) -> None:
    used: set[str] = set()
    for folder in ("circuitspec", "tests"):
        for file in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r"\bCIRCUITSPEC_[A-Z_]+[A-Z]\b", file.read_text(encoding="utf-8")))
    assert used >= {"CIRCUITSPEC_THREADS", "CIRCUITSPEC_MEMORY_GB", "CIRCUITSPEC_CACHE"}
    for name in sorted(used):
        assert name in text.ENVIRONMENT, name
        assert f"| `{name}` |" in doc


# ------------------------------------------------------------------------- the arrays are real

ALL_KINDS = """\
name: reference_arrays
model: {bundled: zoo.suppression}
data:
  file: suppression.jsonl
  templates:
    - {id: name_copy, text: "{f1} {name} {f2} {f3} to", desired: " {name}", undesired: " {f2}"}
  corrupt: {set: {name: "{name2}"}}
claims:
  - {id: behaviour, kind: behaviour, expect: mean > 0}
  - {id: attribution, kind: attribution, targets: L0H0, expect: mean > 0}
  - {id: logit_lens, kind: logit_lens, expect: mean increases with layer}
  - {id: attention, kind: attention, targets: L1H0, destination: name, expect: mean > 0.5}
  - {id: ablation, kind: ablation, method: zero, targets: L1H0, expect: mean > 0}
  - {id: activation_patching, kind: activation_patching, targets: L0H0, expect: recovered > 0.5}
  - {id: path_patching, kind: path_patching, targets: "L0H0 -> logits", expect: mean < 0}
  - id: causal_scrubbing
    kind: causal_scrubbing
    targets: ["L0H0 -> L1H0.q", "L0H0 -> logits", "L1H0 -> logits"]
    equivalence: {default: [name]}
    expect: recovered > 0.5
  - {id: scaling, kind: scaling, targets: L1H0, alphas: [0, 1, 2], expect: mean decreases with alpha}
  - {id: faithfulness, kind: faithfulness, method: zero, targets: [L0H0, L1H0], expect: recovered > 0.5}
  - id: generation
    kind: generation
    targets: L1H0
    alphas: [0, 1]
    score: keywords
    lexicon: gratitude
    max_new_tokens: 2
    expect: mean > 0
  - id: steering
    kind: steering
    targets: resid_pre1@end
    direction: e.safetensors
    alphas: [0, 1]
    random_directions: 3
    expect: mean > 0
  - {id: induction, kind: induction, targets: L1H0, seq_len: 4, sequences: 8, expect: mean > 0}
  - {id: screen, kind: screen, of: attribution, targets: all_heads, expect: "only [L0H0] > 0"}
  - {id: learned_scaling, kind: learned_scaling, scalars: s.safetensors, expect: success_rate > 0}
"""


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from circuitspec.pipeline import run_verification

    folder = tmp_path_factory.mktemp("reference")
    shutil.copy(ROOT / "hypotheses" / "zoo" / "data" / "suppression.jsonl", folder / "suppression.jsonl")
    (folder / "h.yaml").write_text(ALL_KINDS, encoding="utf-8")
    _direction(folder / "e.safetensors")
    _scalars(folder / "s.safetensors")
    measurements = run_verification(folder / "h.yaml", progress=False).measurements
    measurements["alignment"] = _alignment(folder)
    return measurements


CROSS_MODEL = """\
name: reference_alignment
models: {a: {bundled: zoo.suppression}, b: {bundled: zoo.suppression}}
data:
  file: suppression.jsonl
  templates:
    - {id: name_copy, text: "{f1} {name} {f2} {f3} to"}
claims:
  - id: alignment
    kind: alignment
    models: [a, b]
    sites: [resid_pre1@name, resid_post1@name]
    fit: [name_copy]
    k: [1, 2]
    expect: mean > 0
"""


def _alignment(folder: Path) -> Any:
    """The cross-model kind, read on both sides as `verify` does (one model's two sites here)."""
    from circuitspec.compare.run import _read
    from circuitspec.compare.views import cross_model_claims, model_view
    from circuitspec.engine.interventions.alignment import measure
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_hypothesis

    (folder / "cross.yaml").write_text(CROSS_MODEL, encoding="utf-8")
    loaded = load_hypothesis(folder / "cross.yaml")
    (claim,) = cross_model_claims(loaded)
    view = model_view(loaded, "a")
    model = load_hypothesis_model(view.spec.model, view.base_dir)
    return measure((_read(model, view, claim, 0, None), _read(model, view, claim, 1, None)), claim, 0)


def _direction(path: Path) -> None:
    """A steering direction for the planted model (a seeded random vector of its width)."""
    from circuitspec.directions.geometry import MeanDifference
    from circuitspec.directions.store import Provenance, save_direction
    from circuitspec.zoo.planted.suppression import SHAPE

    vector = np.random.default_rng(0).standard_normal(SHAPE.d_model)
    norm = float(np.linalg.norm(vector))
    provenance = Provenance("bundled:zoo.suppression", "resid_pre1", "direction", "random", "token", (), ())
    save_direction(path, MeanDifference(vector / norm, norm, (0, 0)), provenance)


def _scalars(path: Path) -> None:
    """Learned activation scalars for the planted model (two locations, fixed values)."""
    from circuitspec.learned.store import LearnedProvenance, save
    from circuitspec.zoo.planted.suppression import SHAPE

    locations = ("attn_out1@end", "attn_out0@name")  # attention-only: no MLP output to scale
    provenance = LearnedProvenance("bundled:zoo.suppression", "activ_scalar", locations, SHAPE.d_model)
    save(path, np.array([1.5, -0.5]), provenance)


def test_the_hypothesis_covers_every_kind(measured: dict[str, Any]) -> None:
    assert set(measured) == set(REGISTRY)


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_each_kind_measures_exactly_the_documented_arrays(measured: dict[str, Any], kind: str) -> None:
    measurement = measured[kind]
    assert measurement.error is None, measurement.error
    assert set(measurement.arrays) == set(text.KIND_ARRAYS[kind][0])


def test_the_documented_formulas_hold(measured: dict[str, Any]) -> None:
    a = {kind: m.arrays for kind, m in measured.items()}
    close = np.testing.assert_allclose
    clean = a["behaviour"]["value"]
    close(a["behaviour"]["clean"], clean)
    for kind in ("ablation", "path_patching", "causal_scrubbing"):  # intervened − clean
        close(a[kind]["value"], a[kind]["intervened"] - a[kind]["clean"], atol=1e-9)
        close(a[kind]["clean"], clean, rtol=1e-5, atol=1e-5)
    patch = a["activation_patching"]  # denoising: patched − corrupt
    close(patch["value"], patch["intervened"] - patch["corrupt"], atol=1e-9)
    close(a["ablation"]["corrupt"], patch["corrupt"], rtol=1e-5, atol=1e-5)  # one shared corrupted run
    faith = a["faithfulness"]
    gap = faith["clean"] - faith["corrupt"]
    ok = np.abs(gap) > 1e-6
    close(faith["value"][ok], ((faith["intervened"] - faith["corrupt"]) / gap)[ok], rtol=1e-6)
    assert np.all((a["attention"]["value"] >= 0) & (a["attention"]["value"] <= 1))
    generation = a["generation"]  # a text score (keywords), not the metric: intervened − control
    close(generation["value"], generation["intervened"] - generation["clean"], atol=1e-9)
    steering = a["steering"]  # the metric with alpha × direction added, minus clean
    close(steering["value"], steering["intervened"] - steering["clean"], atol=1e-9)
    close(steering["clean"], clean, rtol=1e-5, atol=1e-5)
    assert np.all((steering["percentile"] >= 0) & (steering["percentile"] <= 1))


def test_sweeps_are_as_documented(measured: dict[str, Any]) -> None:
    scaling, lens = measured["scaling"], measured["logit_lens"]
    assert scaling.sweep_variable == "alpha" and [p.x for p in scaling.sweep] == [0.0, 1.0, 2.0]
    for point in scaling.sweep:
        np.testing.assert_allclose(point.arrays["value"], point.arrays["intervened"] - point.arrays["clean"])
    np.testing.assert_array_equal(scaling.arrays["value"], scaling.sweep[-1].arrays["value"])  # last alpha
    assert lens.sweep_variable == "layer"
    # the planted model is attention-only (no resid_mid): resid_pre0, resid_pre1, resid_post1
    assert [p.x for p in lens.sweep] == [0.0, 1.0, 2.0]
    np.testing.assert_array_equal(lens.arrays["value"], lens.sweep[-1].arrays["value"])
