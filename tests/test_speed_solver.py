"""The speed paths of the transport solvers keep the answer (issue 14).

* ``conserve``: the Galerkin correction along the free-dof indicator makes the
  global balance of a step exact whatever the Krylov tolerance, and does not make
  the solution worse (A-norm error);
* shared operators: species with the same transport coefficients solve with one
  matrix and preconditioner, and get the same concentrations as with their own.
"""

from __future__ import annotations

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI
from petsc4py import PETSc

import scaffoldfem  # noqa: F401
from scaffoldfem.config.study import load_study
from scaffoldfem.errors import StudyError
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.fem.solver_base import solver_timings
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.model import species as species_module
from scaffoldfem.model.coupled import CoupledModel
from tests.test_run import BASELINE

DT, K, D = 0.5, 0.3, 0.05


def _step_problem(comm, rtol: float, conserve: bool, dirichlet: bool,
                  field: str = "conserve_test"):
    msh = mesh.create_unit_cube(comm, 8, 8, 8)
    V = fem.functionspace(msh, ("Lagrange", 1))
    c, c_old, f = fem.Function(V), fem.Function(V), fem.Function(V)
    x = ufl.SpatialCoordinate(msh)
    c_old.interpolate(lambda p: 1.0 + np.sin(3 * p[0]) * np.cos(2 * p[1]))
    f.interpolate(lambda p: 5.0 * np.exp(-20 * ((p[0] - 0.3) ** 2 + (p[2] - 0.6) ** 2)))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = (u * v / DT + D * ufl.inner(ufl.grad(u), ufl.grad(v)) + K * u * v) * ufl.dx
    a += 2.0 * u * v * ufl.ds  # a Robin clearance as at the cord ends
    L = (c_old * v / DT + f * v) * ufl.dx + 2.0 * 0.1 * (1 + x[0]) * v * ufl.ds
    bcs = []
    if dirichlet:
        msh.topology.create_connectivity(2, 3)
        facets = mesh.locate_entities_boundary(msh, 2, lambda p: np.isclose(p[2], 0.0))
        bcs = [fem.dirichletbc(0.7, fem.locate_dofs_topological(V, 2, facets), V)]
    solver = LinearSolver(a, L, c, bcs, field=field,
                          petsc_options={"ksp_rtol": rtol, "ksp_norm_type": "preconditioned"},
                          rhs_coefficients=[c_old, f], conserve=conserve)
    solver.solve(DT)
    return solver


def _free_residual_sum(solver: LinearSolver) -> tuple[float, float]:
    """zᵀ(b − A x) over the free dofs, and zᵀb (its scale)."""
    r = solver.A.createVecLeft()
    solver.A.mult(solver.u.x.petsc_vec, r)
    r.aypx(-1.0, solver.b)
    z = solver.A.createVecRight()
    z.set(1.0)
    for bc in solver.bcs:
        dofs, n_own = bc.dof_indices()
        z.array_w[dofs[:n_own]] = 0.0
    out = r.dot(z), solver.b.dot(z)
    r.destroy()
    z.destroy()
    return out


def _a_norm_error(solver: LinearSolver, exact: np.ndarray) -> float:
    e = solver.A.createVecRight()
    n = len(e.array_r)
    e.array_w[:] = solver.u.x.array[:n] - exact[:n]
    Ae = e.duplicate()
    solver.A.mult(e, Ae)
    out = Ae.dot(e)
    e.destroy()
    Ae.destroy()
    return float(np.sqrt(max(out, 0.0)))


@pytest.mark.parametrize("dirichlet", [False, True])
def test_conserve_makes_the_step_balance_exact_at_a_loose_tolerance(comm, dirichlet):
    exact = _step_problem(comm, 1e-12, False, dirichlet)
    ref = exact.u.x.array.copy()
    loose = _step_problem(comm, 1e-3, False, dirichlet)
    fixed = _step_problem(comm, 1e-3, True, dirichlet)
    assert loose.iterations == fixed.iterations < exact.iterations
    res_loose, scale = _free_residual_sum(loose)
    res_fixed, _ = _free_residual_sum(fixed)
    # Without the correction a loose Krylov tolerance leaves a balance error ...
    assert abs(res_loose) / abs(scale) > 1e-8, res_loose / scale
    # ... with it the step balances to rounding, and the solution is no worse.
    assert abs(res_fixed) / abs(scale) < 1e-13, res_fixed / scale
    assert fixed.correction != 0.0
    assert _a_norm_error(fixed, ref) <= _a_norm_error(loose, ref) * (1 + 1e-12)
    # Dirichlet values are untouched by the correction.
    for bc in fixed.bcs:
        dofs, n_own = bc.dof_indices()
        assert np.allclose(fixed.u.x.array[dofs[:n_own]], 0.7, atol=1e-14)
    for s in (exact, loose, fixed):
        s.destroy()


#: The baseline's three growth factors on a small mesh, every kind of source
#: (microspheres, infusion, grafts) but no affinity carrier, for a few days.
SHARED = ['geometry.resolution="0.45 mm"', 'geometry.cord.length="6 mm"', "axons.enabled=false",
          "mechanics.enabled=false",
          "cells.cohorts=[{name='graft', transplant_time='0.5 day', "
          "secretion={GDNF='5e-7 ng/cell/day', NT3='2e-7 ng/cell/day'}}]"]


def _species_after(study, steps: int, share: bool, monkeypatch) -> dict[str, np.ndarray]:
    comm = MPI.COMM_WORLD
    if not share:
        monkeypatch.setattr(species_module, "operator_key", lambda cfg: None)
    mesh, cells, facets = load_mesh(ensure_mesh(study.geometry, comm), comm,
                                    ghost_mode="shared_facet")
    with CoupledModel(study, mesh, cells, facets) as model:
        groups = model.species.operator_groups
        for _ in range(steps):
            model.step(1.0)
        out = {sp.name: sp.c.x.array.copy() for sp in model.species.members}
        out["groups"] = groups
        out["balance"] = {n: model.ledger.error(n) for n in model.species_names}
    monkeypatch.undo()
    return out


def test_identical_species_share_one_operator_and_get_the_same_answer(monkeypatch):
    study = load_study(BASELINE, [*SHARED, 'time.duration="4 day"'])
    shared = _species_after(study, 4, True, monkeypatch)
    alone = _species_after(study, 4, False, monkeypatch)
    assert shared["groups"] == [("BDNF", "NT3", "GDNF")]
    assert alone["groups"] == [("BDNF",), ("NT3",), ("GDNF",)]
    for name in ("BDNF", "NT3", "GDNF"):
        scale = max(np.abs(alone[name]).max(), 1e-30)
        assert np.abs(shared[name] - alone[name]).max() / scale < 1e-7, name
        assert shared["balance"][name] < 1e-10, (name, shared["balance"][name])
    assert min(np.abs(shared[n]).max() for n in ("BDNF", "NT3", "GDNF")) > 0


def test_a_species_with_its_own_parameters_gets_its_own_operator():
    comm = MPI.COMM_WORLD
    study = load_study(BASELINE, [*SHARED, 'species.NT3.half_life="2 h"',
                                  "species.GDNF.carriers=[{preset='heparin_fibrin'}]"])
    mesh, cells, facets = load_mesh(ensure_mesh(study.geometry, comm), comm,
                                    ghost_mode="shared_facet")
    with CoupledModel(study, mesh, cells, facets) as model:
        assert model.species.operator_groups == [("BDNF",), ("NT3",), ("GDNF",)]


def test_solver_timings_cover_a_field_alive_on_one_rank_only(comm):
    """provenance's per-field timings: the union of the ranks' fields in one reduction,
    so a solver some rank has not collected yet cannot mispair the collectives."""
    solver = (_step_problem(MPI.COMM_SELF, 1e-8, True, False, field="timings_test")
              if comm.rank == 0 else None)
    seconds = comm.bcast(solver.seconds if solver is not None else None, root=0)
    timings = solver_timings(comm)
    row = timings["timings_test"]
    assert row["seconds"] == pytest.approx(seconds) and seconds > 0  # the slowest rank's
    assert row["solves"] == (1 if comm.rank == 0 else 0)  # this rank's own count
    if solver is not None:
        solver.destroy()


def test_options_petsc_refuses_are_bad_input_naming_the_field(comm):
    """[solver.*] options that PETSc refuses when the solver is built (MUMPS has no
    incomplete Cholesky): a StudyError (exit 2) naming the field and its options, not a
    PETSc traceback (exit 1); the options leave PETSc's database."""
    msh = mesh.create_unit_cube(comm, 3, 3, 3)
    V = fem.functionspace(msh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = (u * v + ufl.inner(ufl.grad(u), ufl.grad(v))) * ufl.dx
    bad = {"ksp_type": "preonly", "pc_type": "icc", "pc_factor_mat_solver_type": "mumps"}
    before = PETSc.Options().getAll()
    with pytest.raises(StudyError) as err:
        LinearSolver(a, v * ufl.dx, fem.Function(V), field="probe", petsc_options=bad)
    assert err.value.exit_code == 2
    msg = str(err.value)
    assert "field 'probe'" in msg and "PETSc error code" in msg
    assert "pc_type = 'icc'" in msg and "pc_factor_mat_solver_type = 'mumps'" in msg
    assert PETSc.Options().getAll() == before
