"""``circuitspec discover`` on models whose circuits are known.

* The planted zoo (docs/zoo.md): at the default threshold the default method (EAP-IG on
  activations) keeps exactly the planted edges that carry the corruption's effect, pinned to their
  roles, and no decoy (a head that attends like the real one but writes nothing, a wrong channel);
  the emitted YAML validates and every claim passes on the held-out rows, and the same claims
  pointed at the decoy heads fail. The zoo files have 30-32 rows and no split, so discovery adds
  one with ``test_fraction 0.7``: the held-out split then has the 20 prompts ``min_n`` asks for.
  EAP-IG on the input embeddings is not the default: it misses zoo.suppression's
  ``L0H0 -> L1H0.q`` (path patching it alone gives +1.6) at any number of steps. Its effect exists
  only when the query is corrupted while the keys stay clean; on the straight line from corrupted
  to clean inputs query and key move together, L1H0's attention stays saturated on the name, and
  every gradient through its query is ~0. Interpolating L0H0's output alone (eap-ig-act) leaves the
  keys clean, so the query's gradient is not 0 at the corrupted end.
* The bundled toy model (docs/toy_sentiment.md): the label readers L0H0 (through its value) and
  L0H3 (through its key) at the second label, into MLP0 at the end, MLP0 -> MLP1 -> logits. The
  word carriers L0H1 / L0H2 need a corruption that changes the word (``--corrupt``): the
  hypothesis' own corruption changes only the second label, so nothing they carry differs between
  its runs (activation patching them gives ~0 too).
"""

from __future__ import annotations

import json

import pytest
import yaml

from circuitspec.discover.methods import DEFAULT_METHOD
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
DECOYS = {"induction": {"L0H1"}, "label_mover": {"L1H1"}, "suppression": {"L0H1", "L1H1"}}
WRONG_CHANNELS = {"induction": {"L1H1.q"}, "label_mover": {"L1H0.k"}, "suppression": {"L1H0.k"}}
# each planted head -> the decoy of its layer (attends or reads like it, writes nothing)
DECOY_FOR = {"induction": {"L0H0": "L0H1"}, "label_mover": {"L1H0": "L1H1"},
             "suppression": {"L0H0": "L0H1", "L1H0": "L1H1"}}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_zoo_default_recovers_every_planted_edge_and_verifies(name, tmp_path):
    out = tmp_path / f"{name}.yaml"
    result = discover(f"hypotheses/zoo/{name}.yaml", output=out, test_fraction=0.7)  # default method
    assert result.attribution.method == DEFAULT_METHOD
    assert {edge.path for edge in result.kept} == PLANTED[name]
    assert not {c for edge in result.kept for c in edge.components} & DECOYS[name]
    assert not {part for edge in result.kept for part in (edge.sender, edge.receiver)} & WRONG_CHANNELS[name]
    scale = abs(result.attribution.clean - result.attribution.corrupt)
    weakest = min(abs(edge.score) for edge in result.kept)
    strongest_other = abs(result.attribution.ranked()[len(result.kept)][2])
    assert weakest >= 0.5 * scale and strongest_other < 1e-5 * scale  # far from the 0.05 threshold
    assert result.curve["points"][-1]["faithfulness"] == pytest.approx(1.0, abs=1e-4)
    out.write_text(result.yaml_text)
    verification = run_verification(out, progress=False)  # on the held-out rows (thresholds_set_on: explore)
    kinds = [c.kind for c in verification.graph.claims]
    assert kinds.count("path_patching") == len(PLANTED[name]) and {"faithfulness", "ablation"} <= set(kinds)
    assert all(v == "pass" for v in verification.verdicts.values()), verification.verdicts


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_zoo_discovered_claims_fail_on_the_decoys(name, tmp_path):
    """The emitted claims, each planted head renamed to its decoy: every edge and ablation claim naming
    a decoy fails, and the circuit with the decoys in it is not faithful."""
    import re

    result = discover(f"hypotheses/zoo/{name}.yaml", output=tmp_path / "x.yaml", test_fraction=0.7)
    swap = DECOY_FOR[name]
    text = re.sub("|".join(swap), lambda m: swap[m.group(0)], result.yaml_text)
    out = tmp_path / f"{name}_decoy.yaml"
    out.write_text(text)
    doc = yaml.safe_load(text)
    decoy_claims = {
        claim["id"]
        for claim in doc["claims"]
        for target in claim.get("targets", [])
        if any(d in doc.get("paths", {}).get(target, target) for d in swap.values())
    }
    verification = run_verification(out, progress=False)
    verdicts = verification.verdicts
    assert decoy_claims and all(verdicts[i] == "fail" for i in decoy_claims), verdicts
    # the circuit with a decoy in a real head's place: mean ablation of the real head leaves part of
    # its effect (induction: 0.69, CI [0.44, 0.87] on 20 prompts), so it never passes
    assert verdicts["circuit_faithful"] in ("fail", "inconclusive"), verdicts
    assert verdicts["does_task"] == "pass"


def test_eap_ig_on_inputs_misses_the_suppression_query_edge_at_any_steps():
    """Why EAP-IG over the inputs is not the default (module docstring): the edge's score stays ~0."""
    from circuitspec.discover.session import open_session
    from circuitspec.engine.attribution_patching import attribution_patching
    from circuitspec.engine.paths import path_patch_edges
    from circuitspec.spec.nodes import parse_node

    ctx = open_session("hypotheses/zoo/suppression.yaml", test_fraction=0.7).ctx
    for method, steps in (("eap-ig", 5), ("eap-ig", 50), ("eap-ig-act", 5)):
        scores = attribution_patching(ctx, method=method, steps=steps)
        s, r = scores.graph.senders.index("L0H0"), scores.graph.receivers.index("L1H0.q")
        seen = float(scores.totals[s, r])
        if method == "eap-ig":
            assert abs(seen) < 1e-5, (steps, seen)
            assert scores.node_scores["embed"] == pytest.approx(scores.corrupt - scores.clean, abs=1e-3)
        else:
            assert seen == pytest.approx(1.74, abs=0.01)
    patched, base, _ = path_patch_edges(ctx, [(parse_node("L0H0@end"), parse_node("L1H0.q@end"))])
    assert float((patched[0] - base).mean()) == pytest.approx(1.6, abs=1e-3)


def test_same_seed_gives_the_same_yaml_bytes(tmp_path):
    first = discover("hypotheses/zoo/suppression.yaml", output=tmp_path / "x.yaml", test_fraction=0.7)
    again = discover("hypotheses/zoo/suppression.yaml", output=tmp_path / "x.yaml", test_fraction=0.7)
    assert first.yaml_text.encode() == again.yaml_text.encode()
    assert json.dumps(first.curve, sort_keys=True) == json.dumps(again.curve, sort_keys=True)


WORD_CORRUPTION = "{shuffle: [w_ori]}"  # the original word from another row: what the word carriers move
TOY_TEMPLATES = ["sub_contextual", "neg_contextual"]  # "is" (L0H0 reads the label) and "not" (L0H3)
LABEL_CIRCUIT = {  # docs/toy_sentiment.md, "Reading the second label"
    "embed@s_con -> L0H0.v@s_con", "embed@s_con -> L0H3.k@s_con", "L0H0@end -> MLP0@end",
    "L0H3@end -> MLP0@end", "MLP0@end -> MLP1@end", "MLP1@end -> logits",
}  # fmt: skip
WORD_CIRCUIT = {  # "Carrying the original word": L0H1, backed up by L0H2, into MLP0 at the answer
    "embed@w_ori -> L0H1.v@w_ori", "L0H1@end -> MLP0@end", "embed@w_ori -> L0H2.v@w_ori",
    "L0H2@end -> MLP0@end", "MLP0@end -> MLP1@end", "MLP1@end -> logits",
}  # fmt: skip


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """Discovery on the toy model with the hypothesis' label corruption and with the word one."""
    out = tmp_path_factory.mktemp("toy") / "toy.yaml"
    label = discover("hypotheses/toy_sentiment.yaml", output=out, templates=TOY_TEMPLATES)
    word = discover(
        "hypotheses/toy_sentiment.yaml", output=out, templates=TOY_TEMPLATES, corrupt=WORD_CORRUPTION
    )
    return label, word


def test_toy_discovery_recovers_the_documented_circuit(toy_runs):
    label, word = toy_runs
    label_paths, word_paths = ({edge.path for edge in r.kept} for r in toy_runs)
    assert label_paths >= LABEL_CIRCUIT and word_paths >= WORD_CIRCUIT
    assert set(label.discovery.components) == {"L0H0", "L0H3", "MLP0", "MLP1"}  # no word carrier, no layer 1
    found = set(label.discovery.components) | set(word.discovery.components)
    assert found == {"L0H0", "L0H1", "L0H2", "L0H3", "MLP0", "MLP1"}  # layer-1 heads are nearly unused
    for result in toy_runs:
        for edge, effect in zip(result.kept, result.discovery.edge_effects, strict=True):
            assert effect < 0 and edge.score < 0  # every kept edge carries the clean answer
        points = result.curve["points"]
        assert points[-1]["faithfulness"] == pytest.approx(1.0, abs=1e-3)
        assert [p["edges"] for p in points] == sorted(p["edges"] for p in points)
    # the word carriers' edges are the strongest head edges under the word corruption ...
    scores = {edge.path: edge.score for edge in word.kept}
    assert scores["L0H1@end -> MLP0@end"] < scores["L0H2@end -> MLP0@end"] < scores["L0H0@end -> MLP0@end"]
    # ... and the word run's circuit (all four layer-0 heads and both MLPs) is faithful: it is the
    # documented one, where the label run's alone is not (docs/discover.md)
    assert word.discovery.faithfulness > 0.9 > 0.5 > label.discovery.faithfulness
    assert "Corruption from --corrupt {shuffle: [w_ori]}" in word.yaml_text
    data = yaml.safe_load(word.yaml_text)["data"]  # the emitted file verifies with the word corruption
    assert data["corrupt"] == {"shuffle": ["w_ori"]} and all("corrupt" not in t for t in data["templates"])


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
        (["--corrupt", "{shuffle: w_ori"], "--corrupt"),
        (["--corrupt", "{swap: [w_ori]}"], "not a corruption"),
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


def test_cli_default_method_and_progress_on_stderr(tmp_path):
    """No --method: the default scores; progress lines (phases, gradient passes) go to stderr only."""
    from typer.testing import CliRunner

    from circuitspec.cli.main import app

    out = tmp_path / "found.yaml"
    result = CliRunner().invoke(app, ["discover", "hypotheses/zoo/suppression.yaml", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.with_suffix(".curve.json").read_text())["method"] == DEFAULT_METHOD
    assert "L0H0@end -> L1H0.q@end" in out.read_text()
    assert "scoring edges (eap-ig-act" in result.stderr and "gradient passes 15/15" in result.stderr
    assert "gradient passes" not in result.stdout


def test_corruption_reading_an_unknown_slot_is_one_line(tmp_path):
    """Checked once the rows are read (after the progress line that says so), then exit 2."""
    from typer.testing import CliRunner

    from circuitspec.cli.main import app

    args = ["discover", "hypotheses/zoo/label_mover.yaml", "-o", str(tmp_path / "x.yaml")]
    result = CliRunner().invoke(app, [*args, "--corrupt", "{shuffle: [nope]}"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("--corrupt reads slot 'nope', which the data rows lack")
    )
    assert not (tmp_path / "x.yaml").exists()
