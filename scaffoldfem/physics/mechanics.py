"""Quasi-static small-strain linear elasticity as pure UFL (kPa, mm).

``−∇·σ(u) = f`` in Ω, ``σ = 2μ ε(u) + λ tr ε(u) I`` with per-region E(x), ν(x)
(DG0 functions or UFL expressions of porosity through Gibson–Ashby), traction
and pressure loads on named facets, Dirichlet ends set by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import ufl
from dolfinx import fem

from scaffoldfem.regions import facet_tag

__all__ = [
    "PHI_DEFORMED_FLOOR",
    "deformed_porosity",
    "elasticity_forms",
    "epsilon",
    "lame",
    "normal_strain_jump",
    "sigma",
    "strain_jump",
    "volumetric_strain",
    "von_mises",
]


def lame(E: Any, nu: Any) -> tuple[Any, Any]:
    """Lamé parameters ``(μ, λ)`` from Young's modulus and Poisson ratio."""
    mu = E / (2.0 * (1.0 + nu))
    lmbda = E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))
    return mu, lmbda


def epsilon(u: Any) -> Any:
    """Small-strain tensor ``sym(∇u)``."""
    return ufl.sym(ufl.grad(u))


def volumetric_strain(u: Any) -> Any:
    """``ε_vol = tr ε = ∇·u`` (J − 1 to first order)."""
    return ufl.tr(epsilon(u))


def sigma(u: Any, E: Any, nu: Any) -> Any:
    """Cauchy stress of isotropic linear elasticity (kPa)."""
    mu, lmbda = lame(E, nu)
    eps = epsilon(u)
    return 2.0 * mu * eps + lmbda * ufl.tr(eps) * ufl.Identity(len(u))


def von_mises(s: Any) -> Any:
    """Von Mises equivalent stress ``sqrt(3/2 s':s')`` of a stress tensor ``s``."""
    d = ufl.shape(s)[0]
    dev = s - ufl.tr(s) / d * ufl.Identity(d)
    return ufl.sqrt(1.5 * ufl.inner(dev, dev))


def normal_strain_jump(eps: Any, n: Any) -> Any:
    """Jump of the normal strain ``n·ε n`` of a strain tensor field across interior
    facets (use with ``dS``): the stiffness-mismatch measure at the scaffold interface.

    Args:
        eps: Strain tensor (``epsilon(u)``, or a DG0 tensor Function of it).
        n: Facet normal (``ufl.FacetNormal``).
    """
    np_ = n("+")  # one normal for both sides, so the jump is of the same component
    return (ufl.dot(ufl.dot(eps("+"), np_), np_) - ufl.dot(ufl.dot(eps("-"), np_), np_))


#: Floor of the deformed porosity: a compaction J < 1 − φ would close the pores
#: (assumed; never reached at the strains the model sees, |ε_vol| ≲ 0.1).
PHI_DEFORMED_FLOOR = 1e-3


def deformed_porosity(phi: Any, eps_vol: Any) -> np.ndarray:
    """Porosity of a deformed porous solid whose solid phase is incompressible.

    The solid volume ``(1 − φ) V`` is kept while the total volume becomes ``J V``,
    ``J = 1 + ε_vol`` to first order: ``φ_def = 1 − (1 − φ)/J`` (floored at
    :data:`PHI_DEFORMED_FLOOR`, capped at 1).

    Args:
        phi: Undeformed porosity (per cell).
        eps_vol: Volumetric strain ``tr ε`` (per cell).
    """
    J = 1.0 + np.asarray(eps_vol, dtype=float)
    phi = np.asarray(phi, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - (1.0 - phi) / np.maximum(J, 1e-12)
    return np.clip(out, PHI_DEFORMED_FLOOR, 1.0)


def strain_jump(u: Any, n: Any | None = None) -> Any:
    """Jump of the volumetric strain across interior facets (use with ``dS``).

    With ``n`` (e.g. ``ufl.FacetNormal``) the jump of the normal strain
    ``n·ε n`` is returned instead (:func:`normal_strain_jump` of ``ε(u)``).
    """
    if n is None:
        return ufl.jump(volumetric_strain(u))
    return normal_strain_jump(epsilon(u), n)


def elasticity_forms(u: Any, v: Any, E: Any, nu: Any, *, body: Any = None,
                     traction: Mapping[str, Any] | None = None,
                     pressure: Mapping[str, Any] | None = None,
                     ds: ufl.Measure | None = None,
                     dx: ufl.Measure | None = None) -> tuple[ufl.Form, ufl.Form]:
    """Bilinear and linear forms of linear elasticity.

    Args:
        u, v: Trial and test functions of a vector space.
        E, nu: Young's modulus (kPa) and Poisson ratio (UFL/float, may vary).
        body: Body force (kPa/mm), vector.
        traction: Facet name -> traction vector (kPa).
        pressure: Facet name -> pressure (kPa) acting against the outward
            normal (``t = −p n``; swelling pushes on the pia).
        ds, dx: Measures (``ds`` with facet tags if loads are given).

    Returns:
        ``(a, L)``; ``L`` is a zero functional if there is no load (the
        motion then comes from Dirichlet data).
    """
    domain = ufl.domain.extract_unique_domain(v)
    dx = dx if dx is not None else ufl.Measure("dx", domain=domain)
    ds = ds if ds is not None else ufl.Measure("ds", domain=domain)
    a = ufl.inner(sigma(u, E, nu), epsilon(v)) * dx
    gdim = len(v)
    # A zero body force (a Constant, which UFL does not simplify away) keeps L a
    # valid form when all motion is prescribed.
    if body is None:
        body = fem.Constant(domain, np.zeros(gdim))
    L = ufl.inner(body, v) * dx
    n = ufl.FacetNormal(domain)
    for name, t in (traction or {}).items():
        L += ufl.inner(t, v) * ds(facet_tag(name))
    for name, p in (pressure or {}).items():
        L -= p * ufl.inner(n, v) * ds(facet_tag(name))
    return a, L
