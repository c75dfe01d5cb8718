"""The CSPG scar and chondroitinase ABC as pure functions (NumPy; time in days).

CSPG level ``s`` (dimensionless, 1 = mature scar), per cell, immobile:

    ds/dt = a − b s,   a = k_dep A(t) χ,   b = k_dep A(t) χ / s_max + Σ_j k_j m_j + k_ch c

Over one step the enzymes ``m_j`` and the active ChABC ``c`` are frozen at the new
level (first order in the enzymes, as for scaffold degradation) and ``A`` is
replaced by its mean over the step; the linear ODE is then solved exactly,
``s1 = s∞ + (s0 − s∞) e^{−b h}`` with ``s∞ = a/b`` (:func:`cspg_step`). Without
enzymes this is the closed form ``s = s_max − (s_max − s0) exp(−(k_dep/s_max) ∫A dt)``
(:func:`deposition_closed_form`) up to the quadrature of ``∫A`` only.

ChABC activity decays at first order ``k = ln 2/t½``: a dose ``S`` (ng/mL/day) over
a step of length ``h`` leaves ``e^{−kh} c0 + S (1 − e^{−kh})/k`` in a well-mixed
volume (:func:`activity_factors`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scaffoldfem.config.cspg import ChABCConfig, CSPGConfig
from scaffoldfem.config.inflammation import InflammationConfig
from scaffoldfem.physics.inflammation import presence
from scaffoldfem.physics.materials import half_life_to_rate

__all__ = [
    "activity_factors",
    "chabc_decay_rate",
    "clearance_rate",
    "cspg_step",
    "deposition_closed_form",
    "driver_mean",
    "gauss_mean",
]

#: Gauss-Legendre points per step for the mean of the driver's presence.
GAUSS_POINTS = 5


def gauss_mean(f: Callable[[NDArray[np.float64]], ArrayLike], t0: float, t1: float,
               n: int = GAUSS_POINTS) -> float:
    """Mean of ``f`` over ``[t0, t1]`` by ``n``-point Gauss-Legendre (exact to degree 2n−1)."""
    if t1 <= t0:
        return float(np.asarray(f(np.array([t0])))[0])
    x, w = np.polynomial.legendre.leggauss(n)
    t = 0.5 * (t0 + t1) + 0.5 * (t1 - t0) * x
    return float(0.5 * np.dot(w, np.asarray(f(t), dtype=float)))


def driver_mean(cfg: CSPGConfig, timeline: InflammationConfig, t0: float, t1: float) -> float:
    """Mean presence of the depositing cells over ``[t0, t1]``."""
    return gauss_mean(lambda t: presence(t, timeline, cfg.driver), t0, t1)


def clearance_rate(cfg: CSPGConfig, chabc: ChABCConfig, enzymes: Mapping[str, ArrayLike],
                   chabc_level: ArrayLike | None = None) -> NDArray[np.float64] | float:
    """First-order clearance ``Σ_j k_j m_j + k_ch c`` (1/day), per cell.

    Args:
        cfg, chabc: The ``[cspg]`` and ``[chabc]`` sections.
        enzymes: Per-cell enzyme concentration (ng/mL) by name; names not in
            ``cfg.clearance`` do not clear, names in it but absent here clear nothing.
        chabc_level: Per-cell active ChABC (ng/mL), or None.
    """
    out: NDArray[np.float64] | float = 0.0
    for name, k in cfg.clearance.items():
        if name in enzymes and k > 0:
            out = out + k * np.maximum(np.asarray(enzymes[name], dtype=float), 0.0)
    if chabc_level is not None and chabc.digestion_rate > 0:
        out = out + chabc.digestion_rate * np.maximum(np.asarray(chabc_level, dtype=float), 0.0)
    return out


def cspg_step(s0: ArrayLike, h: float, drive: ArrayLike, capacity: float,
              deposition_rate: float, clearance: ArrayLike = 0.0) -> NDArray[np.float64]:
    """Exact step of ``ds/dt = k A χ (1 − s/s_max) − λ s`` with ``A χ``, ``λ`` frozen.

    Args:
        s0: Level at the start (per cell).
        h: Step (day), ≥ 0.
        drive: ``Ā χ`` per cell: the driver's mean presence over the step in the
            deposition cells, 0 elsewhere.
        capacity: ``s_max`` > 0.
        deposition_rate: ``k_dep`` (1/day).
        clearance: ``λ = Σ_j k_j m_j + k_ch c`` (1/day), per cell or scalar.

    Returns:
        The level after the step, in ``[0, max(s0, s_max)]``.
    """
    s0 = np.asarray(s0, dtype=float)
    a = deposition_rate * np.asarray(drive, dtype=float) * np.ones_like(s0)
    b = a / capacity + np.asarray(clearance, dtype=float)
    bh = b * h
    decay = np.exp(-bh)
    # (1 − e^{−bh})/b without 0/0 where nothing deposits or clears
    gain = np.where(bh > 1e-12, -np.expm1(-bh) / np.where(b > 0, b, 1.0), h * (1.0 - 0.5 * bh))
    return decay * s0 + a * gain


def deposition_closed_form(t: ArrayLike, cfg: CSPGConfig, timeline: InflammationConfig,
                           s0: float | None = None, points: int = 4001) -> NDArray[np.float64]:
    """Level in a deposition cell without any clearance, at times ``t`` (from 0).

    ``s = s_max − (s_max − s0) exp(−(k_dep/s_max) ∫_0^t A)``, the integral by the
    trapezoidal rule on ``points`` samples over ``[0, max t]`` (interpolated).
    """
    tt = np.atleast_1d(np.asarray(t, dtype=float))
    s0 = cfg.initial if s0 is None else s0
    grid = np.linspace(0.0, max(float(tt.max()), 1e-12), points)
    a = np.asarray(presence(grid, timeline, cfg.driver), dtype=float)
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (a[1:] + a[:-1]) * np.diff(grid))])
    big_i = np.interp(tt, grid, integral)
    smax = cfg.capacity
    return smax - (smax - s0) * np.exp(-cfg.deposition_rate / smax * big_i)


def chabc_decay_rate(chabc: ChABCConfig) -> float:
    """First-order loss of ChABC activity (1/day), ``ln 2/t½``."""
    return half_life_to_rate(chabc.half_life)


def activity_factors(k: float, h: float) -> tuple[float, float]:
    """``(e^{−kh}, (e^{kh} − 1)/(kh))``: the decay of the old level over a step, and
    the factor that makes a source ``S`` held over the step and then decayed by
    ``e^{−kh}`` deliver exactly ``S (1 − e^{−kh})/k`` (its exact integral)."""
    kh = k * h
    if kh < 1e-10:
        return 1.0 - kh, 1.0 + 0.5 * kh
    return math.exp(-kh), math.expm1(kh) / kh
