"""Names and numbers a user types that become paths or counts: checkpoint names, ASCII digits,
YAML booleans that are not numbers.

A checkpoint name becomes a folder (``reports/<name>/checkpoint-<X>/``), so only ASCII training
steps and ASCII identifiers are accepted: never ``..``, a slash, a space or a look-alike digit.
"""

from __future__ import annotations

import math
import re
import types
import typing
from typing import Any

__all__ = [
    "CHECKPOINT_HELP",
    "bool_given_for_number",
    "checkpoint_name",
    "finite_numbers",
    "non_negative_seed",
]

_STEP = re.compile(r"[0-9]{1,12}", re.ASCII)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}(?::[0-9]{1,12})?", re.ASCII)
CHECKPOINT_HELP = (
    "a training step in ASCII digits or a name of ASCII letters, digits, '_', '.', '-' "
    "(e.g. 100, final, step_00100, index:3)"
)


def checkpoint_name(value: Any) -> int | str:
    """A checkpoint as given (YAML, CLI) → a training step (int) or a name; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"checkpoint {value!r} is not {CHECKPOINT_HELP}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"checkpoint {value} is negative; it must be {CHECKPOINT_HELP}")
        return value
    text = value.strip()
    if _STEP.fullmatch(text):
        return int(text)
    if _NAME.fullmatch(text):
        return text
    raise ValueError(f"checkpoint {value!r} is not {CHECKPOINT_HELP}")


def non_negative_seed(value: int) -> int:
    """A seed (numpy's generators take none below 0); a pydantic field validator."""
    if value < 0:
        raise ValueError(f"{value} is negative; seeds are whole numbers from 0")
    return value


def finite_numbers(values: list[float], what: str) -> list[float]:
    """``values`` if none is NaN or infinite (YAML ``.nan`` / ``.inf``), else a ValueError."""
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{what} {bad[0]} is not a finite number")
    return values


def _admits(annotation: Any, wanted: tuple[Any, ...]) -> bool:
    """Whether ``annotation`` is one of ``wanted``, or an ``Annotated`` / union holding one."""
    if annotation in wanted:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _admits(typing.get_args(annotation)[0], wanted)
    if origin in (typing.Union, types.UnionType):
        return any(_admits(a, wanted) for a in typing.get_args(annotation))
    return False


def bool_given_for_number(value: Any, annotation: Any) -> bool:
    """Whether ``value`` holds a YAML boolean (``true``) where ``annotation`` wants a number.

    pydantic's lax mode reads ``n: true`` as 1; a boolean is never meant as a count. Looks one
    level into lists and dicts (``alphas: [0, true]``).
    """
    if isinstance(value, bool):
        return _admits(annotation, (int, float)) and not _admits(annotation, (bool, Any))
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(
            bool_given_for_number(value, a) for a in typing.get_args(annotation) if a is not type(None)
        )
    args = typing.get_args(annotation)
    if isinstance(value, list) and origin is list and args:
        return any(bool_given_for_number(item, args[0]) for item in value)
    if isinstance(value, dict) and origin is dict and len(args) == 2:
        return any(bool_given_for_number(item, args[1]) for item in value.values())
    return False
