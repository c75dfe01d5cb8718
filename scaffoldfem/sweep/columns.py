"""Parameter values of a sweep case, in internal units, and their results-table columns."""

from __future__ import annotations

import re
from typing import Any

from scaffoldfem.config.study import Study
from scaffoldfem.sweep.sampling import NUMBER_UNIT

__all__ = ["case_label", "compact_value", "parameter_column", "parameter_value", "unit_slug"]


def _lookup(tree: Any, key: str) -> Any:
    """Value at a dotted key in a model or plain data (list levels by ``name`` or
    index); KeyError if absent."""
    node = tree
    for part in key.split("."):
        if isinstance(node, list):
            if part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            node = next((x for x in node if _name_of(x) == part), _MISSING)
        elif isinstance(node, dict):
            node = node.get(part, _MISSING)
        else:
            node = getattr(node, part, _MISSING)
        if node is _MISSING:
            raise KeyError(key)
    return node


_MISSING = object()


def _name_of(x: Any) -> Any:
    return x.get("name") if isinstance(x, dict) else getattr(x, "name", None)


def unit_slug(unit: str) -> str:
    """Column suffix for a unit: ``"mm^2/day"`` → ``"mm2_per_day"``, ``"1/day"`` → ``"per_day"``."""
    s = unit.replace("**", "").replace("^", "").replace(" ", "")
    s = re.sub(r"^1/", "per_", s).replace("/", "_per_")
    return re.sub(r"[^A-Za-z0-9_]", "", s)


def parameter_value(study: Study, key: str) -> tuple[Any, str]:
    """Value of a varied key in the validated study, in internal units, and its unit.

    Returns:
        (value, unit): a float for quantities (unit e.g. ``"kPa"``), else the plain
        value and ``""``.
    """
    try:
        plain = _lookup(study, key)  # attributes: floats in internal units
        shown = _lookup(study.to_dict(), key)  # serialised: "10.0 kPa"
    except KeyError:
        return None, ""
    if isinstance(plain, float) and isinstance(shown, str):
        m = NUMBER_UNIT.match(shown)
        return plain, (m.group(2) if m else "")
    if isinstance(plain, bool | int | float | str):
        return plain, ""
    return str(shown), ""


def parameter_column(key: str, unit: str) -> str:
    """Results-table column of a parameter: ``scaffold.solid_modulus_kPa``."""
    return f"{key}_{unit_slug(unit)}" if unit else key


def compact_value(value: Any) -> str:
    """A short label of a varied value as written in the sweep: a carrier list
    ``[{preset = "alginate_gel", loading = "20000 ng/mL"}]`` → ``alginate_gel 20000
    ng/mL``, an empty list → ``none``, a quantity as it is."""
    if isinstance(value, list):
        return " + ".join(compact_value(v) for v in value) or "none"
    if isinstance(value, dict):
        head = value.get("preset") or value.get("name") or value.get("law") or ""
        extra = [str(value[k]) for k in ("loading", "first_order_rate", "amount") if k in value]
        return " ".join([str(head), *extra]).strip()
    return str(value)


def case_label(case_id: str, values: dict[str, Any], named: set[str]) -> str:
    """A case's short label: the name of a ``[[cases]]`` entry with an ``id`` (in
    ``named``), else its varied values as written (``carriers alginate_gel 20000
    ng/mL``), else its id."""
    label = re.sub(r"^c\d+-", "", case_id)
    if label in named or not values:
        return label if label in named else case_id
    return "; ".join(f"{k.split('.')[-1]} {compact_value(v)}" for k, v in values.items())
