"""The regression matrix on the bundled toy sentiment model: the circuit appears during training.

Runs the real pipeline on the first and the final checkpoint of ``hypotheses/toy_sentiment.yaml``
(skipped until that file exists): the untrained model must not pass the hypothesis, the trained
one must pass all of it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from rich.console import Console

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TOY.is_file(), reason="hypotheses/toy_sentiment.yaml not written yet"),
]


def test_claims_pass_only_after_training(tmp_path, monkeypatch):
    import torch

    from circuitspec.checkpoints import regress
    from circuitspec.zoo.catalog import BUNDLED

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    checkpoints = list(BUNDLED["toy_sentiment"].checkpoints)
    assert len(checkpoints) >= 5
    first, final = checkpoints[0], checkpoints[-1]

    monkeypatch.chdir(tmp_path)
    result = regress(TOY, [first, final], out=tmp_path / "out", progress=False, console=Console(quiet=True))

    matrix = json.loads(result.paths["json"].read_text())
    verdicts = {claim["id"]: [cell["verdict"] for cell in claim["cells"]] for claim in matrix["claims"]}
    at_first = [v[0] for v in verdicts.values()]
    at_final = [v[1] for v in verdicts.values()]
    assert all(v == "pass" for v in at_final), verdicts
    assert at_first.count("pass") < len(at_first), verdicts  # the untrained model lacks the circuit
    # the worst over checkpoints: the untrained one's fails are not hidden by the final one's passes
    assert result.exit_code == (2 if "error" in at_first else 1)
    for checkpoint in (first, final):
        report = json.loads((tmp_path / "out" / f"checkpoint-{checkpoint}" / "report.json").read_text())
        assert report["checkpoint"] == checkpoint
