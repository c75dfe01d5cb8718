"""Units: every dimensional study value is a string with its unit, parsed by pint.

Internal units are **mm, day, ng/mL, kPa** (and cells for cell counts). A value
is converted once, at validation, to a plain float in the internal unit of its
dimension; the resolved study writes it back as ``"<value> <internal unit>"``.

Use :func:`Q` to declare a field::

    length: Q("mm", gt=0) = "2 mm"
"""

from __future__ import annotations

import math
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


@cache
def registry() -> pint.UnitRegistry:
    """Return the shared unit registry (with a ``cell`` count unit)."""
    ureg = pint.UnitRegistry()
    # Cells are counted; a dimension of their own lets pint refuse "1e5 /mm^3"
    # where a cell density was meant only if the user wrote something odd.
    ureg.define("cell = [cell_count] = cells")
    return ureg


def _describe_dim(ureg: pint.UnitRegistry, unit: str) -> str:
    return str(ureg.Quantity(1, unit).dimensionality)


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
            "quantity_type", "expected a string with a unit, got {got!r}", {"got": value}
        )
    try:
        q = ureg.Quantity(value.strip())
    except Exception as err:  # pint raises several unrelated exception types
        raise PydanticCustomError(
            "quantity_parse",
            "cannot read {got!r} as a quantity ({err})",
            {"got": value, "err": str(err).splitlines()[0]},
        ) from None
    if not isinstance(q, pint.Quantity) or (q.dimensionless and want != "dimensionless"):
        raise PydanticCustomError(
            "quantity_no_unit",
            "needs a unit: expected a quantity of dimension {dim}, got {got!r}",
            {"dim": want, "got": value},
        )
    try:
        mag = float(q.to(unit).magnitude)
    except pint.DimensionalityError:
        raise PydanticCustomError(
            "quantity_dimension",
            "wrong dimension: expected {dim}, got {got!r} which is {have}",
            {"dim": want, "got": value, "have": str(q.dimensionality)},
        ) from None
    if not math.isfinite(mag):
        raise PydanticCustomError("quantity_finite", "must be finite (got {got!r})", {"got": value})
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
