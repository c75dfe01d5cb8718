"""Tissue ingrowth (Fisher–KPP front of the filled pore fraction) and cavitation risk.

* front speed in a 1-D-like box against ``v g`` with the pulled-front (Bramson)
  correction, at h and h/2 (mesh convergence of the front position), and its
  ordering with pore size;
* the rule of mixtures at its end points;
* on the tiny cord mesh: cavitation zero when ingrowth outpaces degradation, positive
  when degradation is 10x faster; state/restore round trip; off = no field at all.
Serial and on 2 ranks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import ufl
from conftest import ROOT
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from scaffoldfem.config.study import load_study
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.model.coupled import CoupledModel
from scaffoldfem.physics import ingrowth as law
from scaffoldfem.physics.materials import (
    filled_diffusivity,
    filled_modulus,
    filled_volume_fraction,
)

V0, ELL = 0.1, 0.1  # mm/day, mm (front speed at g = 1, front width)


def _front_positions(h: float, g: float, times=(20.0, 40.0), dt=0.1, length=5.0):
    """x where f = 1/2 at ``times`` in a box [0, length] x h x h, f = 1 at x = 0."""
    comm = MPI.COMM_WORLD
    m = dmesh.create_box(comm, [[0, 0, 0], [length, h, h]], [round(length / h), 1, 1],
                         dmesh.CellType.tetrahedron)
    V, Q = fem.functionspace(m, ("Lagrange", 1)), fem.functionspace(m, ("DG", 0))
    f, f_old, gf = fem.Function(V), fem.Function(V), fem.Function(Q)
    gf.x.array[:] = g
    m.topology.create_connectivity(2, 3)
    dofs = fem.locate_dofs_topological(
        V, 2, dmesh.locate_entities_boundary(m, 2, lambda x: np.isclose(x[0], 0.0)))
    f.x.array[dofs] = 1.0
    lumped = ufl.dx(domain=m, metadata={"quadrature_rule": "vertex", "quadrature_degree": 1})
    a, L = law.ingrowth_forms(f, f_old, gf, fem.Constant(m, 0.5 * V0 * ELL),
                              fem.Constant(m, 0.5 * V0 / ELL), fem.Constant(m, dt),
                              ufl.dx(domain=m), lumped)
    solver = LinearSolver(a, L, f, [fem.dirichletbc(1.0, dofs, V)], field="front_test",
                          preset="front")
    x = V.tabulate_dof_coordinates()[:, 0]
    out, t = [], 0.0
    try:
        for target in times:
            while t < target - 1e-9:
                f_old.x.array[:] = f.x.array
                solver.invalidate()
                solver.solve(t + dt)
                t += dt
            out.append(_half_point(comm, x, f.x.array))
    finally:
        solver.destroy()
    return out


def _half_point(comm, x, fa):
    xs, fs = comm.allgather(x), comm.allgather(fa)
    x, fa = np.round(np.concatenate(xs), 9), np.concatenate(fs)
    xu = np.unique(x)
    fu = np.array([fa[x == v].mean() for v in xu])
    i = int(np.flatnonzero(fu < 0.5)[0])
    return float(xu[i - 1] + (0.5 - fu[i - 1]) * (xu[i] - xu[i - 1]) / (fu[i] - fu[i - 1]))


def test_front_speed_and_mesh_convergence():
    """Speed between days 20 and 40 = v g − (3ℓ/2g) ln 2/20 (pulled front, λ* = g/…:
    width ℓ for every g) within 2 %; positions at h = ℓ/2 and ℓ/4 within 1.5 %."""
    coarse = _front_positions(ELL / 2, 1.0)
    fine = _front_positions(ELL / 4, 1.0)
    expected = V0 - 1.5 * ELL * math.log(2.0) / 20.0  # Bramson: x = vt − (3ℓ/2) ln t
    for pos in (coarse, fine):
        speed = (pos[1] - pos[0]) / 20.0
        assert speed == pytest.approx(expected, rel=0.02)
    assert fine[1] == pytest.approx(coarse[1], rel=0.015)
    assert fine[1] > 3.0  # it did travel (~3.35 mm)


def test_front_speed_ordering_with_pore_size():
    """The front runs at g v: pore sizes 50, 100, 300 um give speeds in that order and
    proportional to g_pore; past the optimum (1000 um) it slows again."""
    d_opt = 0.3
    sizes = (0.05, 0.1, 0.3, 1.0)
    g = [float(law.pore_size_factor(d, d_opt)) for d in sizes]
    assert g[0] < g[1] < g[2] and g[3] < g[2]
    assert g[2] == pytest.approx(1.0)
    speeds = []
    for gi in g[:3]:
        p = _front_positions(ELL / 2, gi, times=(20.0 / gi, 40.0 / gi))
        speeds.append((p[1] - p[0]) / (20.0 / gi))
    assert speeds[0] < speeds[1] < speeds[2]
    for gi, s in zip(g[:3], speeds, strict=True):
        # same correction in units of g: x = g v t − (3ℓ/2) ln t
        assert s == pytest.approx(gi * V0 - 1.5 * ELL * math.log(2.0) / (20.0 / gi), rel=0.02)


def test_permissiveness_factors():
    assert law.porosity_factor(0.9, 2.0) == pytest.approx(0.81)
    assert law.stiffness_factor(0.1, 0.1, 2.0) == pytest.approx(1.0)
    assert law.stiffness_factor(10.0, 0.1, 2.0) == pytest.approx(0.5)  # 2 decades
    assert law.stiffness_factor(1e-3, 0.1, 2.0) == pytest.approx(0.5)  # either way
    assert law.cavitated(np.array([0.05, 0.05, 0.5]), np.array([0.2, 0.8, 0.2]),
                         0.1, 0.5).tolist() == [True, False, False]


def test_rule_of_mixtures_end_points():
    phi, a_t, d_t, E_t = 0.9, 0.3, 0.3 / 1.5**2, 0.1
    assert filled_volume_fraction(phi, 0.0, a_t) == phi
    assert filled_volume_fraction(1.0, 1.0, a_t) == pytest.approx(a_t)
    assert filled_diffusivity(0.7, 0.0, d_t) == 0.7
    assert filled_diffusivity(1.0, 1.0, d_t) == pytest.approx(d_t)
    assert filled_modulus(5.0, phi, 0.0, E_t) == 5.0
    assert filled_modulus(0.0, 1.0, 1.0, E_t) == pytest.approx(E_t)


# ---------------------------------------------------------------------- tiny cord mesh
TINY = [
    'geometry.resolution="0.35 mm"', 'geometry.cord.length="6 mm"',
    "mechanics.enabled=false", "axons.enabled=false", "cells.enabled=false",
    "ros.enabled=false", "enzymes=[]", "species=[{name='BDNF'}]",
    "ingrowth.enabled=true",
    # A soft, matched, wide-pored gel: g ~ 0.8, the front fills the tiny scaffold
    # (fill >= 1/2 in every cell) by day ~8; degradation first order, no enzymes.
    'scaffold.preset="gelatin"', 'scaffold.enzymatic_rate="0 1/day"',
    'scaffold.solid_modulus="10 kPa"', 'scaffold.pore_size="300 um"',
    'time.dt_max="2 day"',
]


def _model(*extra: str) -> CoupledModel:
    comm = MPI.COMM_WORLD
    study = load_study(ROOT / "studies" / "baseline.toml", [*TINY, *extra])
    mesh, cells, facets = load_mesh(ensure_mesh(study.geometry, comm), comm,
                                    ghost_mode="shared_facet")
    return CoupledModel(study, mesh, cells, facets)


def _run(model: CoupledModel, days: float, dt: float = 2.0) -> None:
    while model.t < days - 1e-9:
        model.step(dt)


def test_cavitation_zero_when_ingrowth_outpaces_degradation_positive_when_10x_faster():
    comm = MPI.COMM_WORLD
    with _model('scaffold.hydrolysis_rate="0.1 1/day"') as slow:
        _run(slow, 24.0)
        ms = slow.ingrowth.metrics()
        w_max = comm.allreduce(float(slow.material.w[slow.disc.scaffold].max(initial=0)),
                               op=MPI.MAX)
    assert w_max < 0.1  # the polymer has gone everywhere (e^-2.4 = 0.09) ...
    assert ms["filled_fraction_final"] > 0.95  # ... after the tissue filled it
    assert ms["cavitation_volume_max_mm3"] == 0.0
    assert ms["cavitation_fraction_final"] == 0.0
    with _model('scaffold.hydrolysis_rate="1 1/day"') as fast:
        _run(fast, 24.0)
        mf = fast.ingrowth.metrics()
        lesion = fast.ingrowth.lesion_volume
    assert mf["cavitation_fraction_max"] > 0.05
    assert mf["cavitation_volume_max_mm3"] == pytest.approx(
        mf["cavitation_fraction_max"] * lesion)
    assert mf["cavitation_volume_integral_mm3_day"] > 0.0
    # the front still fills what was left: the cavity closes again by day 24
    assert mf["cavitation_fraction_final"] < mf["cavitation_fraction_max"]


def test_state_restore_round_trip_and_coefficients():
    with _model('scaffold.hydrolysis_rate="0.3 1/day"') as m:
        _run(m, 4.0)
        snap = m.state()
        _run(m, 8.0)
        f1 = m.ingrowth.f.x.array.copy()
        a1 = m.material.alpha.x.array.copy()
        met1 = m.ingrowth.metrics()
        m.restore(snap)
        assert m.t == 4.0
        _run(m, 8.0)
        assert np.array_equal(m.ingrowth.f.x.array, f1)
        assert np.array_equal(m.material.alpha.x.array, a1)
        assert m.ingrowth.metrics() == met1
        # ingrown tissue lowers α below φ in scaffold cells (tissue ECS 0.3 < 1)
        d = m.disc
        sc = d.scaffold[: d.n_owned]
        alpha = d.cells_of(m.material.alpha)[: d.n_owned][sc]
        phi = m.material.phi_used[: d.n_owned][sc]
        fill = m.material.fill_used[: d.n_owned][sc]
        assert np.allclose(alpha, phi * (1 - fill + 0.3 * fill))
        assert fill.max(initial=0) > 0.9


def test_disabled_adds_nothing():
    with _model("ingrowth.enabled=false") as m:
        assert m.material.fill is None
        assert "tissue_fill" not in m.fields() and "cavitation" not in m.fields()
        assert "fill_used" not in m.state().cells
        assert "ingrowth" not in m.metrics()["scaffold"]
        assert m.step(1.0).get("ingrowth") is None
