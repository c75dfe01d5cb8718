"""Sampled sweep dimensions: ``[sample]`` of a sweep file (Latin hypercube, Sobol', Saltelli).

Each ``[sample.ranges]`` entry is a :class:`Range`, ``low``..``high`` as plain
numbers or as strings with a unit (``{ low = "1 kPa", high = "1 MPa", log = true }``);
:meth:`Sample.points` draws reproducible points in the unit cube that
:meth:`Range.values` maps to study values.

``method = "saltelli"`` is the design Sobol' sensitivity indices need
(:mod:`scaffoldfem.sweep.sensitivity`): not a plain Sobol' sequence but Saltelli's
scheme of two scrambled Sobol' matrices A, B and the d matrices with column i of A
taken from B, N rows each (SALib's ``sample.sobol``, first and total order only).
``n`` is still the number of cases, so it must be N·(d + 2) with N a power of 2.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from scaffoldfem.config.base import Section
from scaffoldfem.units import read_quantity

#: ``"<number> <unit>"``: the number and the unit text.
NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")
_RANGE_KEYS = {"low", "high", "log"}


def _is_range_spec(v: Any) -> bool:
    return isinstance(v, dict) and {"low", "high"} <= set(v) and set(v) <= _RANGE_KEYS


def flatten_tables(tree: Any, leaf: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested TOML tables into dotted keys; ``leaf(v)`` says where to stop."""
    if not isinstance(tree, dict):
        return tree  # let pydantic report the type error
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and not leaf(v):
            out.update(flatten_tables(v, leaf, key))
        else:
            out[key] = v
    return out


class Range(Section):
    """One sampled dimension: ``low``..``high`` (numbers, or strings with a unit)."""

    low: int | float | str
    high: int | float | str
    # Sample uniformly in log(value) (moduli, rates spanning decades).
    log: bool = False

    def bounds(self) -> tuple[float, float, str]:
        """(low, high, unit text) with ``high`` converted to the unit of ``low``."""
        if isinstance(self.low, str) or isinstance(self.high, str):
            if not (isinstance(self.low, str) and isinstance(self.high, str)):
                raise ValueError("give both bounds with a unit, or neither")
            m = NUMBER_UNIT.match(self.low)
            if m is None or not m.group(2):
                raise ValueError(f"cannot read {self.low!r} as '<number> <unit>'")
            try:  # the strict reader: no arithmetic reaches pint
                lo_q, hi_q = read_quantity(self.low), read_quantity(self.high)
                hi = float(hi_q.to(lo_q.units).magnitude)
            except Exception as err:  # ValueError, or pint's DimensionalityError
                first = (str(err).splitlines() or [type(err).__name__])[0]
                raise ValueError(f"cannot compare {self.low!r} and {self.high!r} ({first})"
                                 ) from None
            return float(m.group(1)), hi, m.group(2)
        return float(self.low), float(self.high), ""

    @model_validator(mode="after")
    def _check(self) -> Range:
        lo, hi, _ = self.bounds()
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"needs low < high (got {self.low!r}, {self.high!r})")
        if self.log and lo <= 0:
            raise ValueError(f"log range needs low > 0 (got {self.low!r})")
        return self

    def is_integer(self) -> bool:
        """Both bounds are plain integers: sample integers (counts)."""
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high))

    def values(self, u: np.ndarray) -> list[Any]:
        """Map unit-cube coordinates ``u`` to study values (strings keep the unit)."""
        lo, hi, unit = self.bounds()
        if self.log:
            x = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
        else:
            x = lo + u * (hi - lo)
        if self.is_integer():
            return [int(v) for v in np.clip(np.floor(x + 0.5), lo, hi)]
        if unit:
            return [f"{v:.6g} {unit}" for v in x]
        return [float(f"{v:.6g}") for v in x]


class Sample(Section):
    """A space-filling sample of ranges (scipy.stats.qmc)."""

    method: Literal["lhs", "sobol", "saltelli"] = "lhs"
    n: int = Field(gt=0)
    seed: int = 0
    ranges: dict[str, Range] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _flatten_ranges(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("ranges"), dict):
            flat = flatten_tables(data["ranges"], lambda v: _is_range_spec(v))
            data = {**data, "ranges": {k: ({"low": v[0], "high": v[1]} if isinstance(v, list)
                                           and len(v) == 2 else v) for k, v in flat.items()}}
        return data

    @model_validator(mode="after")
    def _sobol_power_of_two(self) -> Sample:
        if self.method == "sobol" and self.n & (self.n - 1):
            raise ValueError(f"sobol needs n a power of 2 to keep its balance properties "
                             f"(got {self.n}); use 2^m or method = 'lhs'")
        if self.method == "saltelli":
            k = len(self.ranges) + 2
            base = self.n // k
            if self.n % k or base < 2 or base & (base - 1):
                good = ", ".join(str(k * 2**m) for m in range(1, 6))
                raise ValueError(f"saltelli with {len(self.ranges)} ranges needs n = N*(d+2) = "
                                 f"{k}*N cases with N >= 2 a power of 2 (got {self.n}; e.g. "
                                 f"{good})")
        return self

    @property
    def base_n(self) -> int:
        """Saltelli's N, the rows of each of its matrices (``n`` for the other methods)."""
        return self.n // (len(self.ranges) + 2) if self.method == "saltelli" else self.n

    def points(self) -> np.ndarray:
        """(n, d) points in the unit cube, reproducible from ``seed``."""
        # scipy.stats takes ~1 s to import: every CLI command (``check`` too) would
        # pay it at start-up, so only a sampled sweep does.
        from scipy.stats import qmc

        d = len(self.ranges)
        rng = np.random.default_rng(self.seed)
        if self.method == "lhs":
            return qmc.LatinHypercube(d=d, rng=rng).random(self.n)
        if self.method == "saltelli":
            return saltelli_points(d, self.base_n, self.seed)
        return qmc.Sobol(d=d, scramble=True, rng=rng).random_base2(int(math.log2(self.n)))


def unit_problem(names: list[str]) -> dict[str, Any]:
    """SALib's problem for ``names`` on the unit cube (:meth:`Range.values` maps it)."""
    return {"num_vars": len(names), "names": list(names), "bounds": [[0.0, 1.0]] * len(names)}


def saltelli_points(d: int, base_n: int, seed: int) -> np.ndarray:
    """Saltelli's design for first- and total-order indices, (base_n·(d + 2), d) in [0, 1]^d.

    The row order (A, the d AB matrices, B per block of d + 2 rows) is the one
    ``SALib.analyze.sobol.analyze(..., calc_second_order=False)`` expects.
    """
    from SALib.sample import sobol as salib_sobol  # imported here: only saltelli sweeps need it

    return salib_sobol.sample(unit_problem([f"x{i}" for i in range(d)]), base_n,
                              calc_second_order=False, scramble=True, seed=seed)
