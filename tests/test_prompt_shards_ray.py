"""``verify FILE --ray --shard-prompts K`` on a local 2-CPU Ray cluster: the shards run as separate
tasks, are merged before statistics and give the serial run's report; a shard whose worker dies on
both tries makes the file an error, never a report from part of the prompts.

The hypothesis is the trimmed toy one of tests/test_ray_regress.py (32 prompts of one template) with a
mean ablation (its means read from the whole prompt set on every shard) and a scaling sweep added.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circuitspec import pipeline
from circuitspec.cli.main import app
from tests.test_ray_regress import SMALL, _write_hypothesis

# with the other Ray modules on one xdist worker: each starts a 2-CPU cluster, one at a time
pytestmark = pytest.mark.xdist_group("ray")

SHARDED = (
    SMALL
    + """\
  - id: carriers_mean_ablated
    kind: ablation
    method: mean
    targets: [L0H1, L0H2]
    expect: mean < -2
  - id: label_value_scaling
    kind: scaling
    targets: [L0H0.v@s_con]
    alphas: [0, 1, 2]
    expect: mean increases with alpha
"""
)


def _write(folder: Path) -> Path:
    path = _write_hypothesis(folder)
    path.write_text(SHARDED)
    return path


def _report(folder: Path) -> dict:
    data = json.loads((folder / "report.json").read_text())
    del data["timings"]
    return data


def _dying_shard(marks: str, dies: int):
    """``run_verification`` whose prompt shard ``dies`` kills its worker on every try."""

    def run(path, *, shard=None, **options):
        import os
        from pathlib import Path

        from circuitspec.pipeline import run_verification

        if shard is not None and shard[0] == dies:
            with (Path(marks) / "tries").open("a") as handle:
                handle.write("x")
            os._exit(1)  # the worker dies mid-job, as a kill or the OOM killer would end it
        return run_verification(path, shard=shard, **options)

    return run


@pytest.mark.slow
def test_sharded_verify_gives_the_serial_report(ray_cluster, tmp_path, monkeypatch) -> None:
    from circuitspec.distributed.verify import verify_on_ray

    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path)
    serial_code = pipeline.verify(path, out=tmp_path / "serial", progress=False)
    code = verify_on_ray([str(path)], out=tmp_path / "sharded", shard_prompts=2)

    assert code == serial_code
    sharded = _report(tmp_path / "sharded")
    assert sharded == _report(tmp_path / "serial")
    claims = {c["id"]: c for c in sharded["claims"]}
    assert claims["label_reader_restores"]["verdict"] == "pass"  # a real run, not error cells
    assert claims["carriers_mean_ablated"]["n_prompts"] == 32


@pytest.mark.slow
def test_a_shard_whose_worker_dies_twice_makes_the_file_an_error(ray_cluster, tmp_path, monkeypatch) -> None:
    from circuitspec.distributed.verify import verify_on_ray

    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path)
    code = verify_on_ray(
        [str(path)], out=tmp_path / "sharded", shard_prompts=2, run=_dying_shard(str(tmp_path), 1)
    )

    assert code == 2
    assert (tmp_path / "tries").read_text() == "xx"  # tried, then retried once
    assert not (tmp_path / "sharded" / "report.json").exists()  # no report from half the prompts


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shard-prompts", "2"], "--shard-prompts splits prompts over Ray tasks: add --ray"),
        (["--ray", "--shard-prompts", "0"], "--shard-prompts 0: give a number of shards, 1 or more"),
    ],
)
def test_bad_shard_options_are_one_line(tmp_path, monkeypatch, extra, message) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path)
    result = CliRunner().invoke(app, ["verify", str(path), *extra])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [message]
