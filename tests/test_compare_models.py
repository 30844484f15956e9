"""Hypotheses naming several models (``models:``): the spec rules, one view per model, the cross-model
``alignment`` claim checked against plain TransformerLens hooks and numpy, and the side-by-side reports.

The two "models" are the bundled toy model at two checkpoints (step 100 and final), so the run is fast
and offline; the alignment claim maps the early model's residual stream onto the final one's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from circuitspec.errors import CircuitSpecError
from circuitspec.spec.loader import load_hypothesis

HEAD = """\
version: 1
name: two_toys
models:
  early: {bundled: toy_sentiment, checkpoint: 100}
  final: {bundled: toy_sentiment}
data:
  file: data.jsonl
  split: {test_fraction: 0.5, seed: 0}
  corrupt:
    set: {s_con: "{s_ori}"}
  templates:
    - id: positive
      text: "{s_ori}: {w_ori}. {s_con}:"
      desired: " {w_con}"
      undesired: " {w_ori}"
      where: {s_ori: Positive}
    - id: negative
      text: "{s_ori}: {w_ori}. {s_con}:"
      desired: " {w_con}"
      undesired: " {w_ori}"
      where: {s_ori: Negative}
"""

CLAIMS = """\
claims:
  - id: substitutes
    kind: behaviour
    expect: success_rate >= 0.5
    min_n: 5
  - id: final_only
    kind: behaviour
    model: final
    data: [positive]
    expect: success_rate >= 0.5
    min_n: 5
  - id: early_maps_onto_final
    kind: alignment
    models: [early, final]
    sites: [resid_post1@end, resid_post1@end]
    fit: [positive]
    data: [negative]
    k: [1, 2, 3]
    random_baseline: {n: 5}
    expect: mean > -1
    min_n: 5
"""


def _rows() -> list[dict[str, str]]:
    from circuitspec.zoo.toy_sentiment.task import ADJECTIVE_PAIRS

    rows = []
    for good, bad in ADJECTIVE_PAIRS[:16]:
        rows.append({"s_ori": "Positive", "s_con": "Negative", "w_ori": good, "w_con": bad})
        rows.append({"s_ori": "Negative", "s_con": "Positive", "w_ori": bad, "w_con": good})
    return rows


def _write(tmp_path: Path, claims: str = CLAIMS) -> Path:
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    path = tmp_path / "two_toys.yaml"
    path.write_text(HEAD + claims)
    return path


def test_models_fill_model_with_the_first(tmp_path: Path) -> None:
    loaded = load_hypothesis(_write(tmp_path))
    assert list(loaded.spec.models) == ["early", "final"]
    assert loaded.spec.model.checkpoint == 100


def test_a_claim_naming_an_unknown_model_is_refused_at_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, CLAIMS.replace("model: final", "model: fnial"))
    with pytest.raises(CircuitSpecError) as error:
        load_hypothesis(path)
    assert "unknown model 'fnial' (models: early, final)" in error.value.message
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "model: fnial" in text)
    assert error.value.line == line


def test_model_and_models_together_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path)
    path.write_text(path.read_text().replace("models:\n", "model: {bundled: toy_sentiment}\nmodels:\n", 1))
    with pytest.raises(CircuitSpecError, match="not both"):
        load_hypothesis(path)


def test_where_naming_a_field_no_row_has_is_refused_at_its_line(tmp_path: Path) -> None:
    from circuitspec.spec.loader import load_rows

    path = _write(tmp_path)
    path.write_text(path.read_text().replace("where: {s_ori: Negative}", "where: {s_oir: Negative}"))
    loaded = load_hypothesis(path)
    with pytest.raises(CircuitSpecError, match="selects rows by 's_oir'") as error:
        load_rows(loaded.spec.data, loaded.base_dir, hypothesis=loaded)
    assert "s_oir" in path.read_text().splitlines()[error.value.line - 1]


def test_each_model_sees_its_own_claims(tmp_path: Path) -> None:
    from circuitspec.compare.views import cross_model_claims, model_view

    loaded = load_hypothesis(_write(tmp_path))
    early, final = model_view(loaded, "early"), model_view(loaded, "final")
    assert [c.id for c in early.claims] == ["substitutes"]
    assert [c.id for c in final.claims] == ["substitutes", "final_only"]
    assert final.spec.model.checkpoint is None and not final.spec.models
    assert [c.id for c in cross_model_claims(loaded)] == ["early_maps_onto_final"]


def _plain_activations(checkpoint: object, texts: list[str]) -> np.ndarray:
    """resid_post1 at each prompt's last token, by TransformerLens' own cache (independent of the engine)."""
    import torch

    from circuitspec.engine.models import load_model
    from circuitspec.spec.schema import ModelSpec

    loaded = load_model(ModelSpec(bundled="toy_sentiment"), Path("."), checkpoint=checkpoint)
    rows = []
    for text in texts:
        ids, _ = loaded.tokenizer.encode(text)
        bos = [] if loaded.tokenizer.bos_id is None else [loaded.tokenizer.bos_id]
        tokens = torch.tensor([bos + ids])
        _, cache = loaded.model.run_with_cache(tokens, names_filter="blocks.1.hook_resid_post")
        rows.append(cache["blocks.1.hook_resid_post"][0, -1].double().numpy())
    return np.stack(rows)


@pytest.mark.slow
def test_verify_models_writes_each_model_and_the_matrix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from circuitspec.compare.run import verify_file
    from circuitspec.reports.table import make_console

    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path)
    code = verify_file(path, out=tmp_path / "out", progress=False, console=make_console())
    assert code in (0, 1)
    for name in ("early", "final"):
        report = json.loads((tmp_path / "out" / name / "report.json").read_text())
        ids = [c["id"] for c in report["claims"]]
        assert ids == (["substitutes", "final_only"] if name == "final" else ["substitutes"])
    matrix = json.loads((tmp_path / "out" / "models.json").read_text())
    assert matrix["axis"] == "model"
    assert [c["name"] for c in matrix["checkpoints"]] == ["early", "final", "across models"]
    rows = {row["id"]: row for row in matrix["claims"]}
    assert rows["final_only"]["cells"][0] is None and rows["final_only"]["cells"][1] is not None
    assert rows["early_maps_onto_final"]["cells"][2]["verdict"] in ("pass", "fail", "inconclusive")
    titles = [t["title"] for t in matrix["appendix"]]
    assert "early_maps_onto_final: subspace overlap" in titles
    html = (tmp_path / "out" / "models.html").read_text()
    assert "Models: two_toys" in html and "subspace overlap" in html
    assert "across 2 models and the cross-model claims" in (tmp_path / "out" / "models.md").read_text()


def test_the_single_model_pipeline_refuses_a_models_file(tmp_path: Path) -> None:
    from circuitspec.pipeline import run_verification

    with pytest.raises(CircuitSpecError, match=r"names several models \(early, final\)"):
        run_verification(_write(tmp_path))


@pytest.mark.slow
def test_alignment_values_match_plain_hooks_and_numpy(tmp_path: Path) -> None:
    """The claim's per-prompt offset cosines equal ones computed from TransformerLens' cache and lstsq."""
    from circuitspec.compare.run import _read
    from circuitspec.compare.views import cross_model_claims, model_view
    from circuitspec.engine.interventions.alignment import measure
    from circuitspec.pipeline import load_hypothesis_model
    from circuitspec.spec.loader import load_rows
    from circuitspec.spec.splits import select_rows

    loaded = load_hypothesis(_write(tmp_path))
    (claim,) = cross_model_claims(loaded)
    sides = []
    for side, name in enumerate(["early", "final"]):
        view = model_view(loaded, name)
        model = load_hypothesis_model(view.spec.model, view.base_dir, view.spec.model.checkpoint)
        sides.append(_read(model, view, claim, side, None))
    measured = measure((sides[0], sides[1]), claim, seed=0)

    rows = load_rows(loaded.spec.data, loaded.base_dir, hypothesis=loaded)
    fit = [r for r in select_rows(rows, loaded.spec.data, "explore") if r["s_ori"] == "Positive"]
    held = [
        r for r in select_rows(rows, loaded.spec.data, "all") if r["s_ori"] == "Negative"
    ]  # no thresholds_set_on
    text = "{s_ori}: {w_ori}. {s_con}:"
    fit_texts = [text.format(**r) for r in fit]
    held_texts = [text.format(**r) for r in held]
    xs, ys = (_plain_activations(c, fit_texts) for c in (100, None))
    xe, ye = (_plain_activations(c, held_texts) for c in (100, None))
    design = np.hstack([xs, np.ones((len(xs), 1))])
    weight = np.linalg.lstsq(design, ys, rcond=None)[0][:-1]
    mapped = (xe - xs.mean(0)) @ weight
    own = ye - ys.mean(0)
    expected = (mapped * own).sum(1) / (np.linalg.norm(mapped, axis=1) * np.linalg.norm(own, axis=1))
    assert measured.n_prompts == len(held_texts)
    np.testing.assert_allclose(measured.arrays["value"], expected, atol=1e-4)
    assert measured.random_baseline is not None and measured.random_baseline.shape == (5,)
    overlap = measured.extra["subspace_overlap"]
    assert [row["k"] for row in overlap] == [1, 2, 3]
    assert all(0.0 <= row["least_squares"] <= 1.0 + 1e-9 for row in overlap)


def test_where_fills_a_template_from_its_rows_only(tmp_path: Path) -> None:
    from circuitspec.engine.models import load_model
    from circuitspec.engine.prompts import build_prompt_set
    from circuitspec.spec.loader import load_rows
    from circuitspec.spec.schema import ModelSpec

    loaded = load_hypothesis(_write(tmp_path))
    rows = load_rows(loaded.spec.data, loaded.base_dir, hypothesis=loaded)
    tokenizer = load_model(ModelSpec(bundled="toy_sentiment"), Path(".")).tokenizer
    prompts = build_prompt_set(loaded.spec.data, rows, tokenizer, ["positive", "negative"])
    assert len(prompts.rows) == len(rows)  # each row is in exactly one of the two templates
    for row, template in zip(prompts.rows, prompts.template_ids, strict=True):
        assert row["s_ori"] == ("Positive" if template == "positive" else "Negative")
    path = tmp_path / "two_toys.yaml"
    path.write_text(path.read_text().replace("where: {s_ori: Negative}", "where: {s_ori: Neutral}"))
    loaded = load_hypothesis(path)
    with pytest.raises(CircuitSpecError, match="template 'negative': no data row has s_ori = Neutral"):
        build_prompt_set(loaded.spec.data, rows, tokenizer, ["negative"])


def test_directions_needs_model_for_a_models_file(tmp_path: Path) -> None:
    from circuitspec.cli.direction_commands import DirectionRequest, directions_command

    path = _write(tmp_path)
    request = DirectionRequest("resid_post1@end", "positive,negative", "token", None, None)
    with pytest.raises(CircuitSpecError, match=r"--model is required: two_toys.yaml names several models"):
        directions_command(path, request, tmp_path / "d.safetensors")
    with pytest.raises(CircuitSpecError, match="--model lastt: unknown model"):
        directions_command(path, request, tmp_path / "d.safetensors", "lastt")
    summary = directions_command(path, request, tmp_path / "d.safetensors", "early")
    assert "wrote" in summary and (tmp_path / "d.safetensors").exists()
    from circuitspec.directions.store import load
    from circuitspec.spec.loader import load_rows
    from circuitspec.spec.splits import select_rows

    loaded = load_hypothesis(path)  # the direction is the early checkpoint's, on the exploration rows
    explore = select_rows(
        load_rows(loaded.spec.data, tmp_path, hypothesis=loaded), loaded.spec.data, "explore"
    )
    texts = {
        s: ["{s_ori}: {w_ori}. {s_con}:".format(**r) for r in explore if r["s_ori"] == s]
        for s in ("Positive", "Negative")
    }
    expected = _plain_activations(100, texts["Positive"]).mean(0) - _plain_activations(
        100, texts["Negative"]
    ).mean(0)
    stored = load(tmp_path / "d.safetensors").direction()
    np.testing.assert_allclose(stored.raw, expected, rtol=1e-4, atol=1e-4)


def test_validate_checks_each_cross_model_site_against_its_model(tmp_path: Path) -> None:
    from circuitspec.compare.run import compile_views

    loaded = load_hypothesis(_write(tmp_path))
    graphs = compile_views(loaded)
    assert set(graphs) == {"early", "final"} and [c.id for c in graphs["final"].claims][-1] == "final_only"
    path = tmp_path / "two_toys.yaml"
    path.write_text(
        path.read_text().replace(
            "sites: [resid_post1@end, resid_post1@end]", "sites: [resid_post1@end, resid_post7@end]"
        )
    )
    loaded = load_hypothesis(path)
    with pytest.raises(
        CircuitSpecError, match=r"site 'resid_post7@end': model 'final' has 2 layers"
    ) as error:
        compile_views(loaded)
    assert "resid_post7@end" in path.read_text().splitlines()[error.value.line - 1]


def test_baseline_keeps_each_models_report_and_the_matrix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import circuitspec.compare.run as run
    from circuitspec.cli.regress_commands import baseline_command

    def fake_verify_models(
        loaded: object, console: object, allowed: object, *, out: Path, **_: object
    ) -> int:
        for name in ("early", "final"):
            (out / name).mkdir(parents=True, exist_ok=True)
            (out / name / "report.json").write_text(json.dumps({"model": name}))
        (out / "models.json").write_text('{"axis": "model"}')
        return 0

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run, "verify_models", fake_verify_models)
    path = _write(tmp_path)
    assert baseline_command(path) == Path("reports/two_toys/models-baseline.json")
    for name in ("early", "final"):
        assert json.loads((tmp_path / "reports/two_toys" / name / "baseline.json").read_text()) == {
            "model": name
        }
    with pytest.raises(CircuitSpecError, match="keeps one per model"):
        baseline_command(path, out=tmp_path / "b.json")


def test_verify_ray_refuses_a_models_file_before_any_cluster(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from circuitspec.cli.main import app

    path = _write(tmp_path)
    result = CliRunner().invoke(app, ["verify", str(path), "--ray"])  # refused before a local cluster starts
    assert result.exit_code == 2
    message = "--ray runs single-model files; this one names several models (models:)"
    assert result.stderr.strip().endswith(message)
