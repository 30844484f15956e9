"""The YAML loader and the shape/graph checks: every bad input is one located line (exit 2)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circuitspec.cli.main import app
from circuitspec.errors import CircuitSpecError
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.spec.loader import MAX_FILE_BYTES, load_hypothesis, load_rows

FIXTURES = Path(__file__).parent / "fixtures" / "spec"
BASE = (FIXTURES / "base.yaml").read_text(encoding="utf-8")
LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>[^\n]+)$")


def _write(tmp_path: Path, content: str | bytes, name: str = "h.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _mutate(old: str, new: str) -> str:
    assert BASE.count(old) == 1, f"fixture marker {old!r} must occur once"
    return BASE.replace(old, new)


def _line_of(text: str, marker: str) -> int:
    """The last line holding ``marker`` (a repeated value is reported where it repeats)."""
    return max(i for i, line in enumerate(text.splitlines(), start=1) if marker in line)


# (case id, file content, fragment of the message, marker on the line the error must point at)
BLOOM = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)
BAD_INPUTS: list[tuple[str, str | bytes, str, str | None]] = [
    (
        "unknown node",
        _mutate("targets: [L7H5, L9H7]", "targets: [L7H5, L9X7]"),
        "unknown target 'L9X7'",
        "L9X7",
    ),
    (
        "layer out of range",
        _mutate("targets: [L7H5, L9H7]", "targets: [L7H5, L12H7]"),
        "layer 12 of 'L12H7' out of range for a 12-layer model (valid: 0–11)",
        "L12H7",
    ),
    (
        "head out of range",
        _mutate("targets: L7H5\n", "targets: L7H12\n"),
        "head 12 of 'L7H12' out of range for a model with 12 heads per layer (valid: 0–11)",
        "L7H12",
    ),
    (
        "feature out of range",
        _mutate("movers: [L10H1@w_ori, L10H4@w_ori]", 'movers: [L10H1@w_ori, "MLP0.tc[100]@s_con"]'),
        "feature 100 of 'MLP0.tc[100]@s_con' out of range for dictionary 'MLP0.tc' with d_sae = 100 "
        "(valid: 0–99)",
        "MLP0.tc[100]",
    ),
    (
        "feature without dictionary",
        _mutate("movers: [L10H1@w_ori, L10H4@w_ori]", 'movers: ["MLP1.tc[3]"]'),
        "needs dictionary 'MLP1.tc' declared under model.dictionaries (declared: MLP0.tc)",
        "MLP1.tc[3]",
    ),
    (
        "neuron out of range",
        _mutate("movers: [L10H1@w_ori, L10H4@w_ori]", 'movers: ["MLP3.post[3072]"]'),
        "neuron 3072 of 'MLP3.post[3072]' out of range for d_mlp = 3072 (valid: 0–3071)",
        "MLP3.post",
    ),
    (
        "backwards edge in layers",
        _mutate("transform: MLP0@s_con -> L7H5.v@s_con", "transform: MLP9@s_con -> L7H5.v@s_con"),
        "goes backwards",
        "transform:",
    ),
    (
        "backwards edge in positions",
        _mutate("transform: MLP0@s_con -> L7H5.v@s_con", "transform: MLP0@s_con -> L7H5.v@w_ori"),
        "goes backwards in token position: role 's_con' comes after 'w_ori'",
        "transform:",
    ),
    (
        "head receiver without channel",
        _mutate("-> L7H5.v@s_con ->", "-> L7H5@s_con ->"),
        "cannot receive an edge; name its input (valid: L7H5.q, L7H5.k, L7H5.v)",
        "transform:",
    ),
    (
        "undefined role",
        _mutate("destination: s_con", "destination: s_cn"),
        "role 's_cn' (attention destination) is not defined by template 'sub' "
        "(valid: s_ori, w_ori, s_con, end)",
        "destination: s_cn",
    ),
    (
        "undefined role of a node",
        _mutate("targets: L7H5.v@s_con", "targets: L7H5.v@subject"),
        "role 'subject' of node 'L7H5.v@subject' is not defined by any template (valid: end, s_con,",
        "L7H5.v@subject",
    ),
    (
        "role missing from one of the claim's templates",
        _mutate('text: "{s_ori}: {w_ori}. {s_con}: not"', 'text: "{s_ori}: {w_con}. {s_con}: not"').replace(
            "destination: s_con", "destination: w_ori"
        ),
        "role 'w_ori' (attention destination) is not defined by template 'neg' "
        "(valid: s_ori, w_con, s_con, end)",
        "destination: w_ori",
    ),
    (
        "attending forward",
        _mutate("destination: s_con", "destination: s_con\n    source: w_ori"),
        "role 's_con' comes after 'w_ori' in template 'sub'; a causal model cannot attend forward",
        "destination: s_con",
    ),
    (
        "wrong type",
        _mutate("alphas: [1, 2, 4]", "alphas: [1, two, 4]"),
        "alphas: input should be a valid number",
        "two",
    ),
    (
        "wrong type of a mapping",
        _mutate("  name: gpt2\n", "  name: [gpt2]\n"),
        "name: input should be a valid string",
        "[gpt2]",
    ),
    (
        "bad expectation",
        _mutate("expect: mean > 0.1", "expect: mean >> 0.1"),
        "cannot parse expectation 'mean >> 0.1' (valid:",
        "mean >> 0.1",
    ),
    (
        "unknown statistic",
        _mutate("expect: mean > 0.1", "expect: average > 0.1"),
        "unknown statistic 'average' in expectation 'average > 0.1' (valid: mean, median,",
        "average > 0.1",
    ),
    (
        "trend on the wrong variable",
        _mutate("increases with alpha", "increases with layer"),
        "a scaling claim cannot expect a trend with 'layer' (valid: 'alpha')",
        "increases with layer",
    ),
    ("duplicate id", _mutate("id: look", "id: route"), "duplicate claim id 'route'", "id: route"),
    ("duplicate template id", _mutate("id: neg", "id: sub"), "duplicate template id 'sub'", "id: sub"),
    (
        "duplicate id after each",
        _mutate("targets: [L7H5, L9H7]", "targets: [L7H5, L7H5]"),
        "duplicate claim id 'heads[L7H5]' after expanding 'each'",
        "id: heads",
    ),
    (
        "duplicate key",
        _mutate("  - id: look\n", "  - id: look\n    id: other\n"),
        "invalid YAML",
        "id: other",
    ),
    (
        "unknown field",
        _mutate("targets: L7H5\n", "tragets: L7H5\n"),
        "unknown field 'tragets'; did you mean 'targets'? (valid:",
        "tragets",
    ),
    (
        "unknown top-level field",
        _mutate("name: base", "name: base\nclaimz: []"),
        "unknown field 'claimz'; did you mean 'claims'?",
        "claimz",
    ),
    (
        "unknown claim kind",
        _mutate("kind: attention", "kind: ablate"),
        "unknown claim kind 'ablate' (valid: attribution, logit_lens, attention, ablation,",
        "kind: ablate",
    ),
    (
        "missing field",
        _mutate("    expect: mean < 0\n", ""),
        "missing required field 'expect'",
        "id: route",
    ),
    (
        "unknown data tag",
        _mutate("data: [substitution]", "data: [substitutoin]"),
        "unknown template or tag 'substitutoin' (valid: sub, neg, tag substitution, tag negation)",
        "substitutoin",
    ),
    (
        "path patching on a node",
        _mutate("targets: transform", "targets: L6H5"),
        "path_patching targets must be paths or edges 'A -> B' (got 'L6H5'; paths: transform)",
        "L6H5",
    ),
    (
        "attention on an MLP",
        _mutate("targets: L7H5\n", "targets: MLP3\n"),
        "attention targets must be heads like L7H5 (got 'MLP3')",
        "targets: MLP3",
    ),
    (
        "scaling logits",
        _mutate("targets: L7H5.v@s_con", "targets: logits"),
        "a scaling claim cannot act on 'logits'",
        "targets: logits",
    ),
    (
        "logit lens at a non-residual site",
        BASE + "  - {id: lens, kind: logit_lens, at: MLP3, expect: mean > 0}\n",
        "logit_lens 'at' must be a residual site",
        "id: lens",
    ),
    (
        "equivalence on a non-slot",
        BASE + "  - {id: scrub, kind: causal_scrubbing, targets: transform, equivalence: {default: [label]}, "
        "expect: recovered > 0.5}\n",
        "equivalence field 'label' is not a slot of template 'sub' (valid: s_ori, w_ori, s_con)",
        "id: scrub",
    ),
    (
        "unknown model without a shape",
        _mutate("  name: gpt2\n", "  name: my-model\n"),
        "the shape of model 'my-model' is not known without loading it; add 'model.shape:",
        "my-model",
    ),
    (
        "bad node grammar in nodes",
        _mutate("movers: [L10H1@w_ori", "movers: [L10Q1@w_ori"),
        "nodes: ",
        "movers:",
    ),
    (
        "empty data selection",
        _mutate("data: [substitution]", "data: []"),
        "'data' selects no templates",
        "data: []",
    ),
    (
        "empty path",
        _mutate("transform: MLP0@s_con -> L7H5.v@s_con -> MLP9@end", "transform: []"),
        "path 'transform' is empty",
        "transform: []",
    ),
    (
        "role no template defines",
        _mutate("movers: [L10H1@w_ori,", "movers: [L10H1@w_orig,"),
        "role 'w_orig' of node 'L10H1@w_orig' is not defined by any template "
        "(valid: end, s_con, s_ori, w_ori)",
        "w_orig",
    ),
    ("invalid YAML", _mutate("targets: [L7H5, L9H7]", "targets: [L7H5, L9H7"), "invalid YAML", None),
    ("unquoted brackets", _mutate("[L7H5, L9H7]", "[MLP0.tc[1]@s_con]"), "quote values holding", None),
    ("empty file", "", "hypothesis file is empty", None),
    ("only a comment", "# nothing here\n", "must be a mapping", None),
    ("top level is a list", "- a\n- b\n", "the top level of a hypothesis must be a mapping", None),
    (
        "claim comparing answers on a template without them",
        _mutate('      desired: " {w_ori}"\n      undesired: " {w_con}"\n', ""),
        "claim 'route' (path_patching) compares answer logits (metric 'logit_diff'), but template 'neg' "
        "has no 'desired' / 'undesired' answers: select templates with answers in 'data' (valid: sub)",
        "- id: route",
    ),
    (
        "template with one answer",
        _mutate('      desired: " {w_ori}"\n      undesired: " {w_con}"\n', '      desired: " {w_ori}"\n'),
        "template 'neg': give both 'desired' and 'undesired', or neither",
        "- id: neg",
    ),
    ("binary garbage", b"name: x\n\x00\x01\x02\xff\xfe garbage", "not UTF-8", None),
    ("control characters", "name: x\nmodel: \x00\x01\n", "control character", "model:"),
    ("lone surrogate", _mutate("name: base", 'name: "\\ud800\\udc00"'), "surrogate U+D800", "name: \""),
    ("alias bomb", BLOOM, "anchors and aliases", "a: &a"),
    ("custom tag", _mutate("name: base", "name: !!python/name:os.system base"), "YAML tag", "name: !!python"),
    ("two documents", BASE + "---\nname: other\n", "one YAML document", "---"),
    ("file too big", BASE + "#" * MAX_FILE_BYTES, "larger than the 1,048,576-byte limit", None),
]


@pytest.mark.parametrize(
    ("content", "fragment", "marker"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_is_one_located_line_and_exit_2(
    tmp_path: Path, content, fragment: str, marker: str | None
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(CircuitSpecError) as info:
        compile_hypothesis(load_hypothesis(path))
    message = str(info.value)
    match = LOCATED.match(message)
    assert match, f"not one located line: {message!r}"
    assert match["file"] == str(path)
    assert fragment.lower() in match["msg"].lower(), message
    if marker is not None and isinstance(content, str):
        assert int(match["line"]) == _line_of(content, marker), message

    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == message
    assert "Traceback" not in result.output


def test_base_fixture_loads_with_hash_base_dir_and_each_expansion() -> None:
    path = FIXTURES / "base.yaml"
    loaded = load_hypothesis(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.base_dir == FIXTURES.resolve()
    assert [c.id for c in loaded.claims] == ["heads[L7H5]", "heads[L9H7]", "look", "route", "amplify"]
    assert [c.targets for c in loaded.claims[:2]] == [["L7H5"], ["L9H7"]]
    assert not any(c.each for c in loaded.claims)
    # locate: the second target of 'heads' is on the 'targets:' line, at the column of 'L9H7'
    line, col = loaded.locate(loaded.claim_loc("heads[L9H7]", "targets", 0))
    text_line = BASE.splitlines()[line - 1]
    assert text_line[col - 1 :].startswith("L9H7")
    assert loaded.locate(("claims", 1, "destination")) == (_line_of(BASE, "destination: s_con"), 18)


def test_rows_from_jsonl_skip_blank_lines_and_inline_rows(tmp_path: Path) -> None:
    loaded = load_hypothesis(FIXTURES / "all_forms.yaml")
    rows = load_rows(loaded.spec.data, loaded.base_dir)
    assert rows == [
        {"s_ori": "Positive", "s_con": "Negative", "w_ori": "good", "w_con": "bad"},
        {"s_ori": "Negative", "s_con": "Positive", "w_ori": "bad", "w_con": "good"},
    ]
    base = load_hypothesis(FIXTURES / "base.yaml")
    assert load_rows(base.spec.data, base.base_dir)[1]["w_con"] == "good"


@pytest.mark.parametrize(
    ("jsonl", "fragment", "line"),
    [
        ('{"s_ori": "a", "s_con": "b", "w_ori": "c", "w_con": "d"}\n{"s_ori": "a",\n', "invalid JSON", 2),
        ('{"s_ori": "a", "s_con": "b", "w_ori": "c", "w_con": "d"}\n\n[1, 2]\n', "must be a JSON object", 3),
        ('{"s_ori": "a", "s_con": "b", "w_ori": "c", "w_con": 4}\n', "slot 'w_con' must be a string", 1),
        (
            '{"s_ori": "a", "s_con": "b", "w_ori": "c", "w_con": "d"}\n{"s_ori": "a"}\n',
            "row lacks slot 'w_ori'",
            2,
        ),
        ("\n\n", "data file is empty", 1),
    ],
)
def test_bad_rows_name_the_jsonl_line(tmp_path: Path, jsonl: str, fragment: str, line: int) -> None:
    hypothesis = BASE.replace(
        "  rows:\n    - {s_ori: Positive, s_con: Negative, w_ori: good, w_con: bad}\n"
        "    - {s_ori: Negative, s_con: Positive, w_ori: bad, w_con: good}\n",
        "  file: rows.jsonl\n",
    )
    path = _write(tmp_path, hypothesis)
    _write(tmp_path, jsonl, "rows.jsonl")
    loaded = load_hypothesis(path)
    with pytest.raises(CircuitSpecError) as info:
        load_rows(loaded.spec.data, loaded.base_dir)
    assert str(info.value).startswith(f"{tmp_path / 'rows.jsonl'}:{line}:")
    assert fragment in str(info.value)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and result.stderr.strip() == str(info.value)


def test_inline_row_missing_a_slot_points_at_the_row(tmp_path: Path) -> None:
    text = _mutate(
        "{s_ori: Negative, s_con: Positive, w_ori: bad, w_con: good}", "{s_ori: Negative, w_ori: bad}"
    )
    path = _write(tmp_path, text)
    loaded = load_hypothesis(path)
    with pytest.raises(CircuitSpecError) as info:
        load_rows(loaded.spec.data, loaded.base_dir, hypothesis=loaded)
    assert str(info.value).startswith(f"{path}:{_line_of(text, '{s_ori: Negative, w_ori: bad}')}:")
    assert "row lacks slot 's_con' that template 'sub' uses" in str(info.value)


@pytest.mark.parametrize("inline", [True, False])
@pytest.mark.parametrize(
    ("old", "new", "template", "slot"),
    [
        ('text: "{s_ori}: {w_ori}. {s_con}:"', 'text: "{s_ori}: {w_orii}. {s_con}:"', "sub", "w_orii"),
        ('not"\n      desired: " {w_ori}"', 'not"\n      desired: " {w_oriz}"', "neg", "w_oriz"),
    ],
)
def test_a_slot_no_row_has_is_a_template_typo_at_the_yaml_line(
    tmp_path: Path, inline: bool, old: str, new: str, template: str, slot: str
) -> None:
    text = _mutate(old, new)
    if not inline:  # the same rows from a file: the typo is still the YAML's, not the data file's
        text = text.replace(
            "  rows:\n    - {s_ori: Positive, s_con: Negative, w_ori: good, w_con: bad}\n"
            "    - {s_ori: Negative, s_con: Positive, w_ori: bad, w_con: good}\n",
            "  file: rows.jsonl\n",
        )
        _write(tmp_path, '{"s_ori": "a", "s_con": "b", "w_ori": "c", "w_con": "d"}\n', "rows.jsonl")
    path = _write(tmp_path, text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:{_line_of(text, '{' + slot + '}')}:")
    assert f"template '{template}' reads slot '{slot}', which no data row has" in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "cannot read hypothesis file" in result.stderr
