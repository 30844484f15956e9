"""``circuitspec discover`` on models whose circuits are known.

* The planted zoo (docs/zoo.md): at the default threshold EAP-IG on activations keeps exactly the
  planted edges that carry the corruption's effect, pinned to their roles, and no decoy (a head that
  attends like the real one but writes nothing, a wrong channel); the emitted YAML validates and
  every claim passes on the held-out rows. The zoo files have 30-32 rows and no split, so discovery
  adds one with ``test_fraction 0.7``: the held-out split then has the 20 prompts ``min_n`` asks for.
  EAP-IG (the default method, on the input embeddings) finds the same edges but one:
  zoo.suppression's ``L0H0 -> L1H0.q`` (path patching it alone gives +1.6). Its effect exists only
  when the query is corrupted while the keys stay clean; on the straight line from corrupted to
  clean inputs query and key move together, L1H0's attention stays saturated on the name, and every
  gradient through its query is 0. Interpolating L0H0's output alone (eap-ig-act) leaves the keys
  clean, so the query's gradient is not 0 at the corrupted end.
* The bundled toy model (docs/toy_sentiment.md): the label readers L0H0 (through its value) and
  L0H3 (through its key) at the second label, into MLP0 at the end, MLP0 -> MLP1 -> logits. The
  word carriers L0H1 / L0H2 are not found: this hypothesis' corruption changes only the second
  label, so nothing they carry differs between the runs (activation patching them gives ~0 too).
"""

from __future__ import annotations

import json

import pytest

from circuitspec.discover.run import discover
from circuitspec.pipeline import run_verification

PLANTED = {
    "induction": {"embed@a -> L0H0.v@a", "L0H0@b -> L1H1.k@b", "L1H1@a2 -> logits"},
    "label_mover": {"embed@label -> MLP0@label", "MLP0@label -> L1H0.v@label", "L1H0@end -> logits"},
    "suppression": {
        "embed@name -> L0H0.v@name",
        "L0H0@end -> logits",
        "L0H0@end -> L1H0.q@end",
        "embed@name -> L1H0.v@name",
        "L1H0@end -> logits",
    },
}
QUERY_EDGE = "L0H0@end -> L1H0.q@end"  # zoo.suppression: out of EAP-IG's reach (module docstring)
DECOYS = {"induction": {"L0H1"}, "label_mover": {"L1H1"}, "suppression": {"L0H1", "L1H1"}}
WRONG_CHANNELS = {"induction": {"L1H1.q"}, "label_mover": {"L1H0.k"}, "suppression": {"L1H0.k"}}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_zoo_eap_ig_recovers_the_planted_edges(name, tmp_path):
    result = discover(f"hypotheses/zoo/{name}.yaml", output=tmp_path / "x.yaml", test_fraction=0.7)
    expected = PLANTED[name] - ({QUERY_EDGE} if name == "suppression" else set())  # the documented miss
    assert {edge.path for edge in result.kept} == expected
    assert not {c for edge in result.kept for c in edge.components} & DECOYS[name]
    assert not {part for edge in result.kept for part in (edge.sender, edge.receiver)} & WRONG_CHANNELS[name]


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_zoo_eap_ig_act_recovers_every_planted_edge_and_verifies(name, tmp_path):
    out = tmp_path / f"{name}.yaml"
    result = discover(f"hypotheses/zoo/{name}.yaml", method="eap-ig-act", output=out, test_fraction=0.7)
    assert {edge.path for edge in result.kept} == PLANTED[name]
    assert not {c for edge in result.kept for c in edge.components} & DECOYS[name]
    assert not {part for edge in result.kept for part in (edge.sender, edge.receiver)} & WRONG_CHANNELS[name]
    assert result.curve["points"][-1]["faithfulness"] == pytest.approx(1.0, abs=1e-4)
    out.write_text(result.yaml_text)
    verification = run_verification(out, progress=False)  # on the held-out rows (thresholds_set_on: explore)
    kinds = [c.kind for c in verification.graph.claims]
    assert kinds.count("path_patching") == len(PLANTED[name]) and {"faithfulness", "ablation"} <= set(kinds)
    assert all(v == "pass" for v in verification.verdicts.values()), verification.verdicts


def test_suppression_query_edge_is_the_documented_miss(tmp_path):
    from circuitspec.discover.session import open_session
    from circuitspec.engine.attribution_patching import attribution_patching
    from circuitspec.engine.paths import path_patch_edges
    from circuitspec.spec.nodes import parse_node

    ctx = open_session("hypotheses/zoo/suppression.yaml", test_fraction=0.7).ctx
    scores = attribution_patching(ctx, method="eap-ig")
    s, r = scores.graph.senders.index("L0H0"), scores.graph.receivers.index("L1H0.q")
    assert abs(float(scores.totals[s, r])) < 1e-6
    patched, base, _ = path_patch_edges(ctx, [(parse_node("L0H0@end"), parse_node("L1H0.q@end"))])
    assert float((patched[0] - base).mean()) == pytest.approx(1.6, abs=1e-3)


def test_toy_discovery_finds_the_label_circuit(tmp_path):
    result = discover("hypotheses/toy_sentiment.yaml", output=tmp_path / "toy.yaml")
    paths = {edge.path for edge in result.kept}
    assert {
        "embed@s_con -> L0H0.v@s_con", "embed@s_con -> L0H3.k@s_con", "L0H0@end -> MLP0@end",
        "L0H3@end -> MLP0@end", "MLP0@end -> MLP1@end", "MLP1@end -> logits",
    } <= paths  # fmt: skip
    assert set(result.discovery.components) == {"L0H0", "L0H3", "MLP0", "MLP1"}  # no word carrier, no layer 1
    for edge, effect in zip(result.kept, result.discovery.edge_effects, strict=True):
        assert effect < 0 and edge.score < 0  # every kept edge carries the label's effect
    points = result.curve["points"]
    assert points[-1]["faithfulness"] == pytest.approx(1.0, abs=1e-3)
    assert [p["edges"] for p in points] == sorted(p["edges"] for p in points)


def test_cli_writes_a_valid_hypothesis_and_its_curve(tmp_path):
    from typer.testing import CliRunner

    from circuitspec.cli.main import app

    out = tmp_path / "found.yaml"
    runner = CliRunner()
    args = ["discover", "hypotheses/zoo/label_mover.yaml", "--top-k", "2", "--method", "eap", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "MLP0@label -> L1H0.v@label" in out.read_text()
    curve = json.loads(out.with_suffix(".curve.json").read_text())
    assert curve["kept"] == 2 and curve["method"] == "eap" and 0 <= curve["cmd"] <= 1
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    again = runner.invoke(app, args)  # never overwrites without --force
    assert again.exit_code == 2 and "exists" in again.output and len(again.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "acdc"], "not a discovery method"),
        (["--threshold", "2"], "--threshold"),
        (["--split", "dev"], "--split"),
    ],
)
def test_cli_bad_options_are_one_line(tmp_path, extra, message):
    from typer.testing import CliRunner

    from circuitspec.cli.main import app

    args = ["discover", "hypotheses/zoo/label_mover.yaml", "-o", str(tmp_path / "x.yaml"), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(("split", "set_on"), [("explore", "explore"), ("test", "test"), ("all", None)])
def test_emitted_file_says_where_thresholds_were_set(tmp_path, split, set_on):
    import yaml

    out = tmp_path / "x.yaml"
    result = discover("hypotheses/zoo/label_mover.yaml", output=out, split=split, test_fraction=0.7)
    doc = yaml.safe_load(result.yaml_text)
    assert doc.get("thresholds_set_on") == set_on
    assert doc["data"]["split"] == {"test_fraction": 0.7, "seed": 0}  # added: the source has none
    assert doc["data"]["allow_outside"] is True and doc["data"]["file"].endswith("label_mover.jsonl")
    assert (set_on is None) == ("no held-out rows" in result.yaml_text)
