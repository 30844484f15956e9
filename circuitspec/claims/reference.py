"""docs/REFERENCE.md, generated: every key of a hypothesis file, every claim kind, metric, statistic,
expectation form and environment variable.

The key tables come from the JSON Schema (:func:`circuitspec.claims.json_schema.hypothesis_json_schema`,
itself generated from the pydantic models and their field docstrings), the claim-kind facts from the
registry, the grammars from the parsers' own constants; what each statistic means per kind is
hand-written in :mod:`.reference_text`. Regenerate with
``python -m circuitspec.claims.reference -o docs/REFERENCE.md``; ``tests/test_reference_doc.py``
fails when the committed file is stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from circuitspec.spec import expectations, nodes

from . import reference_text as text
from .json_schema import hypothesis_json_schema
from .registry import REGISTRY

__all__ = ["REFERENCE_PATH", "reference_markdown"]

REFERENCE_PATH = "docs/REFERENCE.md"  # relative to the repository root
_COMMAND = f"python -m circuitspec.claims.reference -o {REFERENCE_PATH}"
# a kind added to the registry before reference_text.py describes it (tests/test_reference_doc.py fails)
_UNDESCRIBED: tuple[frozenset[str], str, str] = (
    frozenset(),
    "(not described yet: see reference_text.py)",
    "",
)


# ---------------------------------------------------------------------- JSON Schema → table cells


_CODE = re.compile(r"(``.+?``|`[^`]*`)")


def _cell(value: str) -> str:
    """Text safe inside a Markdown table cell: one line, ``|`` escaped, and ``<l>`` outside code spans
    written as entities (a renderer would take it for an HTML tag and hide it)."""
    parts = _CODE.split(" ".join(value.split()))
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "".join(parts).replace("|", "\\|")


def _bounds(prop: dict[str, Any]) -> str:
    words = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}
    out = [f"{sign} {prop[key]}" for key, sign in words.items() if key in prop]
    if "minItems" in prop:
        out.append(f"at least {prop['minItems']}")
    return f" ({', '.join(out)})" if out else ""


def _type(prop: dict[str, Any]) -> str:
    """A JSON Schema property's type in words (references link to their section)."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "oneOf" in prop and "discriminator" in prop:  # the claims union
        return "[claim](#claims)"
    if "anyOf" in prop:
        parts = [_type(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(dict.fromkeys(parts))
    kind = prop.get("type")
    if kind == ["string", "array"]:
        return "string or list of strings" + _bounds(prop)
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}" + _bounds(prop)
    if kind == "object":
        values = prop.get("additionalProperties")
        if isinstance(values, dict):
            return f"map: string → {_type(values)}"
        return "map" if "patternProperties" in prop else "object"
    if kind in ("integer", "number"):
        return ("whole number" if kind == "integer" else "number") + _bounds(prop)
    if kind == "boolean":
        return "true \\| false"
    return str(kind or "any")


def _default(prop: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in prop or prop["default"] is None:
        return "—"
    return f"`{json.dumps(prop['default'], ensure_ascii=False)}`"


def _table(definition: dict[str, Any], only: set[str] | None = None, required: set[str] | None = None) -> str:
    """One row per property (those in ``only``, if given): key, type, default, description."""
    required = set(definition.get("required", [])) if required is None else required
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, prop in definition["properties"].items():
        if only is not None and key not in only:
            continue
        description = prop.get("description", "")
        rows.append(f"| `{key}` | {_type(prop)} | {_default(prop, key in required)} | {_cell(description)} |")
    return "\n".join(rows)


# ---------------------------------------------------------------------- sections


def _top(schema: dict[str, Any]) -> list[str]:
    defs = schema["$defs"]
    return [
        "## A hypothesis file",
        "",
        "Top-level keys (unknown keys are errors everywhere; `circuitspec validate` checks the rest "
        "against the model's shape).",
        "",
        _table(schema),
        "",
        "## model",
        "",
        '<a id="modelspec"></a>',
        _cell(defs["ModelSpec"].get("description", "")),
        "",
        _table(defs["ModelSpec"]),
        "",
        "### Model sources",
        "",
        "| key | names | loads from | `validate` reads the shape from |",
        "|---|---|---|---|",
        *(f"| `{key}` | {a} | {b} | {c} |" for key, (a, b, c) in text.MODEL_SOURCES.items()),
        "",
        "`verify --device` / `--dtype` replace `model.device` / `model.dtype` for one run.",
        "",
        '### model.shape <a id="modelshape"></a>',
        "",
        _table(defs["ModelShape"]),
        "",
        '### model.dictionaries.&lt;site&gt; <a id="dictionaryspec"></a>',
        "",
        "Keys name the site: `MLP<l>.tc` (a transcoder) or `<site>.sae` (an SAE).",
        "",
        _table(defs["DictionarySpec"]),
        "",
    ]


def _data(defs: dict[str, Any]) -> list[str]:
    return [
        '## data <a id="dataspec"></a>',
        "",
        "Prompts are templates × rows. Rows are inline (`rows:`, a list of `{slot: value}` maps) or a "
        "JSONL file (`file:`, one such map per line); every `{slot}` a template uses must be in every row.",
        "",
        _table(defs["DataSpec"]),
        "",
        '### data.templates[] <a id="templatespec"></a>',
        "",
        "`{slot}` is filled from the row and marks a token role named after the slot (the role is the "
        "slot's last token); `{role:text}` marks fixed text as a role; `end` is always the last token. "
        "Answers must be exactly one token each.",
        "",
        _table(defs["TemplateSpec"]),
        "",
        '### data.corrupt, templates[].corrupt <a id="corruptionspec"></a>',
        "",
        _cell(defs["CorruptionSpec"].get("description", "")),
        "",
        _table(defs["CorruptionSpec"]),
        "",
        '### data.split <a id="splitspec"></a>',
        "",
        _table(defs["SplitSpec"]),
        "",
        "## nodes and paths",
        "",
        f"A node is `{nodes.NODE_GRAMMAR}`. `nodes:` names nodes and groups (a list of nodes and other "
        "names); `paths:` names chains `A -> B [-> C …]` (or `→`) of nodes or names in `nodes`. "
        "Claims name them in `targets`. The README's node-grammar table gives each node's hook.",
        "",
    ]


def _claim_keys(defs: dict[str, Any]) -> tuple[set[str], set[str], dict[str, Any]]:
    """The keys every claim kind takes, those every kind requires, and a claim definition to read."""
    claim_defs = [defs[kind.schema.__name__] for kind in REGISTRY.values()]
    common = set.intersection(*(set(d["properties"]) for d in claim_defs)) - {"kind"}
    required = set.intersection(*(set(d.get("required", [])) for d in claim_defs))
    return common, required, claim_defs[0]


def _kind_summary() -> list[str]:
    rows = [
        "| kind | targets | trend variable | random baseline | encoders |",
        "|---|---|---|---|---|",
    ]
    for name, kind in REGISTRY.items():
        if not kind.needs_targets and name == "behaviour":
            targets = "none"
        elif kind.paths:
            targets = "paths or edges `A -> B`" + ("" if kind.needs_targets else " (optional)")
        else:
            rule = kind.target.valid if kind.target is not None else "any node"
            targets = rule + ("" if kind.needs_targets else " (optional)")
        rows.append(
            f"| [`{name}`](#kind-{name}) | {_cell(targets)} | {kind.trend_variable or '—'} | "
            f"{'yes' if kind.random_baseline else 'no'} | {'yes' if kind.encoder else 'no'} |"
        )
    return rows


def _claims(defs: dict[str, Any]) -> list[str]:
    common, required, first = _claim_keys(defs)
    out = [
        "## Claims",
        "",
        "### Keys every claim takes",
        "",
        "`kind` picks one of the kinds below. `targets` is required except by "
        + ", ".join(f"`{name}`" for name, kind in REGISTRY.items() if not kind.needs_targets)
        + " (`behaviour` takes none).",
        "",
        _table(first, only=common, required=required),
        "",
        '### random_baseline <a id="randombaseline"></a>',
        "",
        _table(defs["RandomBaseline"]),
        "",
        "### Claim kinds",
        "",
        *_kind_summary(),
        "",
    ]
    for name, kind in REGISTRY.items():
        definition = defs[kind.schema.__name__]
        arrays, value, notes = text.KIND_ARRAYS.get(name, _UNDESCRIBED)
        measured = ", ".join(f"`{a}`" for a in sorted(arrays))
        own = set(definition["properties"]) - common
        out += [
            f'#### kind: {name} <a id="kind-{name}"></a>',
            "",
            _cell(definition.get("description") or definition["properties"]["kind"].get("description", "")),
            "",
            _cell(
                f"Per prompt: `value` = {value}. Arrays measured: {measured}."
                + (f" {notes[0].upper()}{notes[1:]}." if notes else "")
            ),
            "",
        ]
        if kind.paths:
            sender, receiver = kind.sender.valid, kind.receiver.valid  # type: ignore[union-attr]
            out += [_cell(f"Path senders: {sender}; receivers: {receiver}."), ""]
        if not kind.encoder:
            out += [f"Not on encoders: {kind.encoder_reason}.", ""]
        out += [_table(definition, only=own), ""]
    return out


def _metrics() -> list[str]:
    return [
        "## Metrics",
        "",
        "`metric:` on a claim says what is measured on each run, read at each prompt's last real token "
        "and scored against the clean prompt's answers (the corrupted run too).",
        "",
        "| metric | per prompt |",
        "|---|---|",
        *(f"| `{name}` | {_cell(meaning)} |" for name, meaning in text.METRICS.items()),
        "",
    ]


def _statistics() -> list[str]:
    out = [
        "## Statistics",
        "",
        "An expectation names one statistic of the claim's per-prompt arrays. Its confidence interval "
        "is computed at the claim's level after the file's family-wise correction (`family:`); see "
        "docs/STATISTICS.md. Fewer prompts than `min_n` (default 20) leave a claim inconclusive.",
        "",
        "| statistic | reads | computes | interval |",
        "|---|---|---|---|",
        *(
            f"| `{name}` | {reads} | {_cell(formula)} | {method} |"
            for name, (reads, formula, method) in text.STATISTICS.items()
        ),
        "",
        "A statistic whose array a kind does not measure is an **error** verdict (e.g. `recovered` "
        "of a `behaviour` claim). Reported alongside: with `random_baseline`, the **percentile** of "
        "the claim's statistic among the random circuits (ties count half) and the empirical "
        "p = (1 + #{random at least as good}) / (N + 1); with `no effect within m` on `mean` / "
        "`effect`, the TOST p-value.",
        "",
        "### What each statistic means, per claim kind",
        "",
        "| kind | `value` per prompt | statistics |",
        "|---|---|---|",
    ]
    for name in REGISTRY:
        _, value, _ = text.KIND_ARRAYS.get(name, _UNDESCRIBED)
        meanings = "; ".join(f"`{s}`: {m}" for s, m in text.KIND_STATISTICS.get(name, {}).items())
        out.append(f"| `{name}` | {_cell(value)} | {_cell(meanings)} |")
    return [*out, ""]


def _expectations() -> list[str]:
    trends = ", ".join(f"`{k}`: `{v.trend_variable}`" for k, v in REGISTRY.items() if v.trend_variable)
    return [
        "## Expectations",
        "",
        _cell(f"`expect:` is parsed, never evaluated: {expectations.EXPECTATION_GRAMMAR}."),
        "",
        "| form | example | passes when | fails when |",
        "|---|---|---|---|",
        "| `<statistic> <op> <number>` | `mean < 0`, `recovered >= 0.8` | the whole interval satisfies "
        "it | the whole interval violates it |",
        "| `<statistic> increases\\|decreases with <variable>` | `success_rate increases with alpha` | "
        "the intervals of Spearman ρ and of the rank slope both clear 0 in that direction | both lie "
        "wholly on the other side |",
        "| `no effect within <margin>` | `no effect within 0.1` | the interval of `mean` lies inside "
        "(−m, m) | it lies wholly outside |",
        "| `<statistic> within ±<margin>` | `recovered within ±0.1`, `mean within +-0.5` | the "
        "interval lies inside (−m, m) | it lies wholly outside |",
        "",
        f"Operators: {' '.join(f'`{o}`' for o in expectations.OPERATORS)}. A margin may be written "
        "`±m`, `+-m` or `+/-m` (`no effect within` also takes a bare `m`) and must be positive. "
        f"Trend variables: {trends}; other kinds take no trends. Anything else is **inconclusive** "
        "(the interval straddles); a claim that could not be measured is **error**, never fail. A "
        "compare or equivalence expectation on a sweep is judged at its last point.",
        "",
    ]


def _environment() -> list[str]:
    return [
        "## Environment variables",
        "",
        "| variable | effect |",
        "|---|---|",
        *(f"| `{name}` | {_cell(effect)} |" for name, effect in text.ENVIRONMENT.items()),
        "",
    ]


def reference_markdown() -> str:
    """The whole of docs/REFERENCE.md."""
    schema = hypothesis_json_schema()
    head = [
        "# circuitspec reference",
        "",
        f"<!-- generated by `{_COMMAND}` from the pydantic models, the claim registry and "
        "circuitspec/claims/reference_text.py; do not edit by hand -->",
        "",
        "Every key of a hypothesis file, every claim kind, metric, statistic, expectation form and "
        "environment variable. `circuitspec init` writes a starter file; `circuitspec schema` prints "
        "the JSON Schema editors read.",
        "",
    ]
    body = [
        *_top(schema),
        *_data(schema["$defs"]),
        *_claims(schema["$defs"]),
        *_metrics(),
        *_statistics(),
        *_expectations(),
        *_environment(),
    ]
    return "\n".join([*head, *body]).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m circuitspec.claims.reference [-o FILE]``: print or write the reference."""
    parser = argparse.ArgumentParser(description="Generate docs/REFERENCE.md.")
    parser.add_argument("-o", "--out", type=Path, help="write it here (default: print it)")
    args = parser.parse_args(argv)
    markdown = reference_markdown()
    if args.out is None:
        sys.stdout.write(markdown)
    else:
        args.out.write_text(markdown, encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
