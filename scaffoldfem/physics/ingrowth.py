"""Tissue ingrowth into scaffold pores: the permissiveness ``g``, the Fisher–KPP step
and the cavitation indicator (docs/model.md, "Tissue ingrowth and cavitation").

The filled fraction ``f`` of the pore space obeys

    ∂f/∂t = ∇·(g D_f ∇f) + g r f (1 − f),   D_f = v ℓ/2,  r = v/(2ℓ)

so the front runs at ``g v`` (``2 sqrt(g D_f · g r)``) and is ``ℓ = sqrt(D_f/r)``
wide for every ``g``: the resolution the mesh needs does not depend on the scaffold.
One step is linear (Patankar-type splitting of the logistic term):

    (fⁿ⁺¹ − fⁿ)/Δt = ∇·(g D_f ∇fⁿ⁺¹) + g r fⁿ (1 − fⁿ⁺¹)

with a lumped (vertex-rule) mass and reaction, so without diffusion each node takes
``fⁿ⁺¹ = fⁿ (1 + g r Δt)/(1 + g r Δt fⁿ)`` ∈ [0, 1] at every Δt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ufl

__all__ = [
    "cavitated",
    "ingrowth_forms",
    "permissiveness",
    "pore_size_factor",
    "porosity_factor",
    "stiffness_factor",
]


def pore_size_factor(d: Any, d_opt: float) -> Any:
    """``2x/(1 + x²)``, ``x = d/d_opt``: 1 at the optimum, ∝ d below (cells and vessels
    cannot get through small pores), ∝ 1/d above (specific surface area for
    attachment falls as 1/d; O'Brien et al. 2005 Biomaterials 26:433)."""
    x = np.asarray(d, dtype=float) / d_opt
    return 2.0 * x / (1.0 + x * x)


def porosity_factor(phi: Any, m: float) -> Any:
    """``φ^m``: the interconnected pore volume open to cells."""
    return np.clip(np.asarray(phi, dtype=float), 0.0, 1.0) ** m


def stiffness_factor(E: Any, E_host: float, tolerance: float) -> Any:
    """``1/(1 + (log10(E/E_host)/s)²)``: 1 when the scaffold matches the host, 1/2 at
    ``s`` decades of mismatch (either way)."""
    dec = np.log10(np.maximum(np.asarray(E, dtype=float), 1e-300) / E_host)
    return 1.0 / (1.0 + (dec / tolerance) ** 2)


def permissiveness(pore_size: float, phi: Any, E: Any, *, d_opt: float, m: float,
                   E_host: float, tolerance: float) -> np.ndarray:
    """``g = g_pore(d) g_φ(φ) g_E(E)`` per cell (dimensionless, 0..1)."""
    return (pore_size_factor(pore_size, d_opt) * porosity_factor(phi, m)
            * stiffness_factor(E, E_host, tolerance))


def ingrowth_forms(f: Any, f_old: Any, g: Any, D: Any, r: Any, dt: Any, dx: Any,
                   dx_lumped: Any) -> tuple[ufl.Form, ufl.Form]:
    """Bilinear and linear form of one semi-implicit Fisher–KPP step (module docstring).

    Args:
        f: Trial/solution space Function (its space gives trial and test functions).
        f_old: fⁿ.
        g: Permissiveness (DG0; 0 outside the scaffold, so nothing grows there).
        D, r: ``D_f``, ``r`` at g = 1 (Constants).
        dt: Step (Constant).
        dx: Cell measure for the diffusion term.
        dx_lumped: Vertex-rule measure (lumped mass and reaction).
    """
    V = f.function_space
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = ((1.0 / dt + g * r * f_old) * u * v * dx_lumped
         + g * D * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx)
    L = (1.0 / dt + g * r) * f_old * v * dx_lumped
    return a, L


def cavitated(w: np.ndarray, fill: np.ndarray, polymer_gone: float,
              filled_threshold: float) -> np.ndarray:
    """Cells whose polymer has gone (``w < polymer_gone``) before tissue filled their
    pores (``fill < filled_threshold``): fluid where the matrix was."""
    return (np.asarray(w) < polymer_gone) & (np.asarray(fill) < filled_threshold)
