"""``regress --ray``: a local 2-CPU Ray cluster gives the serial run's reports, and a dead worker is
retried once, then reported as error cells while the other checkpoints land.

The hypothesis is the bundled toy model's, trimmed to three claims on 32 prompts of one template so
that the serial reference and the Ray run of all 7 checkpoints fit in about a minute each on two
shared cores (the full toy hypothesis is timed in benchmarks/bench_ray_regress.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from circuitspec.checkpoints import regress
from circuitspec.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
SMALL = """\
version: 1
name: toy_small
model:
  bundled: toy_sentiment
data:
  file: data/toy_sentiment_pairs.jsonl
  n: 32
  seed: 0
  corrupt:
    set: {s_con: "{s_ori}"}
  templates:
    - id: sub_contextual
      text: "{s_ori}: This {noun} is {w_ori}. {s_con}: This {noun_con} is"
      desired: " {w_con}"
      undesired: " {w_ori}"
claims:
  - id: does_substitution
    kind: behaviour
    expect: success_rate >= 0.9
  - id: label_reader_attends_label
    kind: attention
    require: [does_substitution]
    targets: L0H0
    source: end
    destination: s_con
    expect: mean > 0.3
  - id: label_reader_restores
    kind: activation_patching
    direction: denoising
    targets: L0H0
    expect: recovered >= 0.7
"""
CHECKPOINTS = [
    "step_00000",
    "step_00020",
    "step_00050",
    "step_00100",
    "step_00200",
    "step_00400",
    "step_00600",
]


def _write_hypothesis(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    shutil.copy(ROOT / "hypotheses" / "data" / "toy_sentiment_pairs.jsonl", folder / "data")
    path = folder / "toy_small.yaml"
    path.write_text(SMALL)
    return path


# both Ray modules on one xdist worker: each starts a 2-CPU cluster, one at a time on the 2 cores
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory):
    """The serial regress of every checkpoint: the reference the Ray runs must reproduce."""
    folder = tmp_path_factory.mktemp("ray_regress")
    path = _write_hypothesis(folder / "hypothesis")
    result = regress(path, None, out=folder / "serial", progress=False)
    return path, folder, result


def _report(folder: Path, checkpoint: str) -> dict:
    """A checkpoint's report.json without its timings (wall times differ between any two runs)."""
    data = json.loads((folder / f"checkpoint-{checkpoint}" / "report.json").read_text())
    del data["timings"]
    return data


def _markdown(folder: Path, checkpoint: str) -> str:
    """report.md up to its Cost section (seconds)."""
    return (folder / f"checkpoint-{checkpoint}" / "report.md").read_text().split("## Cost")[0]


@pytest.mark.slow
def test_ray_regress_gives_the_serial_reports(ray_cluster, serial) -> None:
    from circuitspec.distributed.regress import regress_on_ray

    path, folder, reference = serial
    result = regress_on_ray(path, None, out=folder / "ray")
    assert reference.matrix.checkpoints == CHECKPOINTS
    assert (folder / "ray" / "regression.json").read_bytes() == (
        folder / "serial" / "regression.json"
    ).read_bytes()
    assert result.exit_code == reference.exit_code
    for checkpoint in CHECKPOINTS:
        assert _report(folder / "ray", checkpoint) == _report(folder / "serial", checkpoint)
        assert _markdown(folder / "ray", checkpoint) == _markdown(folder / "serial", checkpoint)
    verdicts = {row.claim_id: row.cells["step_00600"].verdict for row in result.matrix.rows}
    assert verdicts["label_reader_restores"] == "pass"  # a real run, not an empty matrix


def _dying_run(marks: str, once: str, always: str):
    """A ``run_verification`` that kills its worker process on ``once``'s first try and on every try
    of ``always`` (pickled by value to the workers: it is defined inside a function)."""

    def run(path, *, checkpoint=None, **options):
        import os
        from pathlib import Path

        from circuitspec.pipeline import run_verification

        if checkpoint in (once, always):
            tries = Path(marks) / f"{checkpoint}.tries"
            with tries.open("a") as handle:
                handle.write("x")
            if checkpoint == always or len(tries.read_text()) == 1:
                os._exit(1)  # the worker dies mid-job, as a kill or the OOM killer would end it
        return run_verification(path, checkpoint=checkpoint, **options)

    return run


@pytest.mark.slow
def test_a_dead_worker_is_retried_once_then_an_error_cell(ray_cluster, serial, tmp_path: Path) -> None:
    from circuitspec.distributed.regress import regress_on_ray

    path, folder, _ = serial
    marks = tmp_path / "marks"
    marks.mkdir()
    wanted = ["step_00050", "step_00100", "step_00600"]
    run = _dying_run(str(marks), once="step_00050", always="step_00100")
    result = regress_on_ray(path, ",".join(wanted), out=tmp_path / "ray", run=run)

    assert (marks / "step_00050.tries").read_text() == "xx"  # died once, retried, landed
    assert (marks / "step_00100.tries").read_text() == "xx"  # died on both tries
    assert result.exit_code == 2  # an error cell: could not be measured
    matrix = json.loads((tmp_path / "ray" / "regression.json").read_text())
    assert [c["name"] for c in matrix["checkpoints"]] == wanted
    for claim in matrix["claims"]:
        dead = claim["cells"][1]
        assert dead["verdict"] == "error" and dead["estimate"] is None
        assert "died on both tries" in dead["reason"]
        assert all(cell["verdict"] != "error" for cell in (claim["cells"][0], claim["cells"][2]))
    assert matrix["checkpoints"][1]["report_dir"] is None
    assert not (tmp_path / "ray" / "checkpoint-step_00100" / "report.json").exists()
    for checkpoint in ("step_00050", "step_00600"):  # the retried and the untouched cells: as serial
        assert _report(tmp_path / "ray", checkpoint) == _report(folder / "serial", checkpoint)


def test_without_ray_the_flag_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    path = _write_hypothesis(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as on an install without it
    result = CliRunner().invoke(app, ["regress", str(path), "--ray"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: --ray needs Ray, which is not installed: pip install 'circuitspec[ray]'"
    ]
    assert not (tmp_path / "reports").exists()


def test_the_cli_starts_without_importing_ray() -> None:
    code = "import sys, circuitspec.cli.main; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
