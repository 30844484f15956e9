"""Pydantic validation errors → one readable sentence and the YAML location it points at.

Used by :mod:`circuitspec.spec.loader`; separate because it walks the schema's types, not the YAML.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from .schema import CLAIM_KINDS, Hypothesis

__all__ = ["Loc", "data_loc", "humanize", "most_specific"]

Loc = tuple[int | str, ...]


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


def data_loc(loc: Loc) -> Loc:
    """``loc`` without the parts that name union members (so it points into the YAML)."""
    return tuple(p for p in loc if not _is_branch(p))


def most_specific(errors: list[Any]) -> Any:
    """The first error, or for a union the member error that reaches deepest into the data."""
    first = errors[0]
    loc = tuple(first["loc"])
    branch = next((i for i, p in enumerate(loc) if _is_branch(p)), None)
    if branch is None:
        return first
    prefix = loc[:branch]
    same_place = [e for e in errors if tuple(e["loc"])[:branch] == prefix]
    return max(same_place, key=lambda e: len(data_loc(tuple(e["loc"]))))


def _field_name(loc: Loc) -> str:
    names = [p for p in loc if isinstance(p, str) and p not in CLAIM_KINDS and not _is_branch(p)]
    return names[-1] if names else "hypothesis"


def humanize(error: dict[str, Any]) -> tuple[str, bool]:
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
