"""The claim registry: one entry per kind, torch-free, and validate rejecting what verify would."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from circuitspec.claims import REGISTRY, claim_kind
from circuitspec.claims.rules import PATH_RECEIVER, PATH_SENDER, SCRUB_RECEIVER, SCRUB_SENDER
from circuitspec.errors import CircuitSpecError
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.spec.geometry import is_dictionary_feature, receive_channels, writes
from circuitspec.spec.loader import load_hypothesis
from circuitspec.spec.nodes import parse_node
from circuitspec.spec.schema import CLAIM_KINDS

TOY = Path(__file__).resolve().parents[1] / "hypotheses" / "toy_sentiment.yaml"
LOCATED = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")
EVERY_FORM = [
    "embed", "pos_embed", "L1H0", "L1H0.q", "L1H0.k", "L1H0.v", "L1H0.pattern", "MLP1", "MLP1.in",
    "MLP1.post[3]", "resid_pre1", "resid_mid1", "resid_post1", "MLP1.tc[3]", "resid_pre1.sae[2]", "logits",
]  # fmt: skip


def test_one_entry_per_schema_kind_each_with_its_schema_model():
    assert list(REGISTRY) == list(CLAIM_KINDS)
    for name, kind in REGISTRY.items():
        assert kind.schema.model_fields["kind"].annotation.__args__ == (name,)
        assert kind.measure.startswith("circuitspec.engine.interventions.")
    with pytest.raises(KeyError, match="valid: attribution"):
        claim_kind("nope")


def test_registry_imports_without_torch():
    script = "import sys, circuitspec.claims, circuitspec.graph.compile; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


@pytest.mark.parametrize("text", EVERY_FORM)
def test_path_rules_follow_the_geometry(text):
    node = parse_node(text)
    assert PATH_SENDER(node) == (writes(node) is not None)
    assert PATH_RECEIVER(node) == (bool(receive_channels(node)) and not is_dictionary_feature(node))
    if SCRUB_SENDER(node):
        assert PATH_SENDER(node) and writes(node) != "neuron"
    if SCRUB_RECEIVER(node):
        assert PATH_RECEIVER(node) and receive_channels(node)[0] != "resid"


def _toy_with(tmp_path: Path, claim: str) -> Path:
    """The toy hypothesis with one more claim appended, beside a link to its data folder."""
    (tmp_path / "data").symlink_to(TOY.parent / "data")
    path = tmp_path / "toy.yaml"
    path.write_text(TOY.read_text() + claim)
    return path


def _validate_error(tmp_path: Path, claim: str) -> str:
    path = _toy_with(tmp_path, claim)
    with pytest.raises(CircuitSpecError) as info:
        compile_hypothesis(load_hypothesis(path))
    message = str(info.value)
    assert "\n" not in message and LOCATED.match(message), message
    return LOCATED.match(message)["msg"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("claim", "fragment"),
    [
        (
            '  - {id: pp_feature, kind: path_patching, targets: ["L0H0 -> MLP1.tc[3]"], expect: mean < 0}\n',
            "path_patching edge 'L0H0 -> MLP1.tc[3]': 'MLP1.tc[3]' cannot be a receiver",
        ),
        (
            '  - {id: cs_feature, kind: causal_scrubbing, targets: ["L0H0 -> MLP1.tc[3] -> logits"], '
            "expect: recovered > 0.5}\n",
            "causal_scrubbing edge 'L0H0 -> MLP1.tc[3]': 'MLP1.tc[3]' cannot be a receiver",
        ),
        (
            '  - {id: pp_late, kind: path_patching, targets: ["MLP0.in -> MLP0"], expect: mean < 0}\n',
            "'MLP0' reads the residual stream before 'MLP0.in' writes it",
        ),
        (
            '  - {id: cs_neuron, kind: causal_scrubbing, targets: ["MLP0.post[3] -> logits"], '
            "expect: recovered > 0.5}\n",
            "'MLP0.post[3]' cannot be a sender",
        ),
        (
            '  - {id: cs_resid, kind: causal_scrubbing, targets: ["L0H0 -> resid_post1 -> logits"], '
            "expect: recovered > 0.5}\n",
            "'resid_post1' cannot be a receiver",
        ),
        (
            '  - {id: cs_stranded, kind: causal_scrubbing, targets: ["L0H0 -> MLP1"], '
            "expect: recovered > 0.5}\n",
            "L0H0, MLP1 do(es) not reach logits",
        ),
        (
            '  - {id: pp_joint, kind: path_patching, targets: ["L0H0 -> MLP0 -> logits", "L0H1 -> MLP1"], '
            "expect: mean < 0}\n",
            "several multi-hop paths cannot be patched jointly",
        ),
        (
            "  - {id: dla_neuron, kind: attribution, targets: ['MLP0.post[3]'], expect: mean > 0}\n",
            "a attribution claim cannot act on 'MLP0.post[3]'",
        ),
    ],
    ids=["pp-feature", "cs-feature", "pp-order", "cs-neuron", "cs-resid", "cs-stranded", "pp-joint", "dla"],
)
def test_validate_rejects_what_verify_would(tmp_path, claim, fragment):
    assert fragment in _validate_error(tmp_path, claim)


def test_validate_cli_prints_the_located_line_and_exits_2(tmp_path):
    path = _toy_with(
        tmp_path, '  - {id: pp, kind: path_patching, targets: ["L0H0 -> MLP1.tc[3]"], expect: mean < 0}\n'
    )
    try:
        out = subprocess.run(
            [sys.executable, "-m", "circuitspec.cli.main", "validate", str(path)],
            capture_output=True,
            text=True,
        )
    finally:
        path.unlink()
    assert out.returncode == 2
    assert "cannot be a receiver" in out.stdout + out.stderr
