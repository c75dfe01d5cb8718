"""Growth-factor and enzyme transport as pure UFL (no PETSc here).

The balance law, per unit *total* volume (docs/model.md, "Transport")::

    ∂(α c)/∂t = ∇·(D ∇c) − α k c − U(c) − s c + R + S       in Ω
    −n·D∇c   = h (c − c_ext)                                 on Robin facets
    c        = g                                             on Dirichlet facets
    −n·D∇c   = 0                                             elsewhere (pia)

c is the concentration in the accessible fluid (ng/mL), α the accessible
volume fraction, D the flux-basis (effective) diffusivity (mm²/day, scalar or
tensor), k the first-order decay rate (1/day), ``U = V_max c/(K_d + c)``
saturable uptake (ng/mL/day), s an optional linear sink (1/day, e.g. binding to a
carrier's sites; lumped), R + S sources (ng/mL/day). The storage term ``α c`` keeps
mass exact when α changes (scaffold degradation frees pore volume).

Time schemes on ``(α c)`` (θ-weighted right-hand side ``A``)::

    steady:  A(cⁿ⁺¹) = 0
    be:      (αc)ⁿ⁺¹ − (αc)ⁿ = Δt A(cⁿ⁺¹)
    cn/θ:    (αc)ⁿ⁺¹ − (αc)ⁿ = Δt [θ A(cⁿ⁺¹) + (1−θ) A(cⁿ)]
    bdf2:    a0 (αc)ⁿ⁺¹ − a1 (αc)ⁿ + a2 (αc)ⁿ⁻¹ = Δt A(cⁿ⁺¹)
             a0 = (1+2ω)/(1+ω), a1 = 1+ω, a2 = ω²/(1+ω), ω = Δtₙ/Δtₙ₋₁

Testing the discrete equation with v = 1 (which lies in every Lagrange space)
removes the diffusion term: *storage = Δt (sources − decay − uptake − sink −
efflux)* to solver tolerance; :func:`balance_forms` returns each term.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import ufl
from dolfinx import fem, la
from mpi4py import MPI

from scaffoldfem.regions import facet_tag

__all__ = [
    "MM3_PER_ML",
    "NG_PER_NGML_MM3",
    "Robin",
    "Scheme",
    "Uptake",
    "axial_tensor",
    "balance_error",
    "balance_forms",
    "decay_length",
    "dirichlet_efflux",
    "host_diffusivity",
    "mass_rate_to_source",
    "scheme_theta",
    "secretion_source",
    "to_ng",
    "transport_forms",
    "transport_residual",
    "uptake_rate",
]

Scheme = Literal["steady", "be", "bdf2", "cn", "theta"]

#: 1 mL = 1000 mm³. The ONE place the mm³ ↔ mL conversion lives.
MM3_PER_ML = 1000.0
#: ng in (1 ng/mL) × (1 mm³): integrals ∫ c dV over a mesh in mm are in these units.
NG_PER_NGML_MM3 = 1.0 / MM3_PER_ML


def to_ng(amount: float | np.ndarray) -> float | np.ndarray:
    """Convert ∫ c dV (ng/mL · mm³) to ng."""
    return amount * NG_PER_NGML_MM3


def secretion_source(sigma: Any, rho_cells: Any) -> Any:
    """Source (ng/mL/day) of ``rho_cells`` cells/mm³ secreting ``sigma`` ng/cell/day."""
    return sigma * rho_cells * MM3_PER_ML


def mass_rate_to_source(rate_ng_per_day: Any, volume_mm3: Any) -> Any:
    """Source (ng/mL/day) of a dose rate (ng/day) spread evenly over ``volume_mm3``."""
    return rate_ng_per_day / volume_mm3 * MM3_PER_ML


def decay_length(d_eff: float, alpha: float, k: float) -> float:
    """Steady penetration length ``sqrt(D/(α k)) = sqrt(D*/k)`` (mm)."""
    return math.sqrt(d_eff / (alpha * k))


# --- coefficients ------------------------------------------------------------------

def axial_tensor(d_axial: Any, d_transverse: Any, gdim: int = 3,
                 axis: int = 2) -> ufl.core.expr.Expr:
    """Transversely isotropic tensor ``d_t I + (d_a − d_t) e⊗e`` about axis ``axis`` (z)."""
    e = ufl.as_vector([1.0 if i == axis else 0.0 for i in range(gdim)])
    return d_transverse * ufl.Identity(gdim) + (d_axial - d_transverse) * ufl.outer(e, e)


def host_diffusivity(d_free: Any, alpha: Any, tortuosity: Any,
                     tortuosity_axial: Any | None = None, gdim: int = 3) -> Any:
    """Flux-basis diffusivity of tissue: ``α D_free/λ²`` (tensor if ``tortuosity_axial``):
    Nicholson's ``D* = D_free/λ²`` times α, so the decay length is ``sqrt(D*/k)``.

    Args:
        d_free: Free diffusivity (mm²/day).
        alpha: ECS volume fraction.
        tortuosity: λ across the cord axis (and along it if isotropic).
        tortuosity_axial: λ along the cord axis z (white-matter tracts).
        gdim: Geometric dimension (for the tensor).
    """
    d_t = alpha * d_free / tortuosity**2
    if tortuosity_axial is None:
        return d_t
    return axial_tensor(alpha * d_free / tortuosity_axial**2, d_t, gdim)


@dataclass(frozen=True)
class Robin:
    """Clearance ``−n·D∇c = h (c − c_ext)`` on the facet region ``name``.

    Attributes:
        name: Facet region (key of ``regions.FACET_TAGS``).
        h: Transfer coefficient (mm/day); large h approaches Dirichlet c = c_ext.
        c_ext: Exterior concentration (ng/mL).
    """

    name: str
    h: Any
    c_ext: Any = 0.0


@dataclass(frozen=True)
class Uptake:
    """Saturable receptor uptake ``V_max c/(K_d + c)`` (per unit total volume).

    Attributes:
        vmax: Maximal uptake (ng/mL/day), zero outside tissue (UFL or float).
        kd: Half-saturation concentration (ng/mL).
        mode: ``"newton"`` solves the nonlinear term (SNES); ``"picard"``
            lags the denominator, ``V_max cⁿ⁺¹/(K_d + cⁿ)``: linear, positive,
            first-order in time (use with backward Euler only).
    """

    vmax: Any
    kd: Any
    mode: Literal["newton", "picard"] = "newton"


def uptake_rate(c: Any, uptake: Uptake, c_lag: Any | None = None) -> Any:
    """Uptake rate (ng/mL/day); lagged denominator ``c_lag`` in Picard mode."""
    denom = c if (uptake.mode == "newton" or c_lag is None) else c_lag
    return uptake.vmax * c / (uptake.kd + denom)


def scheme_theta(scheme: Scheme, theta: Any = 0.5) -> Any:
    """Implicit weight θ of a scheme (1 for steady/be/bdf2, ½ for cn)."""
    return {"steady": 1.0, "be": 1.0, "bdf2": 1.0, "cn": 0.5}.get(scheme, theta)


def _bdf2_coefficients(omega: Any) -> tuple[Any, Any, Any]:
    return (1 + 2 * omega) / (1 + omega), 1 + omega, omega**2 / (1 + omega)


def _sources(source: Any) -> dict[str, Any]:
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return dict(source)
    return {"source": source}


def _measures(v: Any, ds: ufl.Measure | None, dx: ufl.Measure | None) -> tuple[Any, Any]:
    domain = ufl.domain.extract_unique_domain(v)
    return (dx if dx is not None else ufl.Measure("dx", domain=domain),
            ds if ds is not None else ufl.Measure("ds", domain=domain))


def _storage(c, c_old, alpha, alpha_old, scheme, c_old2, alpha_old2, omega):
    """Time-discrete increment of αc over one step (multiplied by Δt)."""
    if scheme == "steady":
        return None
    if scheme == "bdf2":
        if c_old2 is None or alpha_old2 is None:
            raise ValueError("bdf2 needs c_old2 and alpha_old2 (take a first step with 'be')")
        a0, a1, a2 = _bdf2_coefficients(omega)
        return a0 * alpha * c - a1 * alpha_old * c_old + a2 * alpha_old2 * c_old2
    return alpha * c - alpha_old * c_old


def _lumped(dx: ufl.Measure, u: Any) -> ufl.Measure:
    """Vertex rule (mass lumping) for P1; the exact rule otherwise (P2 lumps badly)."""
    p1 = u.ufl_function_space().ufl_element().embedded_superdegree == 1
    return dx(metadata={"quadrature_rule": "vertex", "quadrature_degree": 1}) if p1 else dx


def _operator(c, v, alpha, D, k, srcs, uptake, sink, robin, c_lag, dx, ds):
    """``A(c; v)``: everything but the storage term, as a residual (sinks positive)."""
    grad_c = ufl.grad(c)
    flux = ufl.dot(D, grad_c) if len(ufl.shape(D)) == 2 else D * grad_c
    form = ufl.inner(flux, ufl.grad(v)) * dx + alpha * k * c * v * dx
    if uptake is not None:
        form += uptake_rate(c, uptake, c_lag) * v * dx
    if sink is not None:  # lumped (vertex rule): a strong sink keeps the M-matrix property
        form += sink * c * v * _lumped(dx, v)
    for s in srcs.values():
        form -= s * v * dx
    for r in robin:
        form += r.h * (c - r.c_ext) * v * ds(facet_tag(r.name))
    return form


def transport_residual(c: Any, v: Any, c_old: Any, alpha: Any, alpha_old: Any, D: Any, k: Any,
                       dt: Any, source: Any = None, *, robin: Sequence[Robin] = (),
                       ds: ufl.Measure | None = None, dx: ufl.Measure | None = None,
                       uptake: Uptake | None = None, sink: Any = None, scheme: Scheme = "be",
                       theta: Any = 0.5, c_old2: Any = None, alpha_old2: Any = None,
                       omega: Any = 1.0, source_old: Any = None, D_old: Any = None,
                       alpha_old_rhs: Any = None,
                       robin_old: Sequence[Robin] | None = None) -> ufl.Form:
    """Residual ``F(c; v)`` of one time step (per unit time; ``F = 0`` is the scheme).

    Args:
        c: Unknown at tⁿ⁺¹: a Function (nonlinear) or TrialFunction (linear).
        v: Test function.
        c_old, alpha_old: c and α at tⁿ.
        alpha: α at tⁿ⁺¹.
        D: Flux-basis diffusivity at tⁿ⁺¹ (scalar or rank-2 tensor, mm²/day).
        k: Decay rate (1/day).
        dt: Step (day), a ``fem.Constant`` so the form compiles once.
        source: Source(s) at tⁿ⁺¹ (ng/mL/day): an expression or a mapping
            name -> expression (names reappear in :func:`balance_forms`).
        robin: Clearance conditions; ``ds`` must carry the facet tags.
        ds, dx: Measures (default: untagged on the mesh of ``v``).
        uptake: Saturable uptake (Picard mode lags with ``c_old``).
        sink: Linear sink coefficient (1/day, per unit total volume), lumped.
        scheme: ``"steady"``, ``"be"``, ``"bdf2"``, ``"cn"`` or ``"theta"``.
        theta: Implicit weight for ``"theta"``.
        c_old2, alpha_old2: Level tⁿ⁻¹ for BDF2; ``omega`` = Δtₙ/Δtₙ₋₁.
        source_old, D_old, robin_old: Explicit-level values for cn/θ
            (default: the new ones).
        alpha_old_rhs: α used in the explicit decay term (default ``alpha_old``).

    Returns:
        The UFL residual form.
    """
    dx, ds = _measures(v, ds, dx)
    th = scheme_theta(scheme, theta)
    srcs = _sources(source)
    c_lag = c_old if (uptake is not None and uptake.mode == "picard") else None
    form = _operator(c, v, alpha, D, k, srcs, uptake, sink, robin, c_lag, dx, ds)
    storage = _storage(c, c_old, alpha, alpha_old, scheme, c_old2, alpha_old2, omega)
    if storage is None:
        return form
    if scheme in ("cn", "theta"):
        srcs_old = _sources(source_old) if source_old is not None else srcs
        a_old = alpha_old if alpha_old_rhs is None else alpha_old_rhs
        old = _operator(c_old, v, a_old, D if D_old is None else D_old, k, srcs_old,
                        uptake, sink, robin if robin_old is None else robin_old, c_old, dx, ds)
        form = th * form + (1 - th) * old
    return storage / dt * v * dx + form


def transport_forms(c: Any, v: Any, c_old: Any, alpha: Any, alpha_old: Any, D: Any, k: Any,
                    dt: Any, source: Any = None, **kwargs: Any) -> tuple[ufl.Form, ufl.Form]:
    """Bilinear and linear forms ``(a, L)`` of one linear transport step.

    Same arguments as :func:`transport_residual`, with ``c`` a TrialFunction.
    Newton-mode uptake is nonlinear: use :func:`transport_residual` and the
    SNES path instead (a ValueError says so).
    """
    uptake = kwargs.get("uptake")
    if uptake is not None and uptake.mode == "newton":
        raise ValueError("Newton-mode uptake is nonlinear: use transport_residual + "
                         "NonlinearSolver, or Uptake(mode='picard')")
    F = transport_residual(c, v, c_old, alpha, alpha_old, D, k, dt, source, **kwargs)
    a, L = ufl.system(F)
    if L is None or L.empty():
        # A source-free steady problem has no linear form; a zero Constant (which
        # UFL does not simplify away) keeps one, so the solver can lift Dirichlet data.
        domain = ufl.domain.extract_unique_domain(v)
        dx = kwargs.get("dx")
        dx = dx if dx is not None else ufl.Measure("dx", domain=domain)
        L = fem.Constant(domain, 0.0) * v * dx
    return a, L


def balance_forms(c: Any, c_old: Any, alpha: Any, alpha_old: Any, k: Any, dt: Any,
                  source: Any = None, *, robin: Sequence[Robin] = (),
                  ds: ufl.Measure | None = None, dx: ufl.Measure | None = None,
                  uptake: Uptake | None = None, sink: Any = None, scheme: Scheme = "be",
                  theta: Any = 0.5, c_old2: Any = None, alpha_old2: Any = None,
                  omega: Any = 1.0, source_old: Any = None, alpha_old_rhs: Any = None,
                  robin_old: Sequence[Robin] | None = None) -> dict[str, ufl.Form]:
    """Per-step amounts (ng/mL·mm³; :func:`to_ng` gives ng) of every balance term.

    Use the same arguments as the step. Keys: ``storage`` (for be/cn equal to
    ``∫αc|ⁿ⁺¹ − ∫αc|ⁿ``; for bdf2 the BDF2 increment), ``decayed``, ``taken_up``
    (if uptake), ``sink`` (if sink), one ``source:<name>`` per source and
    ``efflux:<facet>`` per Robin condition. Dirichlet efflux is not a form:
    get it from :func:`dirichlet_efflux`. ``content`` (∫αc at tⁿ⁺¹) is
    included for reporting.

    Returns:
        Mapping name -> UFL 0-form; the identity is checked by :func:`balance_error`.
    """
    domain = ufl.domain.extract_unique_domain(c)
    dx = dx if dx is not None else ufl.Measure("dx", domain=domain)
    ds = ds if ds is not None else ufl.Measure("ds", domain=domain)
    if scheme == "steady":
        raise ValueError("no balance over a step for the steady scheme")
    th = scheme_theta(scheme, theta)
    a_old = alpha_old if alpha_old_rhs is None else alpha_old_rhs
    c_lag = c_old if (uptake is not None and uptake.mode == "picard") else None
    # Same θ-weighting as the residual; BE/BDF2 have th == 1 and drop the old level.
    explicit = scheme in ("cn", "theta")

    # The identity is "the residual tested with v = 1". Multiplying by a Function
    # equal to 1 in the test space gives every integrand the same polynomial
    # degree as in the residual, hence the same quadrature rule, so the identity
    # also holds for non-polynomial coefficients (exp sources, α(x), ...).
    one = fem.Function(c.function_space)
    one.x.array[:] = 1.0

    def weighted(new, old, measure=dx):
        # Separate integrals per time level, like the residual, so each gets the
        # quadrature degree it gets there.
        if explicit:
            return dt * th * new * one * measure + dt * (1 - th) * old * one * measure
        return dt * new * one * measure

    out: dict[str, ufl.Form] = {
        "content": alpha * c * dx,
        "storage": _storage(c, c_old, alpha, alpha_old, scheme, c_old2, alpha_old2, omega)
        * one * dx,
        "decayed": weighted(alpha * k * c, a_old * k * c_old),
    }
    if uptake is not None:
        out["taken_up"] = weighted(uptake_rate(c, uptake, c_lag), uptake_rate(c_old, uptake, c_old))
    if sink is not None:
        out["sink"] = weighted(sink * c, sink * c_old, _lumped(dx, c))
    srcs = _sources(source)
    srcs_old = _sources(source_old) if source_old is not None else srcs
    for name, s in srcs.items():
        out[f"source:{name}"] = weighted(s, srcs_old.get(name, s))
    for r, r_old in zip(robin, robin if robin_old is None else robin_old, strict=True):
        out[f"efflux:{r.name}"] = weighted(r.h * (c - r.c_ext), r_old.h * (c_old - r_old.c_ext),
                                           ds(facet_tag(r.name)))
    return out


def balance_error(amounts: Mapping[str, float], dirichlet: float = 0.0) -> tuple[float, float]:
    """Residual of the discrete balance and its size relative to its largest side.

    ``storage − (gains − losses)`` with gains ``Σ sources`` and losses ``decayed +
    taken_up + sink + Σ efflux + dirichlet``, relative to ``max(|storage|, |gains|,
    |losses|)``. Per step (evaluated :func:`balance_forms`) or cumulative (summed
    amounts of a run) alike.

    Args:
        amounts: Amounts keyed like :func:`balance_forms` (any consistent unit).
        dirichlet: Efflux through Dirichlet facets.

    Returns:
        ``(residual, relative)``; relative is 0 when every term is 0.
    """
    gain = sum(v for key, v in amounts.items() if key.startswith("source:"))
    loss = sum(amounts.get(key, 0.0) for key in ("decayed", "taken_up", "sink"))
    loss += sum(v for key, v in amounts.items() if key.startswith("efflux:")) + dirichlet
    residual = amounts["storage"] - (gain - loss)
    scale = max(abs(amounts["storage"]), abs(gain), abs(loss))
    return residual, (abs(residual) / scale if scale > 0 else 0.0)


def dirichlet_efflux(residual: fem.Form, dofs: np.ndarray, dt: float) -> float:
    """Consistent efflux through Dirichlet dofs over a step (same units as the balance).

    With ``F`` the compiled :func:`transport_residual` (``c`` a Function
    holding the solution), ``Σ_i F_i = F(c; 1)`` over all dofs, and
    ``F_i = 0`` off the Dirichlet dofs, so the boundary flux the discrete
    scheme actually used is ``−Δt Σ_{i ∈ Dirichlet} F_i`` (Hughes et al.
    2000, "The continuous Galerkin method is locally conservative").

    Args:
        residual: Compiled residual form (rank 1).
        dofs: Local Dirichlet dof indices (owned and ghost; ghosts are dropped).
        dt: Step length.

    Returns:
        Global efflux (positive out of the domain), identical on every rank.
    """
    vec = fem.assemble_vector(residual)
    vec.scatter_reverse(la.InsertMode.add)
    V = residual.function_spaces[0]
    n_owned = V.dofmap.index_map.size_local * V.dofmap.index_map_bs
    owned = dofs[dofs < n_owned]
    local = float(np.sum(vec.array[owned]))
    return -dt * V.mesh.comm.allreduce(local, op=MPI.SUM)
