"""Survival and secretion of transplanted cell cohorts, pointwise (NumPy).

A cohort placed at ``t_T`` with density ρ0 dies at

    k(t, x) = k0 (1 + β I(t, x)) / (1 + γ occ(x)),     dρ/dt = −k ρ   (t ≥ t_T)

with I the inflammation index (prescribed presence of the injury timeline) and occ a
trophic receptor occupancy. Over a step ``[t0, t1]`` the rate is frozen at its step
mean (I averaged over the part of the step after ``t_T``, occ from ``t0``), and the
update is exact: ``ρ1 = ρ(a) e^{−k (t1 − a)}``, ``a = max(t0, t_T)``, and the step
mean ``ρ̄ = (1/Δt) ∫_{t0}^{t1} ρ dt`` so that ``σ ρ̄ Δt`` is exactly what the cells
secreted. Before ``t_T`` the cohort is absent (ρ = 0) and secretes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["death_rate", "graft_step", "occupancy", "simpson_mean", "survival_fraction"]


def occupancy(c: Any, half_saturation: float) -> np.ndarray:
    """Receptor occupancy ``c/(c + K)`` of a trophic factor (negative c → 0)."""
    c = np.maximum(np.asarray(c, dtype=float), 0.0)
    return c / (c + half_saturation)


def death_rate(k0: float, beta: float, inflammation: Any, gamma: float = 0.0,
               occ: Any = 0.0) -> np.ndarray:
    """``k = k0 (1 + β I) / (1 + γ occ)`` (1/day), per cell."""
    inflammation = np.asarray(inflammation, dtype=float)
    return k0 * (1.0 + beta * inflammation) / (1.0 + gamma * np.asarray(occ, dtype=float))


def simpson_mean(f: Callable[[float], float], a: float, b: float) -> float:
    """Simpson mean of ``f`` over ``[a, b]`` (exact for cubics; ``f(a)`` if ``b ≤ a``)."""
    if b <= a:
        return float(f(a))
    return float((f(a) + 4.0 * f(0.5 * (a + b)) + f(b)) / 6.0)


def _integral_factor(k: np.ndarray, tau: float) -> np.ndarray:
    """``∫_0^τ e^{−k s} ds = (1 − e^{−kτ})/k`` without cancellation (→ τ as k → 0)."""
    out = np.full_like(k, tau)
    nz = k * tau > 1e-300
    out[nz] = -np.expm1(-k[nz] * tau) / k[nz]
    return out


def graft_step(rho: Any, rho0: Any, t0: float, t1: float, t_transplant: float,
               k: Any) -> tuple[np.ndarray, np.ndarray]:
    """Exact survival of one cohort over ``[t0, t1]`` with the death rate ``k`` frozen.

    Args:
        rho: Density at ``t0`` per cell (cells/mm³); ignored (0) before transplant.
        rho0: Density placed at ``t_transplant`` per cell.
        t0, t1: The step (day).
        t_transplant: Transplant time; the cohort is placed in the step with
            ``t0 < t_T ≤ t1`` (at construction when ``t_T = 0``).
        k: Death rate per cell over the step (1/day).

    Returns:
        ``(rho_new, rho_mean)``: density at ``t1`` and mean over the whole step.
    """
    k = np.broadcast_to(np.asarray(k, dtype=float), np.shape(rho0)).copy()
    dt = t1 - t0
    if t1 < t_transplant:  # not yet placed
        return np.zeros_like(k), np.zeros_like(k)
    if t0 < t_transplant:  # placed inside this step: only [t_T, t1] counts
        start, tau = np.asarray(rho0, dtype=float), t1 - t_transplant
    else:
        start, tau = np.asarray(rho, dtype=float), dt
    new = start * np.exp(-k * tau)
    mean = start * _integral_factor(k, tau) / dt if dt > 0.0 else start.copy()
    return new, mean


def survival_fraction(k0: float, beta: float, inflammation_integral: float, tau: float,
                      gamma: float = 0.0, occ: float = 0.0) -> float:
    """Closed form ``ρ/ρ0 = exp(−k0 (τ + β ∫I dt)/(1 + γ occ))`` after ``τ`` days with
    occupancy constant, ``∫I dt`` over those days."""
    return float(np.exp(-k0 * (tau + beta * inflammation_integral) / (1.0 + gamma * occ)))
