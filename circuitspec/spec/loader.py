"""Read a hypothesis YAML file into a validated :class:`Hypothesis`, with located one-line errors.

The YAML is parsed with ruamel.yaml's round-trip loader only to keep line/column marks; its
values are converted to plain Python before pydantic sees them. Aliases, anchors, custom tags
and multi-document streams are refused (no alias bombs, no object construction). Data rows are
read by :mod:`.rows` (re-exported here); pydantic errors become sentences in :mod:`.messages`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from circuitspec.errors import CircuitSpecError

from .claim_base import claim_model_names
from .messages import Loc, boolean_number_loc, data_loc, humanize, most_specific
from .requirements import resolve_requirements
from .rows import load_rows as _read_rows
from .rows import read_text
from .schema import Hypothesis
from .splits import check_split_fields

__all__ = ["MAX_FILE_BYTES", "LoadedHypothesis", "load_hypothesis", "load_rows", "parse_yaml_text"]

MAX_FILE_BYTES = 1 << 20  # a hypothesis file is prose-sized; anything bigger is a mistake
_CORE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")}

Marks = dict[Loc, tuple[int, int, int, int]]  # loc -> 1-based (key line, key col, value line, value col)


@dataclass
class LoadedHypothesis:
    """A validated hypothesis plus what is needed to point at its lines.

    ``claims`` are the claims after ``each: true`` expansion (ids ``<id>[<target>]``, ``require``
    resolved to those ids);
    ``claim_sources`` maps each expanded claim id to ``(index in the file's claims list,
    index of its target in that claim's ``targets`` or None)`` for locating errors.
    """

    spec: Hypothesis
    path: Path
    base_dir: Path
    sha256: str
    claims: list[Any]
    marks: Marks = field(repr=False, default_factory=dict)
    claim_sources: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    def locate(self, loc: Sequence[int | str], *, at_key: bool = False) -> tuple[int, int]:
        """1-based ``(line, col)`` of the YAML node at ``loc`` (the deepest existing prefix)."""
        return _locate(self.marks, tuple(loc), at_key=at_key)

    def error(self, message: str, loc: Sequence[int | str] = (), *, at_key: bool = False) -> CircuitSpecError:
        """A :class:`CircuitSpecError` pointing at ``loc`` in this file."""
        line, col = self.locate(loc, at_key=at_key)
        return CircuitSpecError(message, file=str(self.path), line=line, col=col)

    def claim_loc(self, claim_id: str, *rest: int | str) -> Loc:
        """The YAML location of an (expanded) claim's field, e.g. ``claim_loc(id, 'targets', 0)``."""
        index, target_index = self.claim_sources[claim_id]
        if rest[:1] == ("targets",) and target_index is not None:
            rest = ("targets", target_index + (int(rest[1]) if len(rest) > 1 else 0))
        return ("claims", index, *rest)


# ------------------------------------------------------------------------------ YAML


def _mark(problem: Any) -> tuple[int | None, int | None]:
    mark = getattr(problem, "problem_mark", None) or getattr(problem, "context_mark", None)
    if mark is None:
        return None, None
    return mark.line + 1, mark.column + 1


def _refuse_anchor_and_tag(node: Any, file: str) -> None:
    start = node.start_mark
    line, col = start.line + 1, start.column + 1
    if getattr(node, "anchor", None):
        raise CircuitSpecError(
            "YAML anchors and aliases (&name / *name) are not allowed; write values out",
            file=file,
            line=line,
            col=col,
        )
    if (
        node.tag is not None
        and str(node.tag) not in _CORE_TAGS
        and not str(node.tag).startswith(("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"))
    ):
        raise CircuitSpecError(f"YAML tag '{node.tag}' is not allowed", file=file, line=line, col=col)


def _check_and_mark(node: Any, loc: Loc, key_node: Any, marks: Marks, file: str) -> None:
    """Refuse anchors and foreign tags; record where every value (and its key) starts."""
    _refuse_anchor_and_tag(node, file)
    start = node.start_mark
    line, col = start.line + 1, start.column + 1
    key = key_node.start_mark if key_node is not None else start
    marks[loc] = (key.line + 1, key.column + 1, line, col)
    node_id = getattr(node, "id", "")
    if node_id == "mapping":
        for key_node, value_node in node.value:
            _refuse_anchor_and_tag(key_node, file)
            name = key_node.value if isinstance(key_node.value, str) else str(key_node.value)
            _check_and_mark(value_node, (*loc, name), key_node, marks, file)
    elif node_id == "sequence":
        for index, item in enumerate(node.value):
            _check_and_mark(item, (*loc, index), None, marks, file)


def parse_yaml_text(text: str, file: str) -> tuple[Any, Marks]:
    """Parse one YAML document safely into plain Python plus the position of every value.

    Refuses anchors/aliases (no alias bombs), non-core tags and several documents.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError, YAMLFutureWarning

    _refuse_invisible_characters(text, file)
    yaml = YAML(typ="safe", pure=True)
    marks: Marks = {}
    try:
        with warnings.catch_warnings():  # e.g. ReusedAnchorWarning: anchors are refused below anyway
            warnings.simplefilter("ignore")
            node = yaml.compose(text)
            if node is None:
                return None, marks
            _check_and_mark(node, (), None, marks, file)
            data = _plain(yaml.constructor.construct_document(node))
    except CircuitSpecError:
        raise
    except (YAMLError, YAMLFutureWarning) as exc:
        line, col = _mark(exc)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "single document" in str(problem) or "another document" in str(problem):
            problem = "one YAML document per hypothesis file (found a second '---' document)"
        if "cannot start any token" in problem or "expected ',' or ']'" in problem:
            problem += ' (quote values holding @, [ ] or { }, e.g. "MLP0.tc[318]@s_con")'
        raise CircuitSpecError(f"invalid YAML: {problem}", file=file, line=line, col=col) from None
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:  # odd scalars, deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CircuitSpecError(f"invalid YAML: {reason}", file=file, line=1, col=1) from None
    return data, marks


# bidirectional overrides / isolates / marks and C1 controls: text that displays unlike what it is
_INVISIBLE = re.compile("[\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _refuse_invisible_characters(text: str, file: str) -> None:
    found = _INVISIBLE.search(text)
    if found is None:
        return
    line = text.count("\n", 0, found.start()) + 1
    col = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    raise CircuitSpecError(
        f"invisible control character U+{ord(found.group()):04X} (it makes text display unlike what it "
        "is); remove it",
        file=file,
        line=line,
        col=col,
    )


# C0 controls, the invisible characters above, and lone surrogates (a YAML escape such as "\ud800",
# which no UTF-8 text can hold)
_HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]|" + _INVISIBLE.pattern)


def _refuse_hidden_characters(node: Any, loaded: LoadedHypothesis, loc: Loc = ()) -> None:
    """A control, bidirectional or surrogate character in any key or string value (a NUL would end a
    path; a lone surrogate cannot be encoded)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        for text in (key, value):
            found = _HIDDEN.search(text) if isinstance(text, str) else None
            if found:
                what = "surrogate" if "\ud800" <= found.group() <= "\udfff" else "control character"
                raise loaded.error(
                    f"{key}: {what} U+{ord(found.group()):04X} in {text!r}; remove it",
                    (*loc, key),
                    at_key=text is key,
                )
        _refuse_hidden_characters(value, loaded, (*loc, key))


def _plain(node: Any) -> Any:
    """Constructed YAML → plain dict / list / str / int / float / bool / None (dates as ISO text)."""
    if isinstance(node, dict):
        return {(k if isinstance(k, (str, int)) else str(k)): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, (_dt.date, _dt.datetime)):
        return node.isoformat()
    return str(node)


# -------------------------------------------------------------------------- locating


def _locate(marks: Marks, loc: Loc, *, at_key: bool = False) -> tuple[int, int]:
    """Walk ``loc`` through the marks, skipping parts that are not in the file
    (a discriminated union's tag, a missing field) and keeping the deepest position found."""
    prefix: Loc = ()
    for part in loc:
        if (*prefix, part) in marks:
            prefix = (*prefix, part)
    if prefix not in marks:
        return (1, 1)
    key_line, key_col, line, col = marks[prefix]
    return (key_line, key_col) if at_key and prefix == tuple(loc) else (line, col)


# ------------------------------------------------------------------------------ rows


def load_rows(data_spec: Any, base_dir: str | Path, *, hypothesis: Any = None) -> list[Any]:
    """The data rows (:func:`circuitspec.spec.rows.load_rows`), after the ``data.file`` path policy,
    and refusing a row whose desired and undesired answers are the same text (the metric would be 0).

    ``validate`` and ``verify`` both read rows here, so they accept and refuse the same files.
    """
    if data_spec.file is not None:
        _check_data_file(data_spec, Path(base_dir), hypothesis)
    rows = _read_rows(data_spec, base_dir, hypothesis=hypothesis)
    _refuse_equal_answers(data_spec, rows)
    return rows


def _check_data_file(data_spec: Any, base_dir: Path, hypothesis: Any) -> None:
    """``data.file`` must be a file, and may not leave the hypothesis' folder (``..``, an absolute
    path, a symlink out) unless ``data.allow_outside: true`` says it is meant to."""
    folder = base_dir.resolve()
    target = (folder / data_spec.file).resolve()
    if not data_spec.allow_outside and not target.is_relative_to(folder):
        message = (
            f"data.file '{data_spec.file}' resolves to {target}, outside the hypothesis' folder {folder}; "
            "move it beside the hypothesis or set 'data.allow_outside: true'"
        )
    elif not target.is_file():
        message = f"data.file '{data_spec.file}' is not a file (looked at {target})"
    else:
        return
    if hypothesis is not None:
        raise hypothesis.error(message, ("data", "file"))
    raise CircuitSpecError(message)


def _refuse_equal_answers(data_spec: Any, rows: list[Any]) -> None:
    from .templates import fill, parse_template

    for template in data_spec.templates:
        if template.desired is None or template.undesired is None:
            continue
        for row in rows:
            try:
                desired, undesired = (
                    "".join(piece for piece, _ in fill(parse_template(p), row))
                    for p in (template.desired, template.undesired)
                )
            except KeyError:
                continue  # a missing slot is reported by the row checks
            if desired == undesired:
                raise CircuitSpecError(
                    f"template '{template.id}': desired and undesired answers are both {desired!r} for "
                    "this row, so every logit difference would be 0",
                    file=getattr(row, "file", None),
                    line=getattr(row, "line", None),
                    col=getattr(row, "col", None),
                )


# --------------------------------------------------------------------------- loading


def _each_target(spec: Hypothesis, claim: Any) -> list[tuple[str, int]]:
    """``(target, index in targets)`` for ``each: true``: a group name (``nodes: {g: [a, b]}``) stands
    for its members, so it yields one claim per member."""
    out: list[tuple[str, int]] = []
    for j, target in enumerate(claim.targets):
        members = spec.nodes.get(target)
        out += [(m, j) for m in members] if isinstance(members, list) else [(target, j)]
    return out


def _expand_claims(spec: Hypothesis, loaded: LoadedHypothesis) -> None:
    """``each: true`` → one claim per target (per member of a group), ids ``<id>[<target>]``; then
    ``require`` resolved to those ids (:mod:`.requirements`)."""
    claims: list[Any] = []
    sources: dict[str, tuple[int, int | None]] = {}
    for index, claim in enumerate(spec.claims):
        _refuse_unknown_models(spec, claim, index, loaded)
        if not claim.each:
            expanded: list[tuple[Any, int | None]] = [(claim, None)]
        else:
            if not claim.targets:
                raise loaded.error("'each: true' needs at least one target", ("claims", index, "each"))
            expanded = [
                (claim.model_copy(update={"id": f"{claim.id}[{t}]", "targets": [t], "each": False}), j)
                for t, j in _each_target(spec, claim)
            ]
        for new, target_index in expanded:
            if new.id in sources:
                raise loaded.error(
                    f"duplicate claim id '{new.id}' after expanding 'each'", ("claims", index, "id")
                )
            sources[new.id] = (index, target_index)
            claims.append(new)
    loaded.claims = resolve_requirements(spec.claims, claims, sources, loaded.error)
    loaded.claim_sources = sources


def _refuse_unknown_models(spec: Hypothesis, claim: Any, index: int, loaded: LoadedHypothesis) -> None:
    """A claim's ``model:`` (or a cross-model claim's ``models:``) must name one of the file's ``models:``."""
    field = "models" if getattr(claim, "models", None) else "model"
    for name in claim_model_names(claim):
        if not spec.models:
            message = f"claim '{claim.id}' names model '{name}', but the file has no 'models:'"
            raise loaded.error(message, ("claims", index, field))
        if name not in spec.models:
            message = f"claim '{claim.id}': unknown model '{name}' (models: {', '.join(spec.models)})"
            raise loaded.error(message, ("claims", index, field))


def _refuse_duplicate_ids(loaded: LoadedHypothesis, raw: dict[str, Any]) -> None:
    """Point at the second claim / template that reuses an id (pydantic could only name the list)."""
    data = raw.get("data")
    sections = [("claims",), ("data", "templates")]
    for section in sections:
        items = (
            raw.get("claims")
            if section == ("claims",)
            else (data.get("templates") if isinstance(data, dict) else None)
        )
        if not isinstance(items, list):
            continue
        seen: set[Any] = set()
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            if item["id"] in seen:
                what = "claim" if section == ("claims",) else "template"
                raise loaded.error(f"duplicate {what} id '{item['id']}'", (*section, index, "id"))
            seen.add(item["id"])


def load_hypothesis(path: str | Path) -> LoadedHypothesis:
    """Read, parse and validate a hypothesis file; raises a located :class:`CircuitSpecError`."""
    path = Path(path)
    file = str(path)
    text = read_text(path, MAX_FILE_BYTES, "hypothesis file")
    raw, marks = parse_yaml_text(text, file)
    if not isinstance(raw, dict):
        got = "empty" if raw is None else f"a {type(raw).__name__}"
        raise CircuitSpecError(
            f"the top level of a hypothesis must be a mapping (name:, model:, data:, claims:), got {got}",
            file=file,
            line=1,
            col=1,
        )
    loaded = LoadedHypothesis(
        spec=None,  # type: ignore[arg-type]
        path=path,
        base_dir=path.resolve().parent,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        claims=[],
        marks=marks,
    )
    _refuse_duplicate_ids(loaded, raw)
    _refuse_hidden_characters(raw, loaded)  # written as escapes ("\0", "\u202e") in quoted strings
    boolean = boolean_number_loc(raw)
    if boolean is not None:  # pydantic would read `n: true` as 1
        message = f"{boolean[-1]}: a YAML boolean (true / false) is not a number; write the number"
        raise loaded.error(message, boolean)
    try:
        spec = Hypothesis.model_validate(raw)
    except ValidationError as exc:
        first = most_specific(exc.errors(include_url=False))
        message, at_key = humanize(first)
        loc = data_loc(tuple(first["loc"]))
        if first["type"] == "union_tag_invalid":
            loc = (*loc, "kind")  # point at the bad kind, not at the claim
        raise loaded.error(message, loc, at_key=at_key) from None
    loaded.spec = spec
    _expand_claims(spec, loaded)
    check_split_fields(loaded)
    return loaded
