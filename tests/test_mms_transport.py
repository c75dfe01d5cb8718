"""Manufactured solutions for the transport operator (space and time convergence).

Spatial: steady ``−∇·(D∇c) + α k c + s c [+ V c/(K+c)] = f`` on the unit cube
with a spatially varying anisotropic D(x), α(x), s(x), Dirichlet data on the
sides and Robin (clearance) on the z ends; L2 and H1 rates of P1 (2, 1) and
P2 (3, 2), linear (CG+GAMG) and nonlinear uptake (SNES Newton).
Temporal: a solution quadratic in space, so P2 is exact in space and only the
time error is left, with α(x, t) and D(x, t) varying in time; BE → 1,
BDF2 → 2, CN → 2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (conftest imports it first as well)
from scaffoldfem.fem.compat import facet_dofs, integrate, interpolate_expression, tag_facets
from scaffoldfem.fem.solver import LinearSolver, NonlinearSolver
from scaffoldfem.physics.transport import (
    Robin,
    Uptake,
    axial_tensor,
    transport_forms,
    transport_residual,
)


def _cube(n: int):
    msh = mesh.create_unit_cube(MPI.COMM_WORLD, n, n, n)
    ft = tag_facets(msh, {
        "pia": lambda x: np.isclose(x[0], 0) | np.isclose(x[0], 1) | np.isclose(x[1], 0)
        | np.isclose(x[1], 1),
        "rostral_end": lambda x: np.isclose(x[2], 0.0),
        "caudal_end": lambda x: np.isclose(x[2], 1.0),
    })
    return msh, ft


def _rates(errors: list[float], hs: list[float]) -> list[float]:
    return [math.log(errors[i] / errors[i + 1]) / math.log(hs[i] / hs[i + 1])
            for i in range(len(errors) - 1)]


def _steady_errors(n: int, degree: int, nonlinear: bool) -> tuple[float, float]:
    msh, ft = _cube(n)
    V = fem.functionspace(msh, ("Lagrange", degree))
    x = ufl.SpatialCoordinate(msh)
    pi = math.pi
    c_ex = 1.0 + 0.5 * ufl.sin(pi * x[0]) * ufl.sin(pi * x[1]) * ufl.cos(pi * x[2])
    alpha = 0.3 + 0.4 * x[0] ** 2 * x[1]
    D = axial_tensor(alpha * (1.0 + 0.5 * x[0]), alpha * (0.5 + 0.3 * x[1] * x[2]))
    k = fem.Constant(msh, 1.5)
    sink = 0.5 + x[2]
    uptake = Uptake(vmax=3.0 * (1.0 + x[0]), kd=0.8) if nonlinear else None
    h = fem.Constant(msh, 2.0)
    n_f = ufl.FacetNormal(msh)
    # Robin data consistent with c_ex: −n·D∇c = h (c − c_ext).
    c_ext = c_ex + ufl.dot(n_f, ufl.dot(D, ufl.grad(c_ex))) / h
    robin = [Robin("rostral_end", h, c_ext), Robin("caudal_end", h, c_ext)]
    f = (-ufl.div(ufl.dot(D, ufl.grad(c_ex))) + alpha * k * c_ex + sink * c_ex
         + (uptake.vmax * c_ex / (uptake.kd + c_ex) if nonlinear else 0.0))
    g = interpolate_expression(fem.Function(V), c_ex)
    bc = fem.dirichletbc(g, facet_dofs(V, ft, "pia"))
    ch = fem.Function(V)
    v = ufl.TestFunction(V)
    # The manufactured f has a huge estimated degree (sin·sin·cos over a rational
    # term); a fixed rule of degree 2p + 3 is exact enough and keeps Newton cheap.
    q = {"quadrature_degree": 2 * degree + 3}
    ds = ufl.Measure("ds", domain=msh, subdomain_data=ft, metadata=q)
    dx = ufl.Measure("dx", domain=msh, metadata=q)
    kw = dict(robin=robin, ds=ds, dx=dx, sink=sink, scheme="steady")
    if nonlinear:
        ch.x.array[:] = 1.0
        F = transport_residual(ch, v, None, alpha, None, D, k, None, f, uptake=uptake, **kw)
        NonlinearSolver(F, ch, [bc], field="mms_uptake").solve(0.0)
    else:
        a, L = transport_forms(ufl.TrialFunction(V), v, None, alpha, None, D, k, None, f, **kw)
        LinearSolver(a, L, ch, [bc], field="mms").solve(0.0)
    dxq = ufl.dx(domain=msh, metadata={"quadrature_degree": 2 * degree + 4})
    e = ch - c_ex
    return (math.sqrt(integrate(e**2 * dxq)),
            math.sqrt(integrate(ufl.inner(ufl.grad(e), ufl.grad(e)) * dxq)))


@pytest.mark.parametrize(("degree", "sizes", "nonlinear"), [
    (1, [4, 8, 16], False),
    (2, [4, 8, 16], False),
    (1, [4, 8, 16], True),
    (2, [4, 8, 16], True),
])
def test_spatial_convergence(degree, sizes, nonlinear):
    errs = [_steady_errors(n, degree, nonlinear) for n in sizes]
    hs = [1.0 / n for n in sizes]
    r_l2 = _rates([e[0] for e in errs], hs)
    r_h1 = _rates([e[1] for e in errs], hs)
    # Asymptotic rate from the finest pair; earlier pairs are pre-asymptotic.
    assert abs(r_l2[-1] - (degree + 1)) < 0.1, (r_l2, errs)
    assert abs(r_h1[-1] - degree) < 0.1, (r_h1, errs)


def _time_error(scheme: str, nsteps: int, T: float = 1.0) -> float:
    msh, ft = _cube(2)
    V = fem.functionspace(msh, ("Lagrange", 2))
    x = ufl.SpatialCoordinate(msh)
    t_new, t_old, t_old2 = (fem.Constant(msh, 0.0) for _ in range(3))
    k = fem.Constant(msh, 0.7)
    h = fem.Constant(msh, 1.5)
    n_f = ufl.FacetNormal(msh)

    def exact(tc):
        # Quadratic in space (P2-exact), smooth in time; α and D vary in time.
        tv = ufl.variable(tc)
        c = (1.0 + x[0] ** 2 + 0.5 * x[1] * x[2]) * (1.0 + 0.5 * ufl.sin(2.0 * tv))
        alpha = (0.4 + 0.2 * x[0]) * (1.0 + 0.25 * ufl.sin(tv))
        D = alpha * (1.0 + 0.5 * x[1])
        f = ufl.diff(alpha * c, tv) - ufl.div(D * ufl.grad(c)) + alpha * k * c
        c_ext = c + ufl.dot(n_f, D * ufl.grad(c)) / h
        return c, alpha, D, f, c_ext

    c1, a1, D1, f1, ce1 = exact(t_new)
    c0, a0, D0, f0, ce0 = exact(t_old)
    _, a00, _, _, _ = exact(t_old2)
    dt = T / nsteps
    dt_c = fem.Constant(msh, dt)
    omega = fem.Constant(msh, 1.0)
    c_old, c_old2, ch = fem.Function(V), fem.Function(V), fem.Function(V)
    interpolate_expression(c_old, c0)
    # BDF2 starts from exact history at t = −Δt: this measures the scheme itself.
    # (A BE first step — ω = 0 — is what the coupled loop does; in this stiff
    # test, λ_min Δt ~ 1, its O(Δt)·A⁻¹ start-up error dominates the ℓ∞ error
    # until Δt ≲ 1/128, see docs/model.md.)
    t_old2.value = -dt
    interpolate_expression(c_old2, exact(t_old2)[0])
    g = fem.Function(V)
    bc = fem.dirichletbc(g, facet_dofs(V, ft, "pia"))
    ds = ufl.Measure("ds", domain=msh, subdomain_data=ft)
    ends = ("rostral_end", "caudal_end")
    kw = dict(robin=[Robin(e, h, ce1) for e in ends], ds=ds, scheme=scheme)
    if scheme == "bdf2":
        kw.update(c_old2=c_old2, alpha_old2=a00, omega=omega)
    if scheme == "cn":
        kw.update(source_old=f0, D_old=D0, robin_old=[Robin(e, h, ce0) for e in ends])
    v, u = ufl.TestFunction(V), ufl.TrialFunction(V)
    a, L = transport_forms(u, v, c_old, a1, a0, D1, k, dt_c, f1, **kw)
    solver = LinearSolver(a, L, ch, [bc], field=f"time_{scheme}", preset="mumps")
    dxq = ufl.dx(domain=msh, metadata={"quadrature_degree": 8})
    err_form = fem.form((ch - c1) ** 2 * dxq)
    err = 0.0
    for n in range(nsteps):
        t_old2.value, t_old.value, t_new.value = (n - 1) * dt, n * dt, (n + 1) * dt
        interpolate_expression(g, c1)
        solver.invalidate()  # α(t) and D(t) changed
        solver.solve(t_new.value)
        c_old2.x.array[:] = c_old.x.array
        c_old.x.array[:] = ch.x.array
        err = max(err, math.sqrt(integrate(err_form)))
    # max over the steps of the L2 error (ℓ∞(L2)): robust to a leading error
    # coefficient that happens to cross zero near the final time.
    return err


@pytest.mark.parametrize(("scheme", "order"), [("be", 1), ("bdf2", 2), ("cn", 2)])
def test_time_convergence(scheme, order):
    steps = [16, 32, 64]
    errs = [_time_error(scheme, n) for n in steps]
    rates = _rates(errs, [1.0 / n for n in steps])
    assert abs(rates[-1] - order) < 0.1, (rates, errs)
