"""Units: every dimensional study value is a string with its unit, parsed by pint.

Internal units are **mm, day, ng/mL, kPa** (and cells for cell counts). A value
is converted once, at validation, to a plain float in the internal unit of its
dimension; the resolved study writes it back as ``"<value> <internal unit>"``.

A value is exactly ``<number> <unit>``: one plain number (``2``, ``0.5``,
``12.6e-7``) followed by a unit expression (names joined by ``*``, ``/`` or a
space, with small integer or decimal exponents, e.g. ``cm^2/s``, ``1/day``,
``ng/(mL*day)``). Anything else, arithmetic included (``"9**9**9 mm"``,
``"2 mm + 3 mm"``), is refused before pint sees it: pint evaluates expressions,
and an exponent tower never finishes.

Use :func:`Q` to declare a field::

    length: Q("mm", gt=0) = "2 mm"
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Annotated, Any

import pint
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

#: Internal unit of each dimension we accept, as pint strings.
INTERNAL_UNITS = {
    "length": "mm",
    "area": "mm**2",
    "volume": "mm**3",
    "time": "day",
    "rate": "1/day",
    "diffusivity": "mm**2/day",
    "concentration": "ng/mL",
    "concentration_rate": "ng/mL/day",
    "mass": "ng",
    "mass_rate": "ng/day",
    "pressure": "kPa",
    "speed": "mm/day",
    "cell_density": "cell/mm**3",
    "secretion": "ng/cell/day",
    "velocity": "mm/day",
}

#: Longest quantity string accepted (the longest sensible one is ~25 characters).
MAX_QUANTITY_LENGTH = 64

#: ``<number> <rest>``: a plain decimal number (no arithmetic), then the unit text.
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?)(?=[^\d.]|$)"
                     r"\s*(.*?)\s*$", re.DOTALL)
#: Tokens of a unit expression; anything not matched is refused.
_TOKEN = re.compile(r"\s*(?:(?P<name>[^\W\d_][^\W\d]*|%)|(?P<pow>\*\*|\^)\s*"
                    r"(?P<exp>[-+]?\d{1,2}(?:\.\d{1,3})?)|(?P<op>[*/·])|(?P<one>1\s*/)"
                    r"|(?P<open>\()|(?P<close>\)))")
_MAX_DEPTH = 3
_EXAMPLE = "'<number> <unit>' such as '2 mm' or '12.6e-7 cm^2/s'"


@cache
def registry() -> pint.UnitRegistry:
    """Return the shared unit registry (with a ``cell`` count unit).

    The parsed definitions come from pint's own disk cache (parsing them takes
    ~0.35 s of every command's start-up, ~0.04 s from the cache). The cache file is
    not written atomically, so a half-written or unreadable one (two ranks starting
    at once, a read-only home) falls back to parsing.
    """
    try:
        ureg = pint.UnitRegistry(cache_folder=":auto:")
    except Exception:  # any cache failure: parse instead
        ureg = pint.UnitRegistry()
    # Cells are counted; a dimension of their own lets pint refuse "1e5 /mm^3"
    # where a cell density was meant only if the user wrote something odd.
    ureg.define("cell = [cell_count] = cells")
    return ureg


def _describe_dim(ureg: pint.UnitRegistry, unit: str) -> str:
    return str(ureg.Quantity(1, unit).dimensionality)


def _unit_text_ok(text: str) -> bool:
    """Is ``text`` a plain unit expression (see the module docstring)?

    Operands (names, ``(...)``) alternate with operators (``*``, ``/``, or a
    space); ``1/`` may open a denominator; an exponent may follow an operand
    once, so there are no towers, and parentheses nest at most three deep.
    """
    pos, depth = 0, 0
    want_operand, can_raise = True, False
    while text[pos:].strip():
        m = _TOKEN.match(text, pos)
        if m is None:
            return False
        pos = m.end()
        kind = "pow" if m.lastgroup == "exp" else m.lastgroup
        if kind == "name":  # two names in a row are a product ("ng mL^-1")
            want_operand, can_raise = False, True
        elif kind in ("one", "open"):
            if not want_operand:
                return False
            depth += kind == "open"
            if depth > _MAX_DEPTH:
                return False
            want_operand, can_raise = True, False
        elif kind == "pow":
            if not can_raise:
                return False
            can_raise = False
        elif kind == "op":
            if want_operand:
                return False
            want_operand, can_raise = True, False
        else:  # close
            if want_operand or depth == 0:
                return False
            depth -= 1
            can_raise = True
    return depth == 0 and not want_operand


def read_quantity(text: str) -> pint.Quantity:
    """Read ``"<number> <unit>"`` into a pint quantity, refusing anything else.

    Args:
        text: The study string, e.g. ``"12.6e-7 cm^2/s"``.

    Returns:
        The quantity (the unit may be dimensionless only if it was written, e.g. ``%``).

    Raises:
        ValueError: A string that is not one number followed by a unit expression
            (arithmetic, a bare unit, a bare number, an unknown unit); the
            message says what was expected.
    """
    if len(text) > MAX_QUANTITY_LENGTH:
        raise ValueError(f"longer than {MAX_QUANTITY_LENGTH} characters; expected {_EXAMPLE}")
    m = _NUMBER.match(text)
    if m is None:
        raise ValueError(f"needs a number first: expected {_EXAMPLE}")
    number, unit = m.group(1), m.group(2)
    if not unit:
        raise ValueError(f"needs a unit: expected {_EXAMPLE}")
    if not _unit_text_ok(unit):
        raise ValueError(f"{unit!r} is not a plain unit (no arithmetic, one exponent per "
                         f"unit); expected {_EXAMPLE}")
    ureg = registry()
    try:
        units = ureg.parse_units(unit)
    except Exception as err:  # pint raises several unrelated exception types
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise ValueError(f"unknown unit {unit!r} ({first})") from None
    return ureg.Quantity(float(number), units)


def parse_quantity(value: Any, unit: str) -> float:
    """Parse ``value`` (a string such as ``"6 h"``) and return it in ``unit``.

    Cached for strings: sweeps validate thousands of studies with the same values.
    See :func:`_parse_quantity` for the rules and errors.
    """
    if isinstance(value, str):
        return _parse_cached(value, unit)
    return _parse_quantity(value, unit)


@cache
def _parse_cached(value: str, unit: str) -> float:
    return _parse_quantity(value, unit)


def _parse_quantity(value: Any, unit: str) -> float:
    """Parse ``value`` (a string such as ``"6 h"``) and return it in ``unit``.

    Args:
        value: The study value; must be a string with a number and a unit.
        unit: Internal unit to convert to (pint syntax), e.g. ``"mm**2/day"``.

    Returns:
        The magnitude in ``unit``.

    Raises:
        PydanticCustomError: For a bare number, an unparsable string or a unit
            of the wrong dimension; the message names the value and the
            expected dimension (pydantic adds the key).
    """
    ureg = registry()
    want = _describe_dim(ureg, unit)
    if isinstance(value, bool) or isinstance(value, int | float):
        raise PydanticCustomError(
            "quantity_no_unit",
            "needs a unit: expected a quantity of dimension {dim} such as '{ex}', "
            "got bare number {got}",
            {"dim": want, "ex": f"1 {unit.replace('**', '^')}", "got": value},
        )
    if not isinstance(value, str):
        raise PydanticCustomError(
            "quantity_type", "expected a string with a unit (got {got})", {"got": repr(value)}
        )
    try:
        q = read_quantity(value)
    except ValueError as err:
        raise PydanticCustomError(
            "quantity_parse", "cannot read {got} as a quantity: {err}",
            {"got": repr(value), "err": str(err)},
        ) from None
    if q.dimensionless and want != "dimensionless":
        raise PydanticCustomError(
            "quantity_no_unit",
            "needs a unit: expected a quantity of dimension {dim} (got {got})",
            {"dim": want, "got": repr(value)},
        )
    try:
        mag = float(q.to(unit).magnitude)
    except pint.DimensionalityError:
        raise PydanticCustomError(
            "quantity_dimension",
            "wrong dimension: expected {dim}, got {got} which is {have}",
            {"dim": want, "got": repr(value), "have": str(q.dimensionality)},
        ) from None
    if not math.isfinite(mag):
        raise PydanticCustomError("quantity_finite", "must be finite (got {got})",
                                  {"got": repr(value)})
    return mag
def format_quantity(value: float, unit: str) -> str:
    """Format an internal value back to a study string, e.g. ``"2.0 mm"``."""
    return f"{value!r} {unit.replace('**', '^')}"


def Q(
    unit: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> Any:
    """Annotated float type for a dimensional study value stored in ``unit``.

    Args:
        unit: Internal unit (pint syntax).
        gt, ge, lt, le: Optional bounds, checked in the internal unit; the error
            message shows the bound and the value with units.

    Returns:
        An ``Annotated[float, ...]`` usable as a pydantic field type.
    """
    shown = unit.replace("**", "^")

    def _validate(v: Any) -> float:
        mag = parse_quantity(v, unit)
        for op, bound, ok in (
            (">", gt, lambda a, b: a > b),
            (">=", ge, lambda a, b: a >= b),
            ("<", lt, lambda a, b: a < b),
            ("<=", le, lambda a, b: a <= b),
        ):
            if bound is not None and not ok(mag, bound):
                raise PydanticCustomError(
                    "quantity_range",
                    "must be {op} {bound} (got {got})",
                    {
                        "op": op,
                        "bound": f"{bound:g}" + ("" if bound == 0 else f" {shown}"),
                        "got": v,
                    },
                )
        return mag

    return Annotated[
        float,
        BeforeValidator(_validate),
        PlainSerializer(lambda v: format_quantity(v, unit), return_type=str),
        WithJsonSchema({"type": "string", "description": f"quantity in units of {shown}"}),
    ]
