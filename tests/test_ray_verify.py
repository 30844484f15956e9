"""``verify FILES... --ray``: two files on one model share one worker and one model load, and give the
reports serial ``verify`` gives; the options Ray cannot honour are one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circuitspec import pipeline
from circuitspec.cli.main import app
from tests.test_ray_regress import SMALL, _write_hypothesis

# both Ray modules on one xdist worker: each starts a 2-CPU cluster, one at a time on the 2 cores
pytestmark = pytest.mark.xdist_group("ray")


def _two_files(folder: Path) -> list[Path]:
    first = _write_hypothesis(folder)
    second = folder / "toy_small_b.yaml"
    second.write_text(SMALL.replace("name: toy_small\n", "name: toy_small_b\nseed: 3\n"))
    return [first, second]


def _recording_run(log: str):
    """``run_verification`` that notes which process and which model object ran each file."""

    def run(path, *, loaded_model=None, **options):
        import os

        from circuitspec.pipeline import run_verification

        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {id(loaded_model)}\n")
        return run_verification(path, loaded_model=loaded_model, **options)

    return run


def _report(folder: Path) -> dict:
    data = json.loads((folder / "report.json").read_text())
    del data["timings"]
    return data


@pytest.mark.slow
def test_files_sharing_a_model_load_it_once_and_match_serial_verify(ray_cluster, tmp_path, monkeypatch):
    from circuitspec.distributed.verify import verify_on_ray

    monkeypatch.chdir(tmp_path)
    files = _two_files(tmp_path)
    codes = [pipeline.verify(f, out=tmp_path / "serial" / f.stem, progress=False) for f in files]
    log = tmp_path / "runs.log"
    code = verify_on_ray([str(f) for f in files], run=_recording_run(str(log)))

    assert code == max(codes)
    runs = log.read_text().split("\n")[:-1]
    assert len(runs) == 2 and runs[0] == runs[1]  # one worker process, one model object for both files
    for f in files:
        assert _report(tmp_path / "reports" / f.stem) == _report(tmp_path / "serial" / f.stem)
    assert _report(tmp_path / "reports" / "toy_small")["seed"] == 0
    assert _report(tmp_path / "reports" / "toy_small_b")["seed"] == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "verify takes one file, or several with --ray (2 given)"),
        (
            ["--ray", "--junit", "out.xml"],
            "--junit is not available with --ray: verify that file without --ray",
        ),
        (["--ray-address", "nonsense"], "--ray-address 'nonsense': write auto, HOST:PORT or ray://HOST:PORT"),
        (
            ["--ray-address", "127.0.0.1:1"],  # nothing listens on port 1: refused at once, not after minutes
            "cannot reach the Ray cluster at 127.0.0.1:1: Connection refused (is `ray start` running?)",
        ),
        (
            ["--ray", "-o", "out"],
            "--out names one report folder: with several files each goes to reports/<name>/",
        ),
    ],
)
def test_what_ray_cannot_do_is_one_line(tmp_path, monkeypatch, extra, message) -> None:
    monkeypatch.chdir(tmp_path)
    files = [str(f) for f in _two_files(tmp_path)]
    result = CliRunner().invoke(app, ["verify", *files, *extra])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [message]
