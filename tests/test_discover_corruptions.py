"""``circuitspec discover`` with several corruptions: one command, one hypothesis, the whole circuit.

On the toy model (docs/toy_sentiment.md) the file's corruption (the second label set equal to the
first) finds the label readers L0H0 / L0H3 and the MLPs, a shuffled original word finds the word
carriers L0H1 / L0H2; one call with both (``--corrupt file --corrupt '{shuffle: [w_ori]}'``) scores
each, keeps the union, gives each corruption its own copies of the templates and runs each edge's
claim under the corruption(s) that found it. The reference is the two separate runs: the same
explore rows and method, so the union's kept edges, scores and thresholds must equal theirs, and
on the held-out rows each edge claim must get the separate run's verdict (the prompts are the same:
the corruption's template copies are the source templates with that corruption).
"""

from __future__ import annotations

import yaml
from pytest import fixture, mark
from typer.testing import CliRunner

from circuitspec.cli.main import app
from circuitspec.discover.run import discover
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.pipeline import run_verification
from circuitspec.spec.loader import load_hypothesis
from tests.test_discover import LABEL_CIRCUIT, TOY_TEMPLATES, WORD_CIRCUIT, WORD_CORRUPTION

TOY = "hypotheses/toy_sentiment.yaml"
DOCUMENTED = {"L0H0", "L0H1", "L0H2", "L0H3", "MLP0", "MLP1"}  # docs/toy_sentiment.md's circuit
NAMES = {"label": "file", "word": "shuffle_w_ori"}  # each separate run -> its corruption's name in the union


@fixture(scope="module")
def toy(tmp_path_factory):
    """The union run and the two separate runs, each written and verified on the held-out rows."""
    folder = tmp_path_factory.mktemp("union")
    runs = {}
    for key, corrupt in (
        ("union", ["file", WORD_CORRUPTION]),
        ("label", None),
        ("word", WORD_CORRUPTION),
    ):
        out = folder / f"{key}.yaml"
        result = discover(TOY, output=out, templates=TOY_TEMPLATES, corrupt=corrupt)
        out.write_text(result.yaml_text)
        runs[key] = (result, out)
    return runs


@fixture(scope="module")
def verdicts(toy):
    """Held-out verdicts: the union's every claim, the separate runs' path-patching claims (the rest of
    theirs is docs/discover.md's: the label half alone is not faithful, the word run's circuit is)."""
    found = {"union": run_verification(toy["union"][1], progress=False).verdicts}
    for key in ("label", "word"):
        result, out = toy[key]
        doc = yaml.safe_load(result.yaml_text)
        doc["claims"] = [c for c in doc["claims"] if c["kind"] == "path_patching"]
        edges_only = out.with_name(f"{key}_edges.yaml")
        edges_only.write_text(yaml.safe_dump(doc, sort_keys=False))
        found[key] = run_verification(edges_only, progress=False).verdicts
    return found


def _edge_claims(doc: dict) -> dict[str, dict]:
    """Path-patching claims by (path text, claim)."""
    return {doc["paths"][c["targets"][0]]: c for c in doc["claims"] if c["kind"] == "path_patching"}


def test_one_call_finds_the_documented_circuit(toy):
    union, out = toy["union"]
    label, word = toy["label"][0], toy["word"][0]
    assert set(union.discovery.components) == DOCUMENTED
    paths = {edge.path for edge in union.kept}
    assert paths >= LABEL_CIRCUIT | WORD_CIRCUIT
    assert paths == {e.path for e in label.kept} | {e.path for e in word.kept}
    for run, separate in zip(union.runs, (label, word), strict=True):  # scored exactly as run alone
        assert [(e.path, e.score) for e in run.scored.kept] == [(e.path, e.score) for e in separate.kept]
        assert run.scored.effects == separate.discovery.edge_effects
    compile_hypothesis(load_hypothesis(out))  # what `circuitspec validate` checks
    doc = yaml.safe_load(union.yaml_text)
    copies = {t["id"]: t for t in doc["data"]["templates"]}
    assert "corrupt" not in doc["data"] and len(copies) == 2 * 6
    assert copies["sub_contextual__file"]["corrupt"] == {"set": {"s_con": "{s_ori}"}}
    assert copies["neg_contextual__shuffle_w_ori"]["corrupt"] == {"shuffle": ["w_ori"]}
    assert "corrupt_shuffle_w_ori" in copies["neg_contextual__shuffle_w_ori"]["tags"]
    # the header says which corruption found which edge
    by_path = {path: name for name, path in doc["paths"].items()}
    header = union.yaml_text.splitlines()
    for key, separate in (("label", label), ("word", word)):
        at = next(i for i, line in enumerate(header) if line.startswith(f"# {NAMES[key]}: "))
        found = ", ".join(sorted(by_path[e.path] for e in separate.kept))
        assert header[at + 2] == f"#   found: {found}", header[at : at + 3]


def test_each_edge_claim_runs_under_the_corruption_that_found_it(toy):
    union = yaml.safe_load(toy["union"][0].yaml_text)
    by_path = {path: name for name, path in union["paths"].items()}
    claims = {c["id"]: c for c in union["claims"]}
    n_edge_claims = 0
    for key in ("label", "word"):
        for path, claim in _edge_claims(yaml.safe_load(toy[key][0].yaml_text)).items():
            mine = claims[f"edge_{by_path[path]}__{NAMES[key]}"]
            assert mine["data"] == [f"corrupt_{NAMES[key]}"] and mine["expect"] == claim["expect"]
            n_edge_claims += 1
    assert n_edge_claims == sum(c["kind"] == "path_patching" for c in union["claims"])
    first = ["corrupt_file"]  # mean ablation reads clean prompts only: stated once, on the union circuit
    assert claims["circuit_faithful"]["data"] == first and union["nodes"]["circuit"] == sorted(DOCUMENTED)
    assert all(c["data"] == first for c in union["claims"] if c["kind"] in ("faithfulness", "ablation"))


def test_held_out_verdicts_match_the_separate_runs(toy, verdicts):
    union_doc = yaml.safe_load(toy["union"][0].yaml_text)
    by_path = {path: name for name, path in union_doc["paths"].items()}
    union = verdicts["union"]
    for key in ("label", "word"):
        separate = verdicts[key]
        for path, claim in _edge_claims(yaml.safe_load(toy[key][0].yaml_text)).items():
            assert union[f"edge_{by_path[path]}__{NAMES[key]}"] == separate[claim["id"]], (key, path)
    # an edge claim may be inconclusive only where its separate run's is too (the loop above); every
    # other claim passes, the union circuit's faithfulness among them (the label half alone is not
    # faithful: docs/discover.md)
    assert all(v == "pass" for i, v in union.items() if not i.startswith("edge_")), union
    assert set(union.values()) <= {"pass", "inconclusive"}, union
    assert union["circuit_faithful"] == "pass" and union["does_task"] == "pass"
    assert {"ablate_L0H0", "ablate_L0H1", "ablate_L0H3", "ablate_MLP0", "ablate_MLP1"} <= set(union)


def test_one_corruption_as_a_list_keeps_todays_bytes(tmp_path):
    out = tmp_path / "x.yaml"
    plain = discover("hypotheses/zoo/label_mover.yaml", output=out, test_fraction=0.7)
    listed = discover("hypotheses/zoo/label_mover.yaml", output=out, test_fraction=0.7, corrupt=["file"])
    assert listed.yaml_text.encode() == plain.yaml_text.encode()


@mark.parametrize(
    ("second", "message"),
    [
        ("{swap: [w_ori]}", "--corrupt '{swap: [w_ori]}': not a corruption"),
        ("{shuffle: w_ori", "--corrupt '{shuffle: w_ori'"),
        ("file", "--corrupt 'file': the same corruption as --corrupt 'file'"),
    ],
)
def test_bad_second_corruption_is_one_line(tmp_path, second, message):
    out = tmp_path / "x.yaml"
    args = ["discover", TOY, "-o", str(out), "--corrupt", "file", "--corrupt", second]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines() == [result.output.strip()] and message in result.output
    assert not out.exists()
