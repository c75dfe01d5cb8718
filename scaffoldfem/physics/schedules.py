"""Time courses of sources as pure functions of time (day): the MMP production
profile and the dose schedule (docs/model.md §10).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["dose_amount", "gamma_profile", "table_profile", "window_amount"]


def gamma_profile(t: float, peak: float, shape: float) -> float:
    """Gamma-shaped time course normalised to 1 at ``peak`` (MMP-9 after injury).

    ``g(t) = (t/t_p)^(s−1) exp(−(s−1)(t/t_p − 1))``, 0 for ``t ≤ 0``.
    """
    if t <= 0.0:
        return 0.0
    x = t / peak
    return float(x ** (shape - 1.0) * math.exp(-(shape - 1.0) * (x - 1.0)))


def table_profile(t: float, table: Sequence[tuple[float, float]]) -> float:
    """Linear interpolation in a ``(day, rate)`` table: 0 before it, its last rate after."""
    days, rates = zip(*table, strict=True)
    return float(np.interp(t, days, rates, left=0.0, right=rates[-1]))


def window_amount(t0: float, t1: float, start: float, end: float) -> float:
    """Length of the overlap of ``[t0, t1]`` with ``[start, end]``."""
    return max(0.0, min(t1, end) - max(t0, start))


def dose_amount(
    kind: str, t0: float, t1: float, *, start: float, end: float, amount: float, rate: float
) -> float:
    """Amount (ng) a dose delivers over the step ``[t0, t1]``.

    A bolus delivers ``amount`` in the step containing ``start`` (a bolus at 0 in the
    first step); an infusion ``rate × |[t0, t1] ∩ [start, end]|``.
    """
    if kind == "bolus":
        return amount if (t0 < start <= t1 or (start == 0.0 and t0 == 0.0)) else 0.0
    return rate * window_amount(t0, t1, start, end)
