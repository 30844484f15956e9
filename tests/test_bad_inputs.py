"""Every bad input of issue 16 is one line on stderr and exit 2 (never a traceback, never exit 1), found
before anything expensive runs; nothing is written outside the report folder; pickles are never opened.

The probes are rebuilt from the issue's text: a hypothesis on the planted induction model with one
field changed, report.json files with one field broken, model folders without usable weights.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path
from string import Template

import pytest
from typer.testing import CliRunner

import circuitspec.pipeline
from circuitspec.cli.main import app
from circuitspec.reports import render_json, render_markdown
from tests.helpers.report_sample import sample_report_input

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "hypotheses" / "zoo" / "data" / "induction.jsonl"

BASE = Template("""\
name: probe
model: $model
data:
  file: $file
$data  templates:
    - id: repeat
      text: "{f0} {a} {b} {f1} {f2} {a2}"
      desired: "$desired"
      undesired: " {f1}"
  corrupt:
    set: {a: "{c}"}
$top
claims:
  - id: $claim_id
    kind: attention
    targets: [$target]
    source: b
    destination: a
    $expect_key: "$expect"
$claims""")
DEFAULTS = {
    "model": "{bundled: zoo.induction}",
    "file": "data/induction.jsonl",
    "data": "",
    "desired": " {b}",
    "top": "",
    "claim_id": "attends",
    "target": "L0H0",
    "expect_key": "expect",
    "expect": "mean > 0.9",
    "claims": "",
}


def write_hypothesis(folder: Path, **changes: str) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA, folder / "data" / "induction.jsonl")
    path = folder / "probe.yaml"
    path.write_text(BASE.substitute({**DEFAULTS, **changes}), encoding="utf-8")
    return path


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


PROGRESS_LINE = re.compile(r"\[\d\d:\d\d:\d\d\] ")  # engine/progress.py's RunLog lines


def assert_refused(result, fragment: str = "") -> str:
    """Exit 2, nothing on stdout, one line on stderr holding ``fragment`` (besides verify's timestamped
    progress lines, when the model was being loaded); returns the line."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.strip().splitlines() if not PROGRESS_LINE.match(line)]
    assert len(lines) == 1, result.stderr
    assert fragment.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture
def never_runs(monkeypatch):
    """The model must not run: the input is refused before."""

    def refuse(*args, **kwargs):
        raise AssertionError("the expensive run started on bad input")

    monkeypatch.setattr(circuitspec.pipeline, "run_verification", refuse)
    monkeypatch.setattr(circuitspec.pipeline, "load_hypothesis_model", refuse)


def test_the_probe_hypothesis_itself_is_valid(tmp_path):
    assert cli("validate", write_hypothesis(tmp_path)).exit_code == 0


# ---------------------------------------------------------------- item 3: accepted, then failing at verify

VALIDATE_PROBES = {
    "data.seed -1": ({"data": "  seed: -1\n"}, "negative"),
    "seed -5": ({"top": "seed: -5"}, "negative"),
    "random baseline seed -1": ({"claims": "    random_baseline: {n: 3, seed: -1}\n"}, "negative"),
    "desired equals undesired": ({"desired": " {f1}"}, "both"),
    "alphas with NaN": (
        {"claims": "  - {id: s, kind: scaling, targets: [L1H1], alphas: [0, .nan], expect: mean > 0}\n"},
        "finite",
    ),
    "alphas with inf": (
        {"claims": "  - {id: s, kind: scaling, targets: [L1H1], alphas: [0, .inf], expect: mean > 0}\n"},
        "finite",
    ),
    "one distinct alpha": (
        {
            "claims": "  - {id: s, kind: scaling, targets: [L1H1], alphas: [1, 1], "
            "expect: mean increases with alpha}\n"
        },
        "two different alphas",
    ),
    # item 5: a checkpoint is a folder name
    "checkpoint escaping the folder": ({"top": "checkpoints: ['../../ESCAPED']"}, "checkpoint"),
    "checkpoint the model lacks": ({"top": "checkpoints: [default, '7']"}, "no checkpoint"),
    # item 7
    "Arabic-Indic digits in a node": ({"target": "L١H١"}, ""),
    "full-width digit in an expectation": ({"expect": "mean > ３"}, ""),
    "a YAML boolean as a count": ({"data": "  n: true\n"}, "boolean"),
    "a boolean in a number list": (
        {"claims": "  - {id: s, kind: scaling, targets: [L1H1], alphas: [0, true], expect: mean > 0}\n"},
        "boolean",
    ),
    "typo'd required key": ({"expect_key": "expct"}, "unknown field 'expct'; did you mean 'expect'"),
    "right-to-left override in an id": ({"claim_id": "att\u202eends"}, "U+202E"),
    "the override written as an escape": ({"claim_id": '"att\\u202eends"'}, "U+202E"),
    "a NUL written as an escape in a path": ({"file": '"data/induction.jsonl\\0"'}, "U+0000"),
    "data file above the folder": ({"file": "../outside.jsonl"}, "outside the hypothesis' folder"),
    "data file by absolute path": ({"file": str(DATA)}, "outside the hypothesis' folder"),
    "data file in /proc": ({"file": "/proc/self/status"}, "outside the hypothesis' folder"),
}


@pytest.mark.parametrize("changes, fragment", VALIDATE_PROBES.values(), ids=list(VALIDATE_PROBES))
def test_validate_refuses_in_one_located_line(tmp_path, changes, fragment):
    path = write_hypothesis(tmp_path / "h", **changes)
    shutil.copyfile(DATA, tmp_path / "outside.jsonl")
    line = assert_refused(cli("validate", path), fragment)
    assert re.match(rf"{re.escape(str(path.parent))}/[\w/.]+:\d+:\d+: ", line), line  # file:line:col
    assert "\u202e" not in line  # control characters are shown escaped, never raw


def test_a_symlink_out_of_the_folder_is_refused_unless_allowed(tmp_path):
    path = write_hypothesis(tmp_path / "h")
    link = tmp_path / "h" / "data" / "linked.jsonl"
    link.symlink_to(DATA)
    path.write_text(path.read_text().replace("data/induction.jsonl", "data/linked.jsonl"))
    assert_refused(cli("validate", path), "outside the hypothesis' folder")
    path.write_text(path.read_text().replace("  templates:", "  allow_outside: true\n  templates:", 1))
    assert cli("validate", path).exit_code == 0  # the policy: docs/ARCHITECTURE.md "Data files"


def test_validate_never_imports_the_package_a_model_names(tmp_path):
    assert "this" not in sys.modules
    result = cli("validate", write_hypothesis(tmp_path, model="{package: this.x}"))
    assert_refused(result, "not installed")
    assert "this" not in sys.modules and "Beautiful is better" not in result.output
    probe = write_hypothesis(tmp_path / "torch", model="{package: torch.x}")
    script = (
        "import sys\nfrom typer.testing import CliRunner\nfrom circuitspec.cli.main import app\n"
        f"code = CliRunner().invoke(app, ['validate', {str(probe)!r}]).exit_code\n"
        "print(code, 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert out.stdout.split() == ["2", "False"], out.stdout + out.stderr


# ------------------------------------------------------------------- verify: refused before the run


def test_verify_refuses_bad_arguments_before_the_model_runs(tmp_path, never_runs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_hypothesis(tmp_path / "h")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    (tmp_path / "a_dir").mkdir()
    assert_refused(cli("verify", path, "--out", blocker), "names a file")
    assert_refused(cli("verify", path, "--out", blocker / "below"), "cannot write reports")
    assert_refused(cli("verify", path, "--junit", tmp_path / "a_dir"), "--junit names a folder")
    assert_refused(cli("verify", path, "--checkpoint", "١٠٠"), "ASCII")
    assert_refused(cli("verify", path, "--checkpoint", "../../x"), "checkpoint")
    assert_refused(cli("verify", path, "--baseline", blocker), "not a JSON report")


def test_verify_refuses_a_negative_seed_and_a_checkpoint_of_a_one_checkpoint_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_hypothesis(tmp_path / "h")
    assert_refused(cli("verify", path, "--seed", "-1", "--out", tmp_path / "r"), "negative")
    folder = _model_folder(tmp_path / "m", "gpt2", weights=None)
    path = write_hypothesis(tmp_path / "p", model=f"{{path: {folder}}}")
    assert_refused(
        cli("verify", path, "--checkpoint", "12345", "--out", tmp_path / "r"), "one set of weights"
    )


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_report_folder_is_refused_before_the_run(tmp_path, never_runs):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert_refused(
            cli("verify", write_hypothesis(tmp_path / "h"), "--out", folder), "cannot write reports"
        )
    finally:
        folder.chmod(0o755)


def test_a_report_folder_refusing_writes_is_refused_before_the_run(tmp_path, never_runs, monkeypatch):
    """The read-only case as any user meets it (root ignores 0555, so the refusal is simulated)."""
    from circuitspec.reports import atomic

    class ReadOnly:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def open(path, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(atomic, "os", ReadOnly())
    result = cli("verify", write_hypothesis(tmp_path / "h"), "--out", tmp_path / "ro")
    assert_refused(result, "cannot write reports into this folder: Permission denied")


# ------------------------------------------------------------------------- item 2: model folders


class _Marker:
    """Unpickling this creates a file: proof that a pickle was opened."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _model_folder(folder: Path, kind: str, weights: str | None) -> Path:
    folder.mkdir(parents=True)
    if kind == "gpt2":
        config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": 1, "n_head": 2,
                  "n_embd": 8, "n_positions": 32, "vocab_size": 50, "bos_token_id": 0,
                  "eos_token_id": 0}  # fmt: skip
    else:
        config = {"model_type": "bert", "architectures": ["BertModel"], "num_hidden_layers": 1,
                  "num_attention_heads": 2, "hidden_size": 8, "intermediate_size": 16,
                  "max_position_embeddings": 32, "vocab_size": 50}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    if weights == "pickle":
        with (folder / "pytorch_model.bin").open("wb") as handle:
            pickle.dump({"payload": _Marker(folder.parent / "UNPICKLED")}, handle)
    return folder


@pytest.mark.parametrize(
    "kind, weights, fragment",
    [("gpt2", None, "no weights"), ("gpt2", "pickle", "pickled"), ("bert", "pickle", "pickled")],
)
def test_a_model_folder_without_safetensors_is_one_line_and_no_pickle_is_opened(
    tmp_path, kind, weights, fragment, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    folder = _model_folder(tmp_path / "model", kind, weights)
    path = write_hypothesis(tmp_path / "h", model=f"{{path: {folder}}}")
    assert_refused(cli("verify", path, "--out", tmp_path / "reports"), fragment)
    assert not (tmp_path / "UNPICKLED").exists()


def test_a_bad_sae_lens_folder_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "h" / "sae").mkdir(parents=True)
    (tmp_path / "h" / "sae" / "cfg.json").write_text("{not json")
    path = write_hypothesis(
        tmp_path / "h",
        model="{bundled: toy_sentiment, dictionaries: {MLP1.tc: {kind: transcoder, d_sae: 8, path: sae}}}",
    )
    assert_refused(cli("verify", path, "--out", tmp_path / "reports"), "sae-lens")


# --------------------------------------------------------------------------------- diff


@pytest.fixture(scope="module")
def report_json(tmp_path_factory) -> Path:
    report_input = sample_report_input()
    report_input.outcomes = report_input.outcomes[:2]
    path = tmp_path_factory.mktemp("diff") / "report.json"
    path.write_text(render_json(report_input))
    return path


def _broken(report: dict, how: str) -> object:
    claims = report["claims"]
    if how == "ints and nulls":
        return {**report, "claims": [1, None, *claims]}
    if how == "estimate text":
        return {**report, "claims": [{**claims[0], "estimate": "high"}]}
    if how == "ci text":
        return {**report, "claims": [{**claims[0], "ci": {"low": "a", "high": 1}}]}
    if how == "schema 999":
        return {**report, "schema_version": 999}
    if how == "no schema":
        return {k: v for k, v in report.items() if k != "schema_version"}
    raise ValueError(how)


@pytest.mark.parametrize("how", ["ints and nulls", "estimate text", "ci text", "schema 999", "no schema"])
def test_diff_refuses_a_malformed_report(tmp_path, report_json, how):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(_broken(json.loads(report_json.read_text()), how)))
    assert_refused(cli("diff", report_json, broken), str(broken))
    assert_refused(cli("diff", broken, report_json), str(broken))


def test_diff_refuses_deeply_nested_json(tmp_path, report_json):
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    assert_refused(cli("diff", report_json, nested), "")


# ------------------------------------------------------------------------------ regress


def test_regress_checks_every_checkpoint_before_running_any(tmp_path, monkeypatch, never_runs):
    monkeypatch.chdir(tmp_path)
    toy = REPO / "hypotheses" / "toy_sentiment.yaml"
    assert_refused(cli("regress", toy, "--checkpoints", "../../outside/ESCAPED"), "checkpoint")
    assert_refused(cli("regress", toy, "--checkpoints", "final,99999"), "no checkpoint 99999")
    assert_refused(cli("regress", toy, "--checkpoints", ",,,"), "names no checkpoint")
    assert not list(tmp_path.rglob("ESCAPED")) and not (tmp_path.parent / "outside").exists()
    path = write_hypothesis(tmp_path / "h", top="checkpoints: ['../../x']")
    assert_refused(cli("regress", path), "checkpoint")


# ---------------------------------------------------------------------------- report.md


def test_report_md_escapes_html_from_the_hypothesis():
    report_input = sample_report_input()
    report_input.description = "<script>alert(1)</script> & more"
    text = render_markdown(report_input)
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in text


# ------------------------------------------------------------------------------ usage errors


def test_a_usage_error_at_the_console_is_one_line_too(tmp_path):
    """Not a framed box: a bad option value or a missing argument reads like every other bad input."""
    for args, fragment in (
        (["verify", "x.yaml", "--seed", "abc"], "--seed"),
        (["validate"], "Missing argument"),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "circuitspec.cli.main", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert out.returncode == 2 and out.stdout == "", out
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0] and "--help" in lines[0], out.stderr
