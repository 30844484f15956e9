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

from .names import bool_given_for_number
from .schema import CLAIM_KINDS, Hypothesis

__all__ = ["Loc", "boolean_number_loc", "data_loc", "humanize", "most_specific"]

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


def _kind_of(model: type[BaseModel]) -> tuple[Any, ...]:
    return typing.get_args(model.model_fields["kind"].annotation)


def _models_for(annotation: Any, value: Any) -> list[type[BaseModel]]:
    """The model classes a raw ``value`` would be validated as (a claim's by its ``kind``)."""
    models = [t for t in _unwrap(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
    if len(models) > 1 and isinstance(value, dict):
        tag = (value.get("kind"),)
        models = [m for m in models if "kind" in m.model_fields and _kind_of(m) == tag]
    return models[:1]


def boolean_number_loc(raw: Any, model: type[BaseModel] = Hypothesis, loc: Loc = ()) -> Loc | None:
    """Where the raw YAML gives a boolean for a number (``n: true``), which pydantic would read as 1."""
    if not isinstance(raw, dict):
        return None
    for key, value in raw.items():
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            continue
        if bool_given_for_number(value, field.annotation):
            return (*loc, key)
        for typ in _unwrap(field.annotation):
            found = _boolean_number_inside(value, typ, (*loc, key))
            if found:
                return found
    return None


def _boolean_number_inside(value: Any, typ: Any, loc: Loc) -> Loc | None:
    """:func:`boolean_number_loc` of the models inside a list, a dict or a model field."""
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (list, Sequence) and isinstance(value, list) and args:
        children = [((*loc, i), item, args[0]) for i, item in enumerate(value)]
    elif origin is dict and isinstance(value, dict) and len(args) == 2:
        children = [((*loc, k), item, args[1]) for k, item in value.items()]
    else:
        children = [(loc, value, typ)]
    for where, item, inner in children:
        for model in _models_for(inner, item):
            found = boolean_number_loc(item, model, where)
            if found:
                return found
    return None


_TYPE_NAMES = {"str", "int", "float", "bool", "list", "dict", "none"}


def _is_branch(part: int | str) -> bool:
    """A pydantic loc part naming a union member (``str``, ``list[str]``, ...), not a data key."""
    return isinstance(part, str) and (part in _TYPE_NAMES or "[" in part or part.startswith("function-"))


def data_loc(loc: Loc) -> Loc:
    """``loc`` without the parts that name union members (so it points into the YAML)."""
    return tuple(p for p in loc if not _is_branch(p))


def most_specific(errors: list[Any]) -> Any:
    """The first error, or for a union the member error that reaches deepest into the data.

    An unknown key beside a missing one (``expct`` where ``expect`` is required) is the typo to
    report, so an ``extra_forbidden`` error in the same mapping comes before a ``missing`` one.
    """
    first = errors[0]
    if first["type"] == "missing":
        parent = data_loc(tuple(first["loc"]))[:-1]
        typo = [
            e for e in errors if e["type"] == "extra_forbidden" and data_loc(tuple(e["loc"]))[:-1] == parent
        ]
        if typo:
            return typo[0]
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
