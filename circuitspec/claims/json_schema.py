"""The JSON Schema of a hypothesis file, for editors (yaml-language-server, VS Code) and other tools.

Generated from the pydantic models (:mod:`circuitspec.spec.schema`, their field docstrings becoming
descriptions), then tightened where JSON Schema can say what the loader and ``validate`` check: the
node grammar (built from :mod:`circuitspec.spec.nodes`' own regexes), the expectation grammar (from
:mod:`circuitspec.spec.expectations`' constants) with each kind's trend variable, which kinds need
targets (the claim registry), one model source, ``rows`` or ``file``, dictionary keys, checkpoint
names. ``tests/test_json_schema.py`` checks the patterns against the parsers on generated strings.

Left to the loader: group and path names the file defines (a name that is not a node is accepted
if it holds no node punctuation ``@ [ ] .``), shapes and ranges that need the model, numbers that
overflow to infinity, and cross-references (roles, ``require`` ids, ``signs`` keys).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from circuitspec.spec import expectations, names, nodes, screens
from circuitspec.spec.schema import SCHEMA_VERSION, Hypothesis

from .registry import REGISTRY

__all__ = [
    "EXPECT_PATTERN",
    "NODE_PATTERN",
    "SCHEMA_ID",
    "SCHEMA_PATH",
    "expect_pattern",
    "hypothesis_json_schema",
    "schema_text",
]

SCHEMA_ID = f"urn:circuitspec:hypothesis:{SCHEMA_VERSION}"  # a name, not a download address
SCHEMA_PATH = "schema/circuitspec.schema.json"  # the committed copy, relative to the repository root
_DRAFT = "https://json-schema.org/draft/2020-12/schema"


# ---------------------------------------------------------------------- patterns


def _portable(pattern: str) -> str:
    """A Python regex body as ECMA-262 text: no anchors, named groups made plain."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern.removeprefix("^").removesuffix("$"))


# one node: every form of spec/nodes.py, except that logits take no @role (parse_node says so)
_NODE = "(?!logits@)(?:" + "|".join(_portable(p.pattern) for p, _ in nodes._PATTERNS) + ")"
_ARROW = "(?:->|→)"
_WORD = r"(?:(?!->)[^\s@\[\].→])+"
_NAME = rf"{_WORD}(?:\s+{_WORD})*"  # a group / path name: no node punctuation, no arrow
_PART = f"(?:{_NODE}|{_NAME})"
_CHAIN = rf"{_PART}(?:\s*{_ARROW}\s*{_PART})+"
NODE_PATTERN = rf"^\s*{_NODE}\s*$"
_RANGE = _portable(nodes.NEURON_RANGE.pattern)  # a group of neurons, not a path step
_MEMBER = rf"^\s*(?:{_PART}|{_RANGE})\s*$"  # a node, a neuron range, or a name in `nodes`
_TARGET = rf"^\s*(?:{_CHAIN}|{_PART}|{_RANGE})\s*$"  # ... or an edge / chain 'A -> B', or a path name
_CHAIN_PATTERN = rf"^\s*{_CHAIN}\s*$"
_ROLE = r"^[A-Za-z_][A-Za-z0-9_]*$"
_RESIDUAL = r"^\s*(?:resid_pre|resid_mid|resid_post)[0-9]+(?:@[A-Za-z_][A-Za-z0-9_]*)?\s*$"
_CHECKPOINT = rf"^\s*(?:{names._STEP.pattern}|{names._NAME.pattern})\s*$"
_CHECKPOINT_MESSAGE = f"not a checkpoint: it must be {names.CHECKPOINT_HELP}"


def _expect_regex(variable: str | None) -> str:
    """The expectation grammar as one regex; trends only over ``variable`` (a regex; None: no trends)."""
    stat = "(?:" + "|".join(expectations.STATISTICS) + ")"
    op = "(?:" + "|".join(re.escape(o) for o in expectations.OPERATORS) + ")"
    number = _portable(expectations._NUMBER)
    positive = r"\+?(?=[0-9.]*[1-9])" + number.removeprefix("[-+]?")  # margins are > 0
    forms = [
        rf"{stat}\s*{op}\s*{number}",
        rf"no\s+effect\s+within\s+(?:±|\+-|\+/-)?\s*{positive}",
        rf"{stat}\s+within\s+(?:±|\+-|\+/-)\s*{positive}",
    ]
    if variable is not None:
        forms.append(rf"{stat}\s+(?:increases|decreases)\s+with\s+{variable}")
    return r"^\s*(?:" + "|".join(forms) + r")\s*$"


def expect_pattern(trend_variable: str | None = None) -> str:
    """The expectations a kind accepts: trends only with its ``trend_variable`` (None: no trends)."""
    return _expect_regex(None if trend_variable is None else re.escape(trend_variable))


EXPECT_PATTERN = _expect_regex("[a-z_]+")  # the grammar alone, whatever the kind


# ---------------------------------------------------------------------- generation


def _one_or_many(item: dict[str, Any], description: str, *, at_least_one: bool = False) -> dict[str, Any]:
    """A string, or a list of such strings (the loader wraps a single string in a list). One schema,
    not ``anyOf``, so that an editor names the broken rule rather than "expected a string"."""
    string_rules = {key: value for key, value in item.items() if key != "type"}
    out = {"description": description, "type": ["string", "array"], **string_rules, "items": item}
    return {**out, "minItems": 1} if at_least_one else out


def _pattern(pattern: str, message: str) -> dict[str, str]:
    """A pattern and the sentence an editor shows when it fails (``patternErrorMessage``, a keyword of
    VS Code's JSON and YAML language services; validators ignore it) instead of the regex."""
    return {"pattern": pattern, "patternErrorMessage": message}


def _string(pattern: str, message: str, description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", **_pattern(pattern, message)}
    if description:
        out["description"] = description
    return out


def _expect(trend_variable: str | None) -> dict[str, str]:
    trends = f"trends only 'with {trend_variable}'" if trend_variable else "no trends here"
    message = f"not an expectation of this claim ({trends}; valid: {expectations.EXPECTATION_GRAMMAR})"
    return _pattern(expect_pattern(trend_variable), message)


def _tighten_claim(claim: dict[str, Any], kind_name: str) -> None:
    """One claim kind: target forms, which kinds need targets, the expectation with its trend."""
    kind = REGISTRY[kind_name]
    props = claim["properties"]
    target = _string(
        _TARGET,
        f"not a node, a name in `nodes` or `paths`, or an edge 'A -> B' (nodes: {nodes.NODE_GRAMMAR})",
        "a node, a name in `nodes` or `paths`, or an edge 'A -> B'",
    )
    description = props["targets"]["description"]
    if kind_name == "behaviour":  # it measures the clean prompts: no targets
        props["targets"] = {"description": description, "type": "array", "maxItems": 0}
    else:
        props["targets"] = _one_or_many(target, description, at_least_one=kind.needs_targets)
        if kind.needs_targets:
            claim["required"] = sorted({*claim.get("required", []), "targets"})
    props["require"] = _one_or_many({"type": "string", "minLength": 1}, props["require"]["description"])
    props["expect"].update(_expect(kind.trend_variable))
    if kind_name == "screen":  # screen targets and the screen expectation grammar (spec/screens.py)
        _tighten_screen(props)
    if kind_name == "logit_lens":  # one site is not a sweep: no trend with `at`
        claim["if"] = {"required": ["at"], "properties": {"at": {"type": "string"}}}
        claim["then"] = {"properties": {"expect": _expect(None)}}
        props["at"]["anyOf"][0].update(
            _pattern(
                _RESIDUAL,
                "not a residual site (valid: resid_pre<l>, resid_mid<l>, resid_post<l>, optionally @role)",
            )
        )
    if kind_name == "attention":
        for role in ("source", "destination"):
            props[role].update(_pattern(_ROLE, "not a role (a letter or '_', then letters, digits, '_')"))


def _tighten_screen(props: dict[str, Any]) -> None:
    """A screen's targets are screen keywords; its expectation is 'only / none outside [cells] ...'."""
    keywords = "|".join(nodes.SCREEN_TARGETS)
    item = _string(
        rf"^\s*(?:{keywords})\s*$", f"not a screen target (valid: {', '.join(nodes.SCREEN_TARGETS)})"
    )
    what = f"screen targets: {', '.join(nodes.SCREEN_TARGETS)}; one string or a list"
    props["targets"] = _one_or_many(item, what, at_least_one=True)
    stat = "(?:" + "|".join(screens.SCREEN_STATISTICS) + ")"
    op = "(?:" + "|".join(re.escape(o) for o in screens.SCREEN_OPERATORS) + ")"
    cells = r"(?:\[[^\]]*\]|[A-Za-z_][A-Za-z0-9_\-.]*)"
    number = _portable(expectations._NUMBER)
    pattern = rf"^\s*(?:only|none\s+outside)\s*{cells}\s*(?:{stat}\s*)?{op}\s*{number}\s*$"
    props["expect"].update(
        _pattern(pattern, f"not a screen expectation (valid: {screens.SCREEN_EXPECTATION_GRAMMAR})")
    )


def _tighten_model(defs: dict[str, Any]) -> None:
    """Exactly one non-empty source; dictionary keys name their site and fix their kind."""
    model = defs["ModelSpec"]
    sources = ("name", "path", "gguf", "bundled", "package")
    model["oneOf"] = [
        {"required": [s], "properties": {s: {"type": "string", "minLength": 1}}} for s in sources
    ]
    dictionaries = model["properties"]["dictionaries"]
    entry = dictionaries.pop("additionalProperties")
    dictionaries["patternProperties"] = {
        r"^\s*MLP[0-9]+\.tc$": {"allOf": [entry, {"properties": {"kind": {"const": "transcoder"}}}]},
        r"^\s*(?:resid_pre|resid_mid|resid_post|MLP|mlp_out)[0-9]+\.sae$": {
            "allOf": [entry, {"properties": {"kind": {"const": "sae"}}}]
        },
    }
    dictionaries["additionalProperties"] = False
    checkpoint = model["properties"]["checkpoint"]
    checkpoint["anyOf"] = [
        {"type": "integer", "minimum": 0},
        _string(_CHECKPOINT, _CHECKPOINT_MESSAGE),
        {"type": "null"},
    ]


def _tighten_data(defs: dict[str, Any]) -> None:
    """``rows`` or ``file`` (exactly one; rows not empty)."""
    data = defs["DataSpec"]
    data["oneOf"] = [
        {"required": ["rows"], "properties": {"rows": {"type": "array", "minItems": 1}}},
        {"required": ["file"], "properties": {"file": {"type": "string"}}},
    ]


def _tighten_hypothesis(schema: dict[str, Any]) -> None:
    """Node members, path chains, checkpoint names, and `model:` or `models:`."""
    props = schema["properties"]
    member = _string(
        _MEMBER,
        f"not a node or a name in `nodes` (nodes: {nodes.NODE_GRAMMAR})",
        "a node, or a name in `nodes`",
    )
    props["nodes"]["additionalProperties"] = {"anyOf": [member, {"type": "array", "items": member}]}
    chain = _string(
        _CHAIN_PATTERN,
        f"not a path 'A -> B [-> C ...]' of nodes or names in `nodes` (nodes: {nodes.NODE_GRAMMAR})",
        "a chain 'A -> B [-> C ...]' of nodes or names in `nodes`",
    )
    props["paths"]["additionalProperties"] = {"anyOf": [chain, {"type": "array", "items": chain}]}
    schema["required"] = [r for r in schema.get("required", []) if r != "model"]
    schema["anyOf"] = [
        {"required": ["model"]},
        {"required": ["models"], "properties": {"models": {"minProperties": 1}}},
    ]
    props["models"]["propertyNames"] = {"pattern": r"^[A-Za-z_][A-Za-z0-9_\-]*$"}
    props["checkpoints"]["items"] = {
        "anyOf": [{"type": "integer", "minimum": 0}, _string(_CHECKPOINT, _CHECKPOINT_MESSAGE)]
    }


def _seeds_from_zero(node: Any) -> None:
    """Every ``seed`` is a whole number from 0 (``names.non_negative_seed``)."""
    if isinstance(node, dict):
        seed = node.get("properties", {}).get("seed")
        if isinstance(seed, dict) and seed.get("type") == "integer":
            seed["minimum"] = 0
        for value in node.values():
            _seeds_from_zero(value)
    elif isinstance(node, list):
        for value in node:
            _seeds_from_zero(value)


def _one_line_descriptions(node: Any) -> None:
    """Docstrings wrapped over several lines read as one line in an editor's hover."""
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            node["description"] = " ".join(node["description"].split())
        for value in node.values():
            _one_line_descriptions(value)
    elif isinstance(node, list):
        for value in node:
            _one_line_descriptions(value)


def hypothesis_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a hypothesis file."""
    schema = copy.deepcopy(Hypothesis.model_json_schema(mode="validation"))
    defs = schema["$defs"]
    for kind_name, kind in REGISTRY.items():
        _tighten_claim(defs[kind.schema.__name__], kind_name)
    _tighten_model(defs)
    _tighten_data(defs)
    _tighten_hypothesis(schema)
    _seeds_from_zero(schema)
    _one_line_descriptions(schema)
    # the old name of `family` is still read
    schema["properties"]["multiple_comparisons"] = {
        **schema["properties"]["family"],
        "description": "The old name of `family`.",
    }
    return {"$schema": _DRAFT, "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    """The schema's text as committed (``circuitspec schema -o schema/circuitspec.schema.json``)."""
    import json

    return json.dumps(hypothesis_json_schema(), indent=2, ensure_ascii=False) + "\n"
