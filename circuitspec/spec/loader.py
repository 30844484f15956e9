"""Read a hypothesis YAML file into a validated :class:`Hypothesis`, with located one-line errors.

The YAML is parsed with ruamel.yaml's round-trip loader only to keep line/column marks; its
values are converted to plain Python before pydantic sees them. Aliases, anchors, custom tags
and multi-document streams are refused (no alias bombs, no object construction).
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import json
import types
import typing
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from circuitspec.errors import CircuitSpecError

from .schema import CLAIM_KINDS, DataSpec, Hypothesis
from .templates import slots_of

__all__ = ["MAX_FILE_BYTES", "LoadedHypothesis", "load_hypothesis", "load_rows", "parse_yaml_text"]

MAX_FILE_BYTES = 1 << 20  # a hypothesis file is prose-sized; anything bigger is a mistake
MAX_ROWS_BYTES = 64 << 20
_CORE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")}

Loc = tuple[int | str, ...]
Marks = dict[Loc, tuple[int, int, int, int]]  # loc -> 1-based (key line, key col, value line, value col)


@dataclass
class LoadedHypothesis:
    """A validated hypothesis plus what is needed to point at its lines.

    ``claims`` are the claims after ``each: true`` expansion (ids ``<id>[<target>]``);
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


def _read_text(path: Path, limit: int, what: str) -> str:
    file = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CircuitSpecError(f"cannot read {what}: {exc.strerror or exc}", file=file) from None
    if not path.is_file():
        raise CircuitSpecError(f"{what} is not a regular file", file=file)
    if size > limit:
        raise CircuitSpecError(
            f"{what} is {size:,} bytes, larger than the {limit:,}-byte limit", file=file, line=1, col=1
        )
    data = path.read_bytes()
    if not data.strip():
        raise CircuitSpecError(f"{what} is empty", file=file, line=1, col=1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CircuitSpecError(
            f"{what} is not UTF-8 text (bad byte at offset {exc.start})", file=file, line=line, col=1
        ) from None
    for number, content in enumerate(text.splitlines(), start=1):
        bad = next((c for c in content if (ord(c) < 32 and c != "\t") or c == "\x7f" or c == "\ufffe"), None)
        if bad is not None:
            raise CircuitSpecError(
                f"{what} contains a control character {bad!r}; is it binary?",
                file=file,
                line=number,
                col=content.index(bad) + 1,
            )
    return text.lstrip("\ufeff")


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


# ---------------------------------------------------------------- pydantic messages


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional / Union / Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _unwrap(a)]
    return [annotation]


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class a (partial) error location points into, if any."""
    current: list[Any] = [Hypothesis]
    for part in loc:
        nxt: list[Any] = []
        for candidate in current:
            for typ in _unwrap(candidate):
                origin = typing.get_origin(typ)
                if isinstance(typ, type) and issubclass(typ, BaseModel):
                    if part in typ.model_fields:
                        nxt.append(typ.model_fields[part].annotation)
                    else:  # a discriminated union's tag: keep the variant whose kind matches
                        kind = typ.model_fields.get("kind")
                        if kind is not None and typing.get_args(kind.annotation) == (part,):
                            nxt.append(typ)
                elif origin in (list, Sequence) and isinstance(part, int):
                    nxt.append(typing.get_args(typ)[0])
                elif origin is dict and isinstance(part, str):
                    nxt.append(typing.get_args(typ)[1])
        current = nxt
    models = [t for c in current for t in _unwrap(c) if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0] if len(models) == 1 else None


_TYPE_NAMES = {"str", "int", "float", "bool", "list", "dict", "none"}


def _is_branch(part: int | str) -> bool:
    """A pydantic loc part naming a union member (``str``, ``list[str]``, ...), not a data key."""
    return isinstance(part, str) and (part in _TYPE_NAMES or "[" in part or part.startswith("function-"))


def _data_loc(loc: Loc) -> Loc:
    return tuple(p for p in loc if not _is_branch(p))


def _most_specific(errors: list[Any]) -> Any:
    """The first error, or for a union the member error that reaches deepest into the data."""
    first = errors[0]
    loc = tuple(first["loc"])
    branch = next((i for i, p in enumerate(loc) if _is_branch(p)), None)
    if branch is None:
        return first
    prefix = loc[:branch]
    same_place = [e for e in errors if tuple(e["loc"])[:branch] == prefix]
    return max(same_place, key=lambda e: len(_data_loc(tuple(e["loc"]))))


def _field_name(loc: Loc) -> str:
    names = [p for p in loc if isinstance(p, str) and p not in CLAIM_KINDS and not _is_branch(p)]
    return names[-1] if names else "hypothesis"


def _humanize(error: dict[str, Any]) -> tuple[str, bool]:
    """One readable sentence for a pydantic error, and whether it points at a key."""
    kind = error["type"]
    loc: Loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    inp = error.get("input")
    name = _field_name(loc)
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        valid = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        suffix = f" (valid: {', '.join(valid)})" if valid else ""
        return f"unknown field '{loc[-1]}'{hint}{suffix}", True
    if kind == "union_tag_invalid":
        return f"unknown claim kind '{ctx.get('tag')}' (valid: {', '.join(CLAIM_KINDS)})", False
    if kind == "union_tag_not_found":
        return f"a claim needs a 'kind' (valid: {', '.join(CLAIM_KINDS)})", False
    if kind == "missing":
        return f"missing required field '{loc[-1]}'", False
    if kind in ("value_error", "assertion_error"):
        msg = str(error.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        return f"{name}: {msg}", False
    if kind == "literal_error":
        return f"{name}: {inp!r} is not allowed (valid: {ctx.get('expected', '')})", False
    if kind == "string_pattern_mismatch":
        return (
            f"{name}: {inp!r} is not a valid name (letters, digits, _ and -; not starting with a digit)",
            False,
        )
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{name}: {error.get('msg', '').lower()} (got {_short(inp)})", False
    return f"{name}: {error.get('msg', kind)}", False


def _short(value: Any) -> str:
    if value is None:
        return "an empty value"
    text = f"{type(value).__name__} {value!r}"
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- loading


def _expand_claims(spec: Hypothesis, loaded: LoadedHypothesis) -> None:
    """``each: true`` → one claim per target, ids ``<id>[<target>]``."""
    claims: list[Any] = []
    sources: dict[str, tuple[int, int | None]] = {}
    for index, claim in enumerate(spec.claims):
        if not claim.each:
            expanded = [(claim, None)]
        else:
            if not claim.targets:
                raise loaded.error("'each: true' needs at least one target", ("claims", index, "each"))
            expanded = [
                (claim.model_copy(update={"id": f"{claim.id}[{t}]", "targets": [t], "each": False}), j)
                for j, t in enumerate(claim.targets)
            ]
        for new, target_index in expanded:
            if new.id in sources:
                raise loaded.error(
                    f"duplicate claim id '{new.id}' after expanding 'each'", ("claims", index, "id")
                )
            sources[new.id] = (index, target_index)
            claims.append(new)
    loaded.claims = claims
    loaded.claim_sources = sources


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
    text = _read_text(path, MAX_FILE_BYTES, "hypothesis file")
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
    try:
        spec = Hypothesis.model_validate(raw)
    except ValidationError as exc:
        first = _most_specific(exc.errors(include_url=False))
        message, at_key = _humanize(first)
        loc = _data_loc(tuple(first["loc"]))
        if first["type"] == "union_tag_invalid":
            loc = (*loc, "kind")  # point at the bad kind, not at the claim
        raise loaded.error(message, loc, at_key=at_key) from None
    loaded.spec = spec
    _expand_claims(spec, loaded)
    return loaded


# ------------------------------------------------------------------------------ rows


def _required_slots(data: DataSpec) -> dict[str, list[str]]:
    """Template id → slots its text, answers and corruptions read from a row."""
    needed: dict[str, list[str]] = {}
    for template in data.templates:
        patterns = [p for p in (template.text, template.desired, template.undesired, template.reference) if p]
        slots: list[str] = []
        for corruption in (template.corrupt, data.corrupt):
            if corruption is not None:
                patterns += list(corruption.set.values())
                patterns += [p for p in (corruption.desired, corruption.undesired) if p]
                slots += corruption.shuffle
        for pattern in patterns:
            slots += slots_of(pattern)
        needed[template.id] = list(dict.fromkeys(slots))
    return needed


def load_rows(
    data_spec: DataSpec, base_dir: str | Path, *, hypothesis: LoadedHypothesis | None = None
) -> list[dict[str, str]]:
    """The data rows: inline ``rows`` or a JSONL ``file`` (relative to ``base_dir``).

    Each row must be an object of strings holding every slot any template reads; errors name
    ``file:line`` of the JSONL file, or the YAML line of an inline row when ``hypothesis`` is given.
    """
    base_dir = Path(base_dir)
    if data_spec.rows is not None:
        rows = [dict(r) for r in data_spec.rows]
        lines = list(range(1, len(rows) + 1))  # without the YAML, name the row by its number
        source = "data.rows"
        if hypothesis is not None:
            for template_id, slots in _required_slots(data_spec).items():
                for index, row in enumerate(rows):
                    missing = [s for s in slots if s not in row]
                    if missing:
                        raise hypothesis.error(
                            f"row lacks slot '{missing[0]}' that template '{template_id}' uses "
                            f"(row has: {', '.join(sorted(row)) or 'nothing'})",
                            ("data", "rows", index),
                        )
    else:
        assert data_spec.file is not None
        path = Path(data_spec.file)
        path = path if path.is_absolute() else base_dir / path
        text = _read_text(path, MAX_ROWS_BYTES, "data file")
        rows, lines, source = [], [], str(path)
        for number, content in enumerate(text.splitlines(), start=1):
            if not content.strip():
                continue
            try:
                row = json.loads(content)
            except json.JSONDecodeError as exc:
                raise CircuitSpecError(
                    f"invalid JSON: {exc.msg}", file=source, line=number, col=exc.colno
                ) from None
            if not isinstance(row, dict):
                raise CircuitSpecError(
                    f"a row must be a JSON object of slot values, got {type(row).__name__}",
                    file=source,
                    line=number,
                    col=1,
                )
            bad = [k for k, v in row.items() if not isinstance(v, str)]
            if bad:
                raise CircuitSpecError(
                    f"slot '{bad[0]}' must be a string, got {type(row[bad[0]]).__name__}",
                    file=source,
                    line=number,
                    col=1,
                )
            rows.append(row)
            lines.append(number)
        if not rows:
            raise CircuitSpecError("data file has no rows", file=source, line=1, col=1)
    for template_id, slots in _required_slots(data_spec).items():
        for row, number in zip(rows, lines, strict=True):
            missing = [s for s in slots if s not in row]
            if missing:
                raise CircuitSpecError(
                    f"row lacks slot '{missing[0]}' that template '{template_id}' uses "
                    f"(row has: {', '.join(sorted(row)) or 'nothing'})",
                    file=source,
                    line=number,
                    col=1,
                )
    return rows
