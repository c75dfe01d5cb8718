"""Pointwise ODEs of the scaffold: degradation, reservoir release, cell survival.

These fields do not diffuse, so each dof is integrated on its own in NumPy
with the *exact* solution over a step in which the enzyme ``m`` and the
volumetric strain ``ε_vol`` are frozen (operator splitting, docs/model.md).
No time-step error is made inside the step, so the result matches the closed
forms to round-off, and the released amount is exactly what the reservoir
lost (mass balance).

Degradation (polymer mass fraction ``w``)::

    dw/dt = −[k_h (1 + a (1 − w)) + (k_e/K_e) m] g w,  g = 1 + β max(ε_vol, 0)
          = −p w + q w²,   p = g (k_h (1 + a) + (k_e/K_e) m),  q = g k_h a

Cleavage is first order in the enzyme (``m`` the sum of the enzymes that cut the
matrix): at nM enzyme each bond is cut at ``(k_cat/K_M)[E]``, Michaelis–Menten
saturating in the *substrate*, not the enzyme (Lutolf et al. 2003 PNAS 100:5413);
``k_e/K_e`` is that specificity, the low-enzyme slope of the old saturating law.

a Bernoulli (logistic-type) equation with solution
``w(t) = w0 e^{−pt} / (1 − (q/p) w0 (1 − e^{−pt}))``; for ``a = 0`` it is the
first-order ``w0 e^{−pt}``.

Reservoir (bound factor ``b``, ng per mL of scaffold)::

    db/dt = −[k0 + (k_mmp/K_m) m] b − ρ_rel (−dw/dt) b / w

Since ``−(dw/dt)/w = d(−ln w)/dt``, the exact update is
``b1 = b0 e^{−(k0 + (k_mmp/K_m) m) Δt} (w1/w0)^{ρ_rel}`` (first order in the
enzyme, as above).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "cell_survival_step",
    "deformed_porosity",
    "degradation_rates",
    "degrade_step",
    "porosity",
    "release_step",
    "strain_factor",
]


def strain_factor(eps_vol: Any, beta: float) -> np.ndarray:
    """Strain acceleration ``g = 1 + β max(ε_vol, 0)`` (tension speeds degradation)."""
    return 1.0 + beta * np.maximum(np.asarray(eps_vol, dtype=float), 0.0)


def degradation_rates(*, k_h: float, a_auto: float = 0.0, k_e: float = 0.0,
                      K_e: float = 1.0, m: Any = 0.0, beta: float = 0.0,
                      eps_vol: Any = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``(p, q)`` of ``dw/dt = −p w + q w²`` (1/day), per dof."""
    m = np.maximum(np.asarray(m, dtype=float), 0.0)  # small negative FE undershoot -> 0
    g = strain_factor(eps_vol, beta)
    enz = (k_e / K_e) * m if k_e else np.zeros_like(m)
    p = g * (k_h * (1.0 + a_auto) + enz)
    q = g * (k_h * a_auto) * np.ones_like(p)
    return p, q


def _expm1_ratio(p: np.ndarray, dt: float) -> np.ndarray:
    """``(1 − e^{−p Δt})/p`` without cancellation, → Δt as p → 0."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, dt)
    nz = p * dt > 1e-300
    out[nz] = -np.expm1(-p[nz] * dt) / p[nz]
    return out


def degrade_step(w: Any, dt: float, **rates: Any) -> np.ndarray:
    """Exact update of the polymer mass fraction over ``dt`` with m, ε frozen.

    Args:
        w: Mass fraction per dof (0..1).
        dt: Step (day); also the closed form at ``t = dt`` from ``w``.
        **rates: ``k_h, a_auto, k_e, K_e, m, beta, eps_vol`` (see
            :func:`degradation_rates`; m and eps_vol may be per-dof arrays).

    Returns:
        New mass fraction (same shape).
    """
    w = np.asarray(w, dtype=float)
    p, q = degradation_rates(**rates)
    p = np.broadcast_to(p, w.shape)
    q = np.broadcast_to(q, w.shape)
    ratio = _expm1_ratio(p, dt)
    # Denominator >= 1 − (q/p) w ≥ 1/(1+a) > 0 for 0 ≤ w ≤ 1.
    return w * np.exp(-p * dt) / (1.0 - q * w * ratio)


def porosity(w: Any, phi0: Any) -> Any:
    """Porosity ``φ = 1 − (1 − φ0) w`` (works on floats, arrays and UFL)."""
    return 1.0 - (1.0 - phi0) * w


def deformed_porosity(phi: Any, J: Any) -> Any:
    """Current porosity under volume change J (solid volume conserved): ``1 − (1−φ)/J``."""
    return 1.0 - (1.0 - phi) / J


def release_step(b: Any, w_old: Any, w_new: Any, dt: float, *, k0: float = 0.0,
                 k_mmp: float = 0.0, K_m: float = 1.0, m: Any = 0.0,
                 rho_rel: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Exact reservoir update and the amount released over the step.

    Args:
        b: Bound factor per dof (ng per mL of scaffold).
        w_old, w_new: Polymer mass fraction at the start and end of the step
            (from :func:`degrade_step` with the same frozen m, ε).
        dt: Step (day).
        k0: Basal first-order release rate (1/day).
        k_mmp, K_m: Enzyme-triggered rate constants: the rate is ``(k_mmp/K_m) m``
            (first order in the enzyme).
        m: MMP concentration per dof (ng/mL), frozen over the step.
        rho_rel: Coupling to matrix mass loss (-); 1 releases the factor in
            proportion to the polymer lost.

    Returns:
        ``(b_new, released)`` with ``released = b − b_new`` (ng/mL), so a
        transport source ``R = released/Δt`` conserves mass exactly.
    """
    b = np.asarray(b, dtype=float)
    m = np.maximum(np.asarray(m, dtype=float), 0.0)
    rate = k0 + ((k_mmp / K_m) * m if k_mmp else 0.0)
    factor = np.exp(-np.broadcast_to(rate, b.shape) * dt)
    if rho_rel:
        w_old = np.broadcast_to(np.asarray(w_old, dtype=float), b.shape)
        w_new = np.broadcast_to(np.asarray(w_new, dtype=float), b.shape)
        frac = np.zeros_like(b)
        ok = w_old > 0
        frac[ok] = (np.maximum(w_new[ok], 0.0) / w_old[ok]) ** rho_rel
        factor = factor * frac  # where no polymer is left, nothing stays bound
    b_new = b * factor
    return b_new, b - b_new


def cell_survival_step(rho: Any, dt: float, k_death: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact survival ``dρ/dt = −k_death ρ`` over a step.

    Returns:
        ``(rho_new, rho_mean)`` where ``rho_mean`` is the time average over
        the step, so ``σ·rho_mean·Δt`` is exactly what the cells secreted.
    """
    rho = np.asarray(rho, dtype=float)
    rho_new = rho * np.exp(-k_death * dt)
    mean = rho * _expm1_ratio(np.full_like(rho, k_death), dt) / dt
    return rho_new, mean
