"""The committed JSON Schema (schema/circuitspec.schema.json) for editors: regenerated, described, and
agreeing with the loader: a third-party validator accepts every bundled and fixture hypothesis, the
schema rejects the structural mistakes the loader and ``validate`` reject, and its node and
expectation patterns agree with ``parse_node`` / ``parse_expectation`` on generated strings (under
Python's regex engine and under an ECMA-262 one, the dialect editors use)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import regress
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from circuitspec.claims.json_schema import (
    EXPECT_PATTERN,
    NODE_PATTERN,
    SCHEMA_PATH,
    expect_pattern,
    hypothesis_json_schema,
    schema_text,
)
from circuitspec.errors import CircuitSpecError
from circuitspec.graph.compile import compile_hypothesis
from circuitspec.spec.expectations import ExpectationSyntaxError, parse_expectation
from circuitspec.spec.loader import load_hypothesis, parse_yaml_text
from circuitspec.spec.nodes import NodeSyntaxError, parse_node
from circuitspec.spec.schema import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[1]
SCHEMA_FILE = REPO / SCHEMA_PATH
FIXTURES = REPO / "tests" / "fixtures" / "spec"
HYPOTHESES = sorted([*REPO.glob("hypotheses/*.yaml"), *REPO.glob("hypotheses/zoo/*.yaml")])
VALID_FILES = [*HYPOTHESES, FIXTURES / "all_forms.yaml", FIXTURES / "base.yaml", FIXTURES / "fuzz_seed.yaml"]
MODELINE = "# yaml-language-server: $schema="


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


# --------------------------------------------------------------------------- the file


def test_committed_schema_is_the_generated_one() -> None:
    """CI fails when a model changed and the file was not regenerated (``circuitspec schema -o …``)."""
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        f"regenerate it: circuitspec schema -o {SCHEMA_PATH}"
    )


def test_schema_is_a_valid_draft_2020_12_schema_with_an_id() -> None:
    schema = hypothesis_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:circuitspec:hypothesis:{SCHEMA_VERSION}"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_property_has_a_description() -> None:
    schema = hypothesis_json_schema()
    objects = {"Hypothesis": schema, **schema["$defs"]}
    missing = [
        f"{name}.{prop}"
        for name, obj in objects.items()
        for prop, sub in obj.get("properties", {}).items()
        if not sub.get("description", "").strip()
    ]
    counted = sum(len(obj.get("properties", {})) for obj in objects.values())
    assert counted > 100
    assert not missing


@pytest.mark.parametrize("path", HYPOTHESES, ids=lambda p: str(p.relative_to(REPO)))
def test_bundled_hypotheses_point_their_editor_at_the_schema(path: Path) -> None:
    relative = Path("../" * (len(path.relative_to(REPO).parts) - 1)) / SCHEMA_PATH
    assert f"{MODELINE}{relative.as_posix()}" in path.read_text(encoding="utf-8").splitlines()
    assert (path.parent / relative).resolve() == SCHEMA_FILE


def test_a_third_party_validator_accepts_every_bundled_and_fixture_hypothesis() -> None:
    """check-jsonschema (ECMA-262 regexes, as editors use) over hypotheses/ and the valid fixtures."""
    for path in VALID_FILES:  # they are valid for the loader too, so the two agree
        load_hypothesis(path)
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA_FILE), *map(str, VALID_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------- rejected like the loader

BASE, _ = parse_yaml_text((FIXTURES / "base.yaml").read_text(encoding="utf-8"), "base.yaml")


def _claim(index: int, **fields: Any) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        doc["claims"][index].update(fields)

    return edit


def _set(*loc: str | int, value: Any) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        node = doc
        for part in loc[:-1]:
            node = node[part]
        node[loc[-1]] = value  # type: ignore[index]

    return edit


MISTAKES = {
    "unknown top-level key": _set("claimz", value=[]),
    "unknown claim key": _claim(0, expects="mean > 0"),
    "empty targets of a kind that needs them": _claim(0, targets=[]),
    "missing targets of a kind that needs them": lambda doc: doc["claims"][1].pop("targets"),
    "a behaviour claim with targets": _claim(0, kind="behaviour", each=False),
    "an empty target": _claim(1, targets=""),
    "bad node syntax in a group": _set("nodes", "movers", value=["L10H1.z"]),
    "a role after logits": _set("nodes", "movers", value="logits@end"),
    "a shared key/value head without its channel": _set("nodes", "movers", value=["L1KV0@s_con"]),
    "bad node syntax in a path": _set("paths", "transform", value="MLP0@s_con -> L7H5.w -> MLP9@end"),
    "a path of one step": _set("paths", "transform", value="MLP0@s_con"),
    "bad node syntax in a target": _claim(1, targets="L7H5@"),
    "an unparseable expectation": _claim(1, expect="mean >> 0.1"),
    "an unknown statistic": _claim(1, expect="average > 0.1"),
    "a zero margin": _claim(1, expect="no effect within 0"),
    "a negative margin": _claim(1, expect="mean within ±-0.1"),
    "a trend on a kind without a sweep": _claim(1, expect="mean increases with alpha"),
    "a trend over the wrong variable": _claim(3, expect="success_rate increases with layer"),
    "a logit lens trend at one site": lambda doc: doc["claims"].append(
        {"id": "lens", "kind": "logit_lens", "at": "resid_post3", "expect": "mean increases with layer"}
    ),
    "a logit lens at a head": lambda doc: doc["claims"].append(
        {"id": "lens", "kind": "logit_lens", "at": "L3H3", "expect": "mean > 0"}
    ),
    "an attention role that no template can have": _claim(1, destination="s con"),
    "two model sources": _set("model", "path", value="./somewhere"),
    "no model source": lambda doc: doc["model"].pop("name"),
    "rows and file": _set("data", "file", value="rows.jsonl"),
    "empty rows": _set("data", "rows", value=[]),
    "a transcoder key with kind sae": _set("model", "dictionaries", "MLP0.tc", "kind", value="sae"),
    "a dictionary key that is not a site": _set(
        "model", "dictionaries", "L0H0.tc", value={"kind": "sae", "d_sae": 4}
    ),
    "a checkpoint that leaves its folder": _set("checkpoints", value=["../../etc"]),
    "a negative checkpoint": _set("model", "checkpoint", value=-1),
    "a negative seed": _set("data", "seed", value=-1),
    "a boolean for a number": _set("data", "n", value=True),
}


def _loader_rejects(doc: dict[str, Any], tmp_path: Path) -> bool:
    path = tmp_path / "probe.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
    try:
        compile_hypothesis(load_hypothesis(path))
    except CircuitSpecError:
        return True
    return False


def test_the_base_fixture_is_valid_for_both() -> None:
    assert _validator().is_valid(BASE)


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_schema_rejects_what_the_loader_rejects(mistake: str, tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE)
    MISTAKES[mistake](doc)
    assert _loader_rejects(doc, tmp_path), "the probe itself must be a mistake"
    assert not _validator().is_valid(doc)


def test_the_single_string_forms_and_names_the_loader_accepts_are_accepted(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE)
    doc["claims"][0].update(targets="L7H5", require="look")
    doc["claims"][2].update(targets="MLP0@s_con -> L7H5.v@s_con")
    doc["model"]["checkpoint"] = "step_00100"
    doc["checkpoints"] = [0, "final", "index:3"]
    doc["nodes"].update({"my head": "L5H1", "named": "my head", "all heads": ["my head", "movers"]})
    doc["paths"]["through a name"] = "named -> L7H5.v"
    doc["claims"][1].update(targets=["all heads", "my head"])
    assert not _loader_rejects(doc, tmp_path)
    assert _validator().is_valid(doc), list(_validator().iter_errors(doc))


# ------------------------------------------------------------ patterns agree with parsers

NODE_TOKENS = [
    "L", "H", "KV", "MLP", "0", "7", "12", ".", "q", "k", "v", "pattern", "in", "post", "[", "]", "@",
    "s_con", "end", "embed", "pos_embed", "logits", "resid_pre", "resid_mid", "resid_post", "tc", "sae",
    "mlp_out", " ", "x", "-", "é", "9", "\t",
]  # fmt: skip
EXPECT_TOKENS = [
    "mean", "median", "effect", "success_rate", "recovered", "interaction", "meen", " ", "  ", "<", "<=",
    ">", ">=", "==", "=", "0", "1", ".", "5", "e", "-", "+", "±", "+-", "+/-", "no", "within", "increases",
    "decreases", "with", "alpha", "layer", "\t", "\n",
]  # fmt: skip
_FUZZ = settings(
    max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


VALID_NODES = [
    "L7H5", "L7H5.v@s_con", "L1KV0.k", "MLP3.post[3071]", "MLP0.tc[3]@b", "resid_pre5.sae[9]", "logits",
    "embed@a", "MLP2.in", "resid_mid0", "L0H1.pattern", "pos_embed",
]  # fmt: skip
VALID_EXPECTATIONS = [
    "mean > 0", "recovered >= 0.8", "success_rate increases with alpha", "no effect within .5",
    "mean within ±0.1", "interaction == -1e-3", "median decreases with layer",
]  # fmt: skip


def _near(valid: list[str], tokens: list[str]) -> st.SearchStrategy[str]:
    """Token soup; valid strings with up to three tokens inserted, characters deleted or replaced; valid
    strings padded with whitespace."""
    soup = st.lists(st.sampled_from(tokens), max_size=8).map("".join)

    @st.composite
    def edited(draw: st.DrawFn) -> str:
        text = draw(st.sampled_from(valid))
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(text)))
            cut = draw(st.integers(0, 2))
            text = text[:at] + draw(st.sampled_from(["", *tokens])) + text[at + cut :]
        return text

    pad = st.sampled_from(["", " ", "\t", "\n"])
    padded = st.tuples(pad, st.sampled_from(valid), pad).map("".join)
    return st.one_of(soup, edited(), padded)


def _both_engines(pattern: str, text: str) -> bool:
    """Python's ``re`` (the jsonschema library) and ECMA-262 (editors) give the same answer."""
    python = re.search(pattern, text) is not None
    ecma = regress.Regex(pattern, "u").find(text) is not None
    assert python == ecma, (pattern, text)
    return python


def _parses_node(text: str) -> bool:
    try:
        parse_node(text)
    except NodeSyntaxError:
        return False
    return True


@_FUZZ
@given(_near(VALID_NODES, NODE_TOKENS))
def test_node_pattern_agrees_with_parse_node(text: str) -> None:
    assert _both_engines(NODE_PATTERN, text) == _parses_node(text)


@pytest.mark.parametrize("text", [*VALID_NODES, " MLP0.tc[3]@b "])
def test_node_pattern_accepts_every_node_form(text: str) -> None:
    assert _parses_node(text) and _both_engines(NODE_PATTERN, text)


def _expectation(text: str) -> Any:
    try:
        return parse_expectation(text)
    except ExpectationSyntaxError:
        return None


@_FUZZ
@given(_near(VALID_EXPECTATIONS, EXPECT_TOKENS))
def test_expect_pattern_agrees_with_parse_expectation(text: str) -> None:
    """Left to the loader: numbers whose exponent overflows to infinity or underflows to zero."""
    assume(not re.search(r"[eE][-+]?[0-9]{3}", text))
    parsed = _expectation(text)
    assert _both_engines(EXPECT_PATTERN, text) == (parsed is not None)
    for variable in ("alpha", "layer", None):
        allowed = parsed is not None and (parsed.form != "trend" or parsed.variable == variable)
        assert _both_engines(expect_pattern(variable), text) == allowed


NODE_EDGES = [
    "logits@end", "L1KV0", "L1KV0.q", "L1KV0.k@s_con", "L7H5.v@", "L7H5.z", "MLP0.tc[x]", "MLP0.tc",
    "resid_pre5.sae", "mlp_out3.sae[1]", "mlp_out3", "L7H5 .v", "L07H5", "L7H5@s con", "L٣H5", "embed\n",
    "", " ", "L7H5@_x9", "L7H5@9x", "MLP3.post[]", "resid_post11@end", "pos_embed@w_ori",
]  # fmt: skip
EXPECT_EDGES = [
    "no effect within 0", "no effect within 0.0", "no effect within .0", "no effect within -1",
    "no effect within +0.5", "no effect within ± 0.5", "no effect within 0e5", "no effect within 1e-3",
    "mean within 0.1", "mean within ±0", "mean within +-.2", "mean within +/- 2", "mean > 1e5", "mean>.5",
    "mean > 5.", "mean = 0", "mean > ٣", "mean  increases\twith alpha", "mean increases with beta",
    "success_rate>=0.9\n", "mean > 0 ", "mean > 0x1", "mean > inf", "mean > nan", "effect < -",
]  # fmt: skip


@pytest.mark.parametrize("text", NODE_EDGES)
def test_node_pattern_agrees_with_parse_node_on_edge_cases(text: str) -> None:
    assert _both_engines(NODE_PATTERN, text) == _parses_node(text)


@pytest.mark.parametrize("text", EXPECT_EDGES)
def test_expect_pattern_agrees_with_parse_expectation_on_edge_cases(text: str) -> None:
    parsed = _expectation(text)
    for variable in ("alpha", "layer", None):
        allowed = parsed is not None and (parsed.form != "trend" or parsed.variable == variable)
        assert _both_engines(expect_pattern(variable), text) == allowed


def test_schema_command_writes_the_committed_text_or_fails_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from circuitspec.cli.main import app

    runner = CliRunner()
    written = runner.invoke(app, ["schema", "-o", str(tmp_path / "s.json")])
    assert written.exit_code == 0 and (tmp_path / "s.json").read_text(encoding="utf-8") == schema_text()
    printed = runner.invoke(app, ["schema"])
    assert printed.exit_code == 0 and printed.stdout == schema_text()
    failed = runner.invoke(app, ["schema", "--out", str(tmp_path / "missing" / "s.json")])
    assert failed.exit_code == 2 and failed.stderr.startswith("cannot write the schema to ")
    assert failed.stderr.count("\n") == 1
