"""CLI conventions (issue 17, items 5, 6 and 9): `--version`, `-o/--out` and `--seed` where they apply,
`regress` exiting with the worst code over checkpoints after checking all of them, plain progress lines
when stderr is not a terminal, and a `diff` that imports neither scipy.stats nor matplotlib."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from test_regress_matrix import KINDS, FakeRun
from typer.testing import CliRunner

import circuitspec
import circuitspec.checkpoints
import circuitspec.pipeline
from circuitspec.checkpoints import regress
from circuitspec.cli.main import app
from circuitspec.engine.progress import ClaimProgress
from circuitspec.errors import CircuitSpecError
from circuitspec.pipeline import Verification
from circuitspec.spec.loader import load_hypothesis
from circuitspec.stats.outcome import ClaimOutcome, Interval
from tests.helpers.tiny_matrix import HYPOTHESIS

ROOT = Path(__file__).resolve().parents[1]
SUPPRESSION = ROOT / "hypotheses" / "zoo" / "suppression.yaml"
runner = CliRunner()


def test_version_prints_the_package_version_and_exits_0() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"circuitspec {circuitspec.__version__}"


@pytest.mark.parametrize(
    "command", [["verify"], ["baseline"], ["regress"], ["data", "derive-words"]], ids=" ".join
)
def test_every_command_that_writes_files_takes_o_and_out(command: list[str]) -> None:
    text = runner.invoke(app, [*command, "--help"], terminal_width=200).stdout
    assert re.search(r"--out\s+-o\b", text), text


def test_verify_short_o_reaches_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(circuitspec.pipeline, "verify", lambda path, **options: calls.append(options) or 0)
    result = runner.invoke(app, ["verify", str(SUPPRESSION), "-o", "somewhere"])
    assert result.exit_code == 0, result.output
    assert calls[0]["out"] == Path("somewhere")


def test_seed_reaches_every_verification_of_regress_and_baseline(tiny_matrix_hypothesis, monkeypatch) -> None:
    seeds: list[int | None] = []

    def run(path, *, checkpoint=None, seed=None, progress=True):
        seeds.append(seed)
        return FakeRun()(path, checkpoint=checkpoint, seed=seed, progress=progress)

    monkeypatch.setattr(circuitspec.pipeline, "run_verification", run)
    result = runner.invoke(
        app, ["regress", str(tiny_matrix_hypothesis), "--checkpoints", "final,step_500", "--seed", "11"]
    )
    assert result.exit_code == 1, result.output  # step_500 leaves a claim inconclusive
    result = runner.invoke(
        app, ["baseline", str(tiny_matrix_hypothesis), "--checkpoint", "final", "--seed", "12"]
    )
    assert result.exit_code == 0, result.output
    assert seeds == [11, 11, 12]


def _run_with_verdicts(verdicts: dict[str, str]):
    """A stand-in for run_verification: every claim gets the checkpoint's verdict."""

    def run(path, *, checkpoint=None, seed=None, progress=True) -> Verification:
        outcomes = [
            ClaimOutcome(cid, kind, expect, stat, 0.0, Interval(-1.0, 1.0, 0.95, "BCa"),
                         verdicts[str(checkpoint)], "made up", 16)
            for cid, (kind, expect, stat) in KINDS.items()
        ]  # fmt: skip
        return Verification(
            hypothesis=load_hypothesis(path), graph=None, model_identity={"name": "tiny"}, measurements={},
            outcomes=outcomes, correction="holm", seed=0, checkpoint=checkpoint,
        )  # fmt: skip

    return run


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ({"step_0": "fail", "step_500": "pass", "final": "pass"}, 1),  # an early fail is not hidden
        ({"step_0": "pass", "step_500": "error", "final": "fail"}, 2),  # an error outranks a fail
        ({"step_0": "pass", "step_500": "pass", "final": "pass"}, 0),
    ],
)
def test_regress_exits_with_the_worst_code_over_checkpoints(
    tiny_matrix_hypothesis, verdicts, expected
) -> None:
    result = regress(
        tiny_matrix_hypothesis, None, run=_run_with_verdicts(verdicts), console=Console(quiet=True)
    )
    assert result.exit_code == expected


def test_regress_checks_every_checkpoint_before_the_first_runs(tmp_path, monkeypatch) -> None:
    from circuitspec.zoo.catalog import BUNDLED

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "h.yaml"
    path.write_text(
        HYPOTHESIS.replace("checkpoints: [step_0, step_500, final]\n", "").replace(
            "model: {name: tiny, shape: {n_layers: 2, n_heads: 2, d_model: 16}}",
            "model: {bundled: toy_sentiment}",
        )
    )
    first = BUNDLED["toy_sentiment"].checkpoints[0]
    fake = FakeRun()
    with pytest.raises(CircuitSpecError, match="step_99999"):
        regress(path, f"{first},step_99999", run=fake, console=Console(quiet=True))
    assert fake.calls == []  # refused before any checkpoint ran
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").rglob("report.json"))


def test_progress_is_one_plain_line_per_claim_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = ClaimProgress(3, stream=stream)  # a StringIO is not a terminal
    for done, claim_id in enumerate(["a", "b[L0H1]", "c"], 1):
        progress.measured(done, claim_id, passes=4 if claim_id == "a" else 0)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] measured 1/3 a \(\d+\.\d s, 4 passes\)", lines[0])
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] measured 2/3 b\[L0H1\] \(\d+\.\d s\)", lines[1])


def test_progress_on_a_terminal_draws_no_plain_lines() -> None:
    stream = io.StringIO()
    progress = ClaimProgress(2, stream=stream, interactive=True)
    progress.measured(1, "a")  # quicker than the bar's delay: nothing drawn at all
    progress.close()
    assert "measured 1/2" not in stream.getvalue()


@pytest.mark.slow
def test_verify_without_a_terminal_logs_every_claim_to_stderr(tmp_path: Path) -> None:
    from circuitspec.graph.compile import compile_hypothesis

    claim_ids = [claim.id for claim in compile_hypothesis(load_hypothesis(SUPPRESSION)).claims]
    done = subprocess.run(
        [sys.executable, "-m", "circuitspec.cli.main", "verify", str(SUPPRESSION), "-o", str(tmp_path / "r")],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    logged = re.findall(r"^\[[\d:]+\] measured (\d+)/(\d+) (\S+) \(", done.stderr, re.MULTILINE)
    assert logged == [(str(i), str(len(claim_ids)), cid) for i, cid in enumerate(claim_ids, 1)]
    assert "measured" not in done.stdout  # progress stays off stdout (the verdict table's stream)


def test_diff_imports_neither_scipy_stats_nor_matplotlib(tmp_path: Path) -> None:
    report = ROOT / "reports" / "toy_sentiment" / "baseline.json"
    code = (
        "import sys\n"
        "from circuitspec.cli.main import app\n"
        f"try:\n    app(['diff', {str(report)!r}, {str(report)!r}])\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "heavy = sorted(m for m in ('scipy.stats', 'matplotlib', 'torch') if m in sys.modules)\n"
        "print('EXIT', code, 'HEAVY', ','.join(heavy) or '-')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.stdout.splitlines()[-1] == "EXIT 0 HEAVY -", done.stdout + done.stderr


def test_verify_overrides_device_and_dtype_for_one_run(tmp_path):
    import json

    out = tmp_path / "out"
    args = ["verify", "hypotheses/zoo/suppression.yaml", "-o", str(out)]
    args += ["--device", "cpu", "--dtype", "float64"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    model = json.loads((out / "report.json").read_text(encoding="utf-8"))["model"]
    assert model["dtype"] == "float64" and model["device"] == "cpu"  # the file says float32 / auto


def test_a_bad_device_is_one_line(tmp_path):
    args = ["verify", "hypotheses/zoo/suppression.yaml", "-o", str(tmp_path / "out"), "--device", "gpu0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "--device 'gpu0' is not a device (valid: auto, cpu, cuda" in line


def test_a_bad_dtype_is_one_line_at_the_console(tmp_path):
    hypothesis = Path("hypotheses/zoo/suppression.yaml").resolve()
    args = ["verify", str(hypothesis), "-o", str(tmp_path / "out"), "--dtype", "int8"]
    done = subprocess.run(
        [sys.executable, "-m", "circuitspec.cli.main", *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2, done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "int8" in lines[0], lines
