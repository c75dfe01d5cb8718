"""KCC2 down-regulation index driven by TrkB occupancy (a relative pain-risk index).

BDNF-TrkB signalling in lamina I neurons down-regulates the K-Cl cotransporter KCC2,
shifting the anion reversal potential so that GABA/glycine inhibition fails and
allodynia follows (Coull et al. 2005 Nature 438:1017; Rivera et al. 2002 J Cell
Biol 159:747). The index ``K`` in [0, 1] (0 intact, 1 fully down-regulated) obeys

    dK/dt = k_down · g(occ) · (1 − K) − k_rec · K,   g(occ) = occ^n / (occ^n + occ_half^n),

a saturating, Hill-type drive by the TrkB occupancy ``occ`` and first-order
recovery. The constants are uncalibrated assumptions (config/dorsal_horn.py): K is
a relative score to compare designs, not a predicted KCC2 level.

For a constant drive the law is linear in K with the exact solution
``K(t) = K∞ + (K0 − K∞) e^{−λ t}``, ``λ = k_down g + k_rec``, ``K∞ = k_down g / λ``;
:func:`kcc2_step` applies it over a step with ``g`` the trapezoid mean of its end
drives (exact for constant occupancy, second order otherwise).
"""

from __future__ import annotations

import math

__all__ = ["kcc2_closed_form", "kcc2_drive", "kcc2_step"]


def kcc2_drive(occ: float, occ_half: float, hill: float) -> float:
    """Hill drive ``g = occ^n / (occ^n + occ_half^n)`` in [0, 1) (occ clipped to [0, 1])."""
    o = min(max(occ, 0.0), 1.0) ** hill
    return o / (o + occ_half**hill)


def kcc2_step(K: float, occ0: float, occ1: float, h: float, *, rate_down: float,
              rate_recovery: float, occupancy_half: float, hill: float) -> float:
    """Advance ``K`` over a step of length ``h`` (day) whose occupancy goes from
    ``occ0`` to ``occ1`` (exact for a constant drive; see the module docstring)."""
    g = 0.5 * (kcc2_drive(occ0, occupancy_half, hill) + kcc2_drive(occ1, occupancy_half, hill))
    a = rate_down * g
    lam = a + rate_recovery
    if lam <= 0.0 or h <= 0.0:
        return K
    k_inf = a / lam
    return k_inf + (K - k_inf) * math.exp(-lam * h)


def kcc2_closed_form(t: float, occ: float, *, rate_down: float, rate_recovery: float,
                     occupancy_half: float, hill: float, K0: float = 0.0) -> float:
    """``K(t)`` for a constant occupancy ``occ`` from ``K(0) = K0`` (the reference of
    the tests)."""
    a = rate_down * kcc2_drive(occ, occupancy_half, hill)
    lam = a + rate_recovery
    if lam <= 0.0:
        return K0
    k_inf = a / lam
    return k_inf + (K0 - k_inf) * math.exp(-lam * t)
