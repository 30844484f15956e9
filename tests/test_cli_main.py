"""The command line: exit codes, one-line errors, no torch for validate/graph/schema, and a fuzzer."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import circuitspec.pipeline
from circuitspec.cli.main import app, validate
from circuitspec.errors import CircuitSpecError
from circuitspec.spec.schema import CLAIM_KINDS

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "spec"
SENTIMENT = ROOT / "hypotheses" / "gpt2_sentiment.yaml"
LOCATED = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+\n?$")
runner = CliRunner()


def test_validate_prints_a_summary_and_exits_0() -> None:
    result = runner.invoke(app, ["validate", str(SENTIMENT)])
    assert result.exit_code == 0, result.output
    assert "hypothesis 'gpt2_sentiment', 22 claims" in result.stdout
    assert "(12 layers × 12 heads)" in result.stdout


def test_graph_dot_shows_the_transformation_path_and_the_preservation_group() -> None:
    result = runner.invoke(app, ["graph", str(SENTIMENT), "--format", "dot"])
    assert result.exit_code == 0, result.output
    dot = result.stdout
    assert dot.startswith('digraph "gpt2_sentiment" {') and dot.rstrip().endswith("}")
    # one box per component; edges labelled with how and where the target receives
    assert '"MLP0" -> "L7H5" [label="v@s_con"];' in dot
    assert '"L7H5" -> "MLP9" [label="mlp_in@end"];' in dot
    cluster = re.search(
        r'subgraph cluster_\d+ \{\n    label="preservation";\n(?P<body>(?:    .*\n)+?)  \}', dot
    )
    assert cluster, dot
    assert re.findall(r'^    "([^"]+)" \[tooltip="', cluster["body"], flags=re.M) == ["L10H1", "L10H4"]
    assert dot.count("{") == dot.count("}")


def test_graph_mermaid_has_subgraphs_and_channel_labels() -> None:
    result = runner.invoke(app, ["graph", str(SENTIMENT), "-f", "mermaid"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("flowchart LR\n")
    ids = dict(re.findall(r'(n\d+)\["([^"]+)"\]', text))
    names = {v: k for k, v in ids.items()}
    assert f'{names["MLP0"]} -->|"v@s_con"| {names["L7H5"]}' in text
    assert f'{names["L7H5"]} -->|"mlp_in@end"| {names["MLP9"]}' in text
    start = re.search(r'subgraph g\d+ \["preservation"\]', text)
    assert start, text
    block = text[start.start() :].split("  end")[0]
    assert names["L10H1"] in block and names["L10H4"] in block
    assert text.count("subgraph") == text.count("  end\n")


def test_schema_is_the_json_schema_of_a_hypothesis() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Hypothesis"
    assert set(schema["required"]) >= {"name", "data", "claims"}
    assert {"required": ["model"]} in schema["anyOf"]  # one `model:`, or several under `models:`
    claim_refs = {ref["$ref"].rsplit("/", 1)[-1] for ref in schema["properties"]["claims"]["items"]["oneOf"]}
    assert "ScalingClaim" in claim_refs and "BehaviourClaim" in claim_refs
    assert len(claim_refs) == len(CLAIM_KINDS)  # one model per claim kind


def test_verify_passes_options_to_the_pipeline_and_returns_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_verify(path, **options):
        calls.append((path, options))
        return 1

    monkeypatch.setattr(circuitspec.pipeline, "verify", fake_verify)
    args = ["verify", str(SENTIMENT), "--checkpoint", "1000", "--out", "o", "--allow-inconclusive"]
    result = runner.invoke(
        app, [*args, "--junit", "j.xml", "--baseline", "b.json", "--seed", "7", "--split", "explore"]
    )
    assert result.exit_code == 1
    ((path, options),) = calls
    assert path == SENTIMENT
    assert options == {
        "checkpoint": 1000,
        "out": Path("o"),
        "allow_inconclusive": True,
        "junit": Path("j.xml"),
        "baseline": Path("b.json"),
        "seed": 7,
        "allow_errors": False,
        "split": "explore",
        "model_overrides": {},
    }
    overrides = ["--device", "cuda:1", "--dtype", "bfloat16"]
    runner.invoke(app, ["verify", str(SENTIMENT), "--checkpoint", "final", *overrides])
    assert calls[-1][1]["model_overrides"] == {"device": "cuda:1", "dtype": "bfloat16"}
    assert calls[-1][1]["checkpoint"] == "final" and calls[-1][1]["out"] is None


def test_verify_turns_bad_input_into_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    def bad(path, **options):
        raise CircuitSpecError("model 'x' is not available here", file="h.yaml", line=3, col=5)

    import circuitspec.compare.run

    monkeypatch.setattr(circuitspec.compare.run, "verify_file", bad)  # what `verify FILE` calls
    result = runner.invoke(app, ["verify", "h.yaml"])
    assert result.exit_code == 2
    assert result.stderr == "h.yaml:3:5: model 'x' is not available here\n"


def test_validate_graph_schema_import_neither_torch_nor_transformer_lens() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from circuitspec.cli.main import app\n"
        f"for args in (['validate', {str(SENTIMENT)!r}], ['graph', {str(SENTIMENT)!r}], ['schema']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "heavy = sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('torch', 'transformer_lens', 'sae_lens'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_console_script_validate_runs_as_users_run_it() -> None:
    """`circuitspec validate` in a fresh interpreter (start-up time: benchmarks/bench_cli_startup.py)."""
    out = subprocess.run(
        [sys.executable, "-m", "circuitspec.cli.main", "validate", str(SENTIMENT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr


# ------------------------------------------------------------------------------ fuzzer

SEEDS = [(FIXTURES / name).read_text(encoding="utf-8") for name in ("fuzz_seed.yaml", "base.yaml")]
VOCAB = [
    "L7H5",
    "L12H0",
    "L1H99",
    "L0H0.q",
    "MLP0.tc[318]@b",
    "MLP0.tc[49]",
    "MLP11.post[4000]",
    "resid_pre12",
    "logits",
    "embed@a",
    "@",
    "@zz",
    "[",
    "]",
    "{",
    "}",
    "->",
    " -> ",
    "→",
    ":",
    ": ",
    "- ",
    ", ",
    "&x ",
    "*x",
    "!!python/name:os.system ",
    "!custom ",
    "null",
    "~",
    "''",
    '"',
    "1e999",
    "-1",
    "0",
    "2.5",
    "true",
    "[]",
    "{}",
    "each: true",
    "kind: ablate",
    "kind: scaling",
    "source: b",
    "destination: a",
    "at: MLP3",
    "s_con",
    "end",
    "data: [nope]",
    "expect: mean >> 1",
    "increases with layer",
    "no effect within 0",
    "within ±-1",
    "\t",
    "é",
    "---",
    "#",
    "\n",
    "\n  ",
    "\n- ",
    "99999999999999999999999",
    "interaction: true",
    "alphas: []",
    "{a:x}",
    "equivalence: {L9H9: [q]}",
    "method: soft",
    "version: 2",
    "causal: false",
    "shape: {n_layers: 1}",
]
OPS = ("delete_line", "duplicate_line", "swap_lines", "insert", "replace_word", "truncate")


def mutate(text: str, edits: list[tuple[str, int, int, str]]) -> str:
    """Apply small textual edits (line- and token-level) to a hypothesis file."""
    for op, i, j, token in edits:
        lines = text.split("\n")
        a, b = i % len(lines), j % len(lines)
        if op == "delete_line":
            del lines[a]
        elif op == "duplicate_line":
            lines.insert(a, lines[a])
        elif op == "swap_lines":
            lines[a], lines[b] = lines[b], lines[a]
        elif op == "insert":
            line = lines[a]
            cut = j % (len(line) + 1)
            lines[a] = line[:cut] + token + line[cut:]
        elif op == "replace_word":
            words = re.split(r"(\s+|[,\[\]{}:])", lines[a])
            candidates = [k for k, w in enumerate(words) if w.strip() and w not in ",[]{}:"]
            if candidates:
                words[candidates[j % len(candidates)]] = token
            lines[a] = "".join(words)
        elif op == "truncate":
            return "\n".join(lines)[: j % (len(text) + 1)]
        text = "\n".join(lines)
    return text


# value-level edits keep the YAML well formed more often, so most examples reach the graph checks
WEIGHTED_OPS = OPS + ("replace_word",) * 6
EDITS = st.lists(
    st.tuples(
        st.sampled_from(WEIGHTED_OPS), st.integers(0, 10_000), st.integers(0, 10_000), st.sampled_from(VOCAB)
    ),
    min_size=1,
    max_size=4,
)
_FUZZ_DIR = Path(tempfile.mkdtemp(prefix="circuitspec-fuzz-"))


# 2000 examples take ~25 s on an idle 2-core machine; raise CIRCUITSPEC_FUZZ_EXAMPLES for a longer hunt
FUZZ_EXAMPLES = int(os.environ.get("CIRCUITSPEC_FUZZ_EXAMPLES", "2000"))


@settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(seed=st.sampled_from(range(len(SEEDS))), edits=EDITS)
def test_mutated_hypotheses_never_crash_the_cli(seed: int, edits: list[tuple[str, int, int, str]]) -> None:
    path = _FUZZ_DIR / "h.yaml"
    path.write_text(mutate(SEEDS[seed], edits), encoding="utf-8")
    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        try:
            validate(path)
            code = 0
        except typer.Exit as exit_:
            code = exit_.exit_code
    if code == 0:
        assert stdout.getvalue().startswith("ok: ")
    else:
        assert code == 2
        assert LOCATED.match(stderr.getvalue()), repr(stderr.getvalue())
