"""Base class of every study section: unknown keys refused, defaults validated,
numbers taken only as numbers.

Pydantic's lax mode reads ``true`` as 1 and ``1e9`` or ``"7"`` as an integer;
in a study file those are mistakes (``count = true``), so every section is
stricter: a boolean is refused wherever a number is expected, an integer field
takes only an integer, and NaN or infinity is refused in every float (also
inside lists and tables).
"""

from __future__ import annotations

import numbers
import types
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


def shown(value: Any) -> str:
    """A value as a study file spells it (``true``, ``1e+09``, ``'7'``), for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


@cache
def _number_kind(cls: type[BaseModel], name: str) -> str | None:
    """``"int"`` for an integer field, ``"number"`` for another numeric one that takes no
    boolean, None for the rest (booleans, strings, tables, quantities)."""
    info = cls.model_fields.get(name)
    if info is None:
        return None
    ann = info.annotation
    args = get_args(ann) if get_origin(ann) in (Union, types.UnionType) else (ann,)
    args = tuple(a for a in args if a is not type(None))
    if any(a is bool for a in args):
        return None
    if get_origin(ann) is Literal:
        return "number" if all(isinstance(v, int) for v in get_args(ann)) else None
    if args and all(a is int for a in args):
        return "int"
    return "number" if any(a in (int, float) for a in args) else None


class Section(BaseModel):
    """A study-file table. Unknown keys are errors; defaults go through the validators
    too (so unit strings in defaults are parsed like user input); see the module
    docstring for numbers."""

    model_config = ConfigDict(extra="forbid", validate_default=True, validate_assignment=True,
                              allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        kind = _number_kind(cls, info.field_name) if info.field_name else None
        if kind is None or v is None:
            return v
        if isinstance(v, bool):
            raise PydanticCustomError("number_bool", "expected a number, not a boolean (got {got})",
                                      {"got": shown(v)})
        if kind == "int" and not isinstance(v, numbers.Integral):
            raise PydanticCustomError(
                "number_int", "expected a whole number written as one, e.g. 500 (got {got})",
                {"got": shown(v)})
        return v


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def format_errors(err: ValidationError, prefix: str = "") -> list[str]:
    """Turn a pydantic ValidationError into one line per problem, key first."""
    lines = []
    for e in err.errors(include_url=False):
        # Model validators of a section add no location of their own; drop the
        # synthetic tags pydantic adds for function validators.
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = _loc(loc) or "(study)"
        if prefix:
            key = f"{prefix}.{key}" if key != "(study)" else prefix
        kind = e["type"]
        msg = e["msg"].removeprefix("Value error, ")
        if kind == "cross_field":  # several problems, each with its own key (study_checks)
            lines.extend(f"{prefix}.{line}" if prefix else line for line in e["ctx"]["lines"])
            continue
        if kind == "extra_forbidden":
            msg = f"unknown key (got {e['input']!r})"
        elif kind == "missing":
            msg = "missing required value"
        elif kind.startswith(
            ("quantity", "dose", "window", "table", "dt_", "geometry", "channel", "number",
             "sweep", "carrier", "preset", "enzyme", "driver")
        ):
            pass  # our own messages already read well
        elif "input" in e and not isinstance(e["input"], dict | list):
            msg = f"{msg[0].lower()}{msg[1:]} (got {e['input']!r})"
        lines.append(f"{key}: {msg}")
    return lines
