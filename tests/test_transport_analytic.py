"""Transport against analytic solutions, and the discrete mass balance identity.

* Long bar along z, source at one end, decay: ``c ∝ exp(−z/L)``,
  ``L = sqrt(D_axial/(α k)) = sqrt(D*/k)`` (anisotropic host diffusivity).
* Gaussian source in a large (symmetric octant) domain: outside the source
  ``c = Q e^{a²/4L²} e^{−r/L} / (4π D r)``.
* Backward-Euler steps with every term on (decay, degradation-coupled release,
  secretion, dosing, saturable uptake, Robin or Dirichlet efflux, α changing
  with degradation): storage = sources − sinks − efflux to < 1e-8.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (conftest imports it first as well)
from scaffoldfem.errors import SolverError
from scaffoldfem.fem.compat import (
    facet_dofs,
    integrate,
    interpolate_expression,
    tag_facets,
)
from scaffoldfem.fem.sampling import evaluate_at_points
from scaffoldfem.fem.solver import LinearSolver, NonlinearSolver
from scaffoldfem.physics.degradation import (
    cell_survival_step,
    degrade_step,
    porosity,
    release_step,
)
from scaffoldfem.physics.materials import TISSUE, half_life_to_rate
from scaffoldfem.physics.transport import (
    Robin,
    Uptake,
    balance_error,
    balance_forms,
    dirichlet_efflux,
    host_diffusivity,
    secretion_source,
    to_ng,
    transport_forms,
    transport_residual,
)

D_FREE = TISSUE["D_free_ngf"][0]  # mm²/day
ALPHA = TISSUE["alpha_host"][0]


def test_decay_length_long_bar():
    lam_axial, lam_trans = 1.3, 1.8  # axial tracts: less hindrance along z
    k = half_life_to_rate(0.25)  # 6 h half-life, 1/day
    L = math.sqrt(D_FREE / lam_axial**2 / k)  # = sqrt(D*_axial / k)
    src_len, length = 0.5, 0.5 + 10 * L
    nz = round(length / (L / 10))
    msh = mesh.create_box(MPI.COMM_WORLD, [[0, 0, 0], [0.5, 0.5, length]], [2, 2, nz])
    V = fem.functionspace(msh, ("Lagrange", 1))
    x = ufl.SpatialCoordinate(msh)
    D = host_diffusivity(D_FREE, ALPHA, lam_trans, lam_axial)
    src = ufl.conditional(ufl.lt(x[2], src_len), 100.0, 0.0)
    c = fem.Function(V)
    a, L_form = transport_forms(ufl.TrialFunction(V), ufl.TestFunction(V), None, ALPHA, None,
                                D, fem.Constant(msh, k), None, src, scheme="steady")
    LinearSolver(a, L_form, c, field="bar").solve(0.0)
    z1, z2 = src_len + 2 * L, src_len + 5 * L
    c1, c2 = evaluate_at_points(c, np.array([[0.25, 0.25, z1], [0.25, 0.25, z2]]))[:, 0]
    L_fit = (z2 - z1) / math.log(c1 / c2)
    assert abs(L_fit / L - 1) < 0.02, (L_fit, L)


def test_spherical_source():
    k = half_life_to_rate(1.0)  # 1 day
    d_eff = ALPHA * D_FREE / TISSUE["tortuosity_host"][0] ** 2
    L = math.sqrt(d_eff / (ALPHA * k))
    a_src, R, n = 0.3 * L, 8.0 * L, 20
    msh = mesh.create_box(MPI.COMM_WORLD, [[0, 0, 0], [1, 1, 1]], [n, n, n])
    # Grade towards the source at the origin: x = R ξ^1.6 (octant, symmetry planes no-flux).
    msh.geometry.x[:, :] = R * msh.geometry.x[:, :] ** 1.6
    V = fem.functionspace(msh, ("Lagrange", 2))
    x = ufl.SpatialCoordinate(msh)
    s0 = 50.0
    src = s0 * ufl.exp(-ufl.dot(x, x) / a_src**2)
    c = fem.Function(V)
    a, L_form = transport_forms(ufl.TrialFunction(V), ufl.TestFunction(V), None, ALPHA, None,
                                d_eff, fem.Constant(msh, k), None, src, scheme="steady")
    LinearSolver(a, L_form, c, field="sphere").solve(0.0)
    r = np.linspace(1.0, 4.0, 7) * L
    pts = np.c_[r, r, r] / math.sqrt(3.0)  # along the diagonal, away from the symmetry planes
    ch = evaluate_at_points(c, pts)[:, 0]
    q = s0 * math.pi**1.5 * a_src**3  # total source (full space)
    exact = q * math.exp(a_src**2 / (4 * L**2)) * np.exp(-r / L) / (4 * math.pi * d_eff * r)
    assert np.max(np.abs(ch / exact - 1)) < 0.03, ch / exact
    slope = np.polyfit(r, np.log(r * ch), 1)[0]  # ln(r c) = const − r/L
    assert abs(-1.0 / slope / L - 1) < 0.02, (-1 / slope, L)


class _BalanceProblem:
    """One species on a bar: host (z < 0) and a degrading scaffold (z > 0)."""

    def __init__(self, outlet: str, uptake_mode: str, rhs_split: bool = False):
        msh = mesh.create_box(MPI.COMM_WORLD, [[-0.5, -0.5, -1.0], [0.5, 0.5, 1.0]], [4, 4, 12])
        self.msh = msh
        ft = tag_facets(msh, {
            "pia": lambda x: np.full(x.shape[1], True),
            "rostral_end": lambda x: np.isclose(x[2], -1.0),
            "caudal_end": lambda x: np.isclose(x[2], 1.0),
        })
        ds = ufl.Measure("ds", domain=msh, subdomain_data=ft)
        V = fem.functionspace(msh, ("Lagrange", 1))
        Q = fem.functionspace(msh, ("DG", 0))
        x = ufl.SpatialCoordinate(msh)
        host = interpolate_expression(fem.Function(Q), ufl.conditional(ufl.lt(x[2], 0), 1.0, 0.0))
        self.V, self.host = V, host
        # Pointwise ODE fields live on the P1 dofs (same space as c: exact bookkeeping).
        self.w, self.m, self.b = fem.Function(V), fem.Function(V), fem.Function(V)
        xs = V.tabulate_dof_coordinates()
        scaffold = xs[:, 2] > 1e-12
        self.scaffold = scaffold
        self.m.x.array[:] = np.where(scaffold, 40.0 * (1 + xs[:, 0]), 0.0)  # MMP, frozen
        self.w.x.array[:] = np.where(scaffold, 1.0, 0.0)
        self.b.x.array[:] = np.where(scaffold, 500.0, 0.0)
        self.rho = np.where(scaffold, 2.0e3, 0.0)  # cells/mm³
        phi0 = 0.6
        # α: host ECS fraction, scaffold porosity from w (a P1 field updated each step).
        self.alpha, self.alpha_old = fem.Function(V), fem.Function(V)
        self._phi0 = phi0
        self._set_alpha(self.alpha)
        self.alpha_old.x.array[:] = self.alpha.x.array
        d = host_diffusivity(D_FREE, self.alpha, 1.6, 1.3)
        self.k = fem.Constant(msh, half_life_to_rate(0.5))
        self.dt = fem.Constant(msh, 0.5)
        self.R = fem.Function(V)  # release rate from the reservoir (ng/mL/day)
        self.S = fem.Function(V)  # secretion by the cells
        dose = 20.0 * host  # infusion into the host region (ng/mL/day)
        sources = {"released": self.R, "secreted": self.S, "dosed": dose}
        uptake = Uptake(vmax=30.0 * host, kd=27.0, mode=uptake_mode)
        robin = [Robin("rostral_end", 0.8, 0.0)]
        self.bcs = []
        if outlet == "robin":
            robin.append(Robin("caudal_end", 0.5, 5.0))
        else:
            self.bc_dofs = facet_dofs(V, ft, "caudal_end")
            self.bcs = [fem.dirichletbc(0.0, self.bc_dofs, V)]
        self.c, self.c_old = fem.Function(V), fem.Function(V)
        self.c_old.x.array[:] = 10.0
        self.c.x.array[:] = 10.0
        v = ufl.TestFunction(V)
        kw = dict(robin=robin, ds=ds, uptake=uptake, scheme="be")
        F = transport_residual(self.c, v, self.c_old, self.alpha, self.alpha_old, d, self.k,
                               self.dt, sources, **kw)
        self.residual = fem.form(F)
        if uptake_mode == "newton":
            self.solver = NonlinearSolver(F, self.c, self.bcs, field="balance")
        else:
            a, L = transport_forms(ufl.TrialFunction(V), v, self.c_old, self.alpha,
                                   self.alpha_old, d, self.k, self.dt, sources, **kw)
            # rhs_split: the RHS from precomputed matrices (the fast path) must keep
            # the identity as well.
            self.solver = LinearSolver(
                a, L, self.c, self.bcs, field="balance",
                rhs_coefficients=[self.c_old, self.R, self.S, host] if rhs_split else ())
        self.balance = {key: fem.form(f) for key, f in balance_forms(
            self.c, self.c_old, self.alpha, self.alpha_old, self.k, self.dt, sources,
            **kw).items()}
        self.reservoir = fem.form(self.b * ufl.dx(domain=msh))

    def _set_alpha(self, f):
        f.x.array[:] = np.where(self.scaffold, porosity(self.w.x.array, self._phi0), ALPHA)

    def step(self, t: float) -> dict[str, float]:
        dt = float(self.dt.value)
        w_old = self.w.x.array.copy()
        w_new = degrade_step(w_old, dt, k_h=0.02, a_auto=3.0, k_e=0.3, K_e=50.0,
                             m=self.m.x.array)
        b_new, released = release_step(self.b.x.array, w_old, w_new, dt, k0=0.05, k_mmp=0.2,
                                       K_m=50.0, m=self.m.x.array, rho_rel=1.0)
        rho_new, rho_mean = cell_survival_step(self.rho, dt, k_death=0.1)
        self.w.x.array[:], self.b.x.array[:], self.rho = w_new, b_new, rho_new
        self.R.x.array[:] = released / dt
        self.S.x.array[:] = secretion_source(1.0e-4, rho_mean)
        self.alpha_old.x.array[:] = self.alpha.x.array
        self._set_alpha(self.alpha)
        if isinstance(self.solver, LinearSolver):
            self.solver.invalidate()  # α (storage, decay, D) changed
        self.solver.solve(t)
        amounts = {key: integrate(f) for key, f in self.balance.items()}
        amounts["dirichlet"] = (dirichlet_efflux(self.residual, self.bc_dofs, dt)
                                if self.bcs else 0.0)
        self.c_old.x.array[:] = self.c.x.array
        return amounts


@pytest.mark.parametrize(("outlet", "uptake_mode", "rhs_split"), [
    ("robin", "picard", False), ("dirichlet", "picard", True), ("robin", "newton", False),
])
def test_mass_balance_identity(outlet, uptake_mode, rhs_split):
    prob = _BalanceProblem(outlet, uptake_mode, rhs_split)
    content0 = integrate(prob.balance["content"])
    reservoir0 = integrate(prob.reservoir)
    totals: dict[str, float] = {}
    worst = 0.0
    for n in range(6):
        amounts = prob.step((n + 1) * float(prob.dt.value))
        _, rel = balance_error(amounts, amounts.pop("dirichlet"))
        worst = max(worst, rel)
        for key, val in amounts.items():
            totals[key] = totals.get(key, 0.0) + val
    # Every term is really on (so the identity is not trivially 0 = 0).
    for key in ("decayed", "taken_up", "source:released", "source:secreted",
                "source:dosed", "efflux:rostral_end"):
        assert totals[key] > 1e-3 * abs(totals["storage"]), (key, totals)
    assert worst < 1e-8, worst
    # Cumulative: content change over the run against the summed terms.
    content = integrate(prob.balance["content"])
    assert abs(content - content0 - totals["storage"]) < 1e-10 * abs(content), "storage telescopes"
    # The reservoir lost exactly what was released into the fluid.
    reservoir = integrate(prob.reservoir)
    released = totals["source:released"]
    assert abs(reservoir0 - reservoir - released) < 1e-10 * reservoir0
    # Mass (ng) is reported through the one conversion factor.
    assert math.isclose(to_ng(reservoir0), reservoir0 * 1e-3)


def _bar_solver(msh, *, rhs_split: bool, options=None):
    V = fem.functionspace(msh, ("Lagrange", 1))
    x = ufl.SpatialCoordinate(msh)
    c, c_old = fem.Function(V), fem.Function(V)
    src = interpolate_expression(fem.Function(V), 10.0 * ufl.exp(-ufl.dot(x, x)))
    D = host_diffusivity(D_FREE, ALPHA, 1.6)
    a, L = transport_forms(ufl.TrialFunction(V), ufl.TestFunction(V), c_old, ALPHA, ALPHA, D,
                           fem.Constant(msh, 1.0), fem.Constant(msh, 0.1), src)
    solver = LinearSolver(a, L, c, field="NT-3", petsc_options=options,
                          rhs_coefficients=[c_old, src] if rhs_split else ())
    return solver, c, c_old


def test_solver_reuses_matrix_and_splits_rhs():
    msh = mesh.create_box(MPI.COMM_WORLD, [[-1, -1, -1], [1, 1, 1]], [6, 6, 6])
    plain, c1, c1_old = _bar_solver(msh, rhs_split=False)
    split, c2, c2_old = _bar_solver(msh, rhs_split=True)
    for n in range(4):
        plain.solve(n * 0.1)
        split.solve(n * 0.1)
        c1_old.x.array[:] = c1.x.array
        c2_old.x.array[:] = c2.x.array
    norm = integrate(c1**2 * ufl.dx)
    assert integrate((c1 - c2) ** 2 * ufl.dx) < 1e-18 * norm  # same system, same answer
    assert plain.assemblies == 1 and split.assemblies == 1  # never told the matrix changed
    split.invalidate()
    split.solve(0.5)
    assert split.assemblies == 2
    assert plain.prefix != split.prefix


def test_solver_error_names_field_time_and_reason():
    msh = mesh.create_box(MPI.COMM_WORLD, [[-1, -1, -1], [1, 1, 1]], [6, 6, 6])
    solver, _, _ = _bar_solver(msh, rhs_split=False,
                               options={"ksp_max_it": 1, "pc_type": "jacobi"})
    with pytest.raises(SolverError) as err:
        solver.solve(3.5)
    assert err.value.field == "NT-3" and err.value.time == 3.5
    assert err.value.reason == "DIVERGED_MAX_IT"
    assert "NT-3" in str(err.value) and "3.5" in str(err.value)


def test_rhs_split_refuses_nonaffine_rhs():
    msh = mesh.create_box(MPI.COMM_WORLD, [[0, 0, 0], [1, 1, 1]], [2, 2, 2])
    V = fem.functionspace(msh, ("Lagrange", 1))
    c, c_old = fem.Function(V), fem.Function(V)
    # CN with Picard uptake has V c_old/(K + c_old) on the right-hand side.
    a, L = transport_forms(ufl.TrialFunction(V), ufl.TestFunction(V), c_old, 1.0, 1.0, 1.0,
                           fem.Constant(msh, 1.0), fem.Constant(msh, 0.1), None, scheme="cn",
                           uptake=Uptake(1.0, 2.0, mode="picard"))
    with pytest.raises(ValueError, match="not affine"):
        LinearSolver(a, L, c, field="x", rhs_coefficients=[c_old])
