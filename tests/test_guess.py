"""The projected initial guess (fem/guess.py, issue 14) saves iterations and keeps the
answer: it is the Galerkin projection on the last solutions, never worse than the
plain warm start, exact for a solution in their span, repeatable after a restore and
switched off by ``[solver.<field>] guess_levels = 0``."""

from __future__ import annotations

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

import scaffoldfem  # noqa: F401
from scaffoldfem.config.study import load_study
from scaffoldfem.errors import StudyError
from scaffoldfem.fem.guess import ProjectedGuess
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.model.coupled import CoupledModel
from tests.test_run import BASELINE
from tests.test_speed_solver import SHARED


def _problem(comm, levels: int, dirichlet: bool = False):
    """A backward-Euler reaction-diffusion step whose source f is set per solve (with
    ``dirichlet``: c = 0.7 on the face z = 0)."""
    msh = mesh.create_unit_cube(comm, 8, 8, 8)
    V = fem.functionspace(msh, ("Lagrange", 1))
    c, f = fem.Function(V), fem.Function(V)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = (2.0 * u * v + 0.05 * ufl.inner(ufl.grad(u), ufl.grad(v)) + 0.3 * u * v) * ufl.dx
    bcs = []
    if dirichlet:
        msh.topology.create_connectivity(2, 3)
        facets = mesh.locate_entities_boundary(msh, 2, lambda p: np.isclose(p[2], 0.0))
        bcs = [fem.dirichletbc(0.7, fem.locate_dofs_topological(V, 2, facets), V)]
    solver = LinearSolver(a, f * v * ufl.dx, c, bcs, field="guess_test",
                          petsc_options={"guess_levels": levels}, rhs_coefficients=[f])
    g = [fem.Function(V) for _ in range(3)]
    g[0].interpolate(lambda p: 1.0 + np.sin(3 * p[0]) * np.cos(2 * p[1]))
    g[1].interpolate(lambda p: np.exp(-20 * ((p[0] - 0.3) ** 2 + (p[2] - 0.6) ** 2)))
    g[2].interpolate(lambda p: p[1] * p[2])
    return solver, f, g


@pytest.mark.parametrize("levels", [0, 3])
def test_a_solution_in_the_span_of_the_last_three_needs_no_iterations(comm, levels):
    # f_k = g0 + k g1 + k² g2: the solutions are quadratic in k, so the fourth lies in
    # the span of the first three and the projected guess is it (to their tolerance).
    solver, f, g = _problem(comm, levels)
    its = []
    for k in range(4):
        f.x.array[:] = g[0].x.array + k * g[1].x.array + k**2 * g[2].x.array
        its.append(solver.solve(float(k)))
    last = solver.u.x.array.copy()
    solver.u.x.array[:] = 0.0
    solver.guess.forget()
    solver.solve(3.0)  # the same system from zero, without a history
    scale = np.abs(last).max()
    assert np.abs(solver.u.x.array - last).max() / scale < 1e-7
    if levels:
        assert its[3] == 0 and min(its[:3]) >= 3, its
    else:
        assert its[3] >= 3, its
    solver.destroy()


def test_the_projected_guess_is_never_worse_than_the_warm_start_in_the_energy_norm(comm):
    solver, f, g = _problem(comm, 3)
    rng = np.random.default_rng(7 + comm.rank)
    for k in range(3):  # unrelated right-hand sides: the history does not predict
        f.x.array[:] = rng.normal(size=f.x.array.shape)
        f.x.scatter_forward()
        solver.solve(float(k))
    f.x.array[:] = g[1].x.array
    b = solver.assemble_rhs().copy()
    exact = solver.u.x.petsc_vec.duplicate()
    plain = solver.u.x.petsc_vec.copy()
    guess = solver.u.x.petsc_vec.copy()
    solver.ksp.solve(b, exact)  # warm start from plain: exact to 1e-8
    for _ in range(3):
        solver.ksp.setTolerances(rtol=1e-12)
        solver.ksp.solve(b, exact)
    solver.guess.apply(solver.A, b, guess, id(solver.u))

    def energy(x):
        e = x.copy()
        e.axpy(-1.0, exact)
        Ae = e.duplicate()
        solver.A.mult(e, Ae)
        return Ae.dot(e)

    assert energy(guess) <= energy(plain) * (1 + 1e-10), (energy(guess), energy(plain))
    solver.destroy()


def test_dirichlet_values_stay_exact_whatever_the_projection_weights(comm):
    # Unrelated sources: the projection weighs the last level by c0 != 1, which would
    # scale the Dirichlet values too; they are reset, so they stay exact (not only to
    # the Krylov tolerance).
    solver, f, _ = _problem(comm, 3, dirichlet=True)
    rng = np.random.default_rng(3 + comm.rank)
    for k in range(5):
        f.x.array[:] = rng.normal(size=f.x.array.shape) * (1 + k)
        f.x.scatter_forward()
        solver.solve(float(k))
    dofs, n_own = solver.bcs[0].dof_indices()
    assert np.abs(solver.u.x.array[dofs[:n_own]] - 0.7).max(initial=0.0) < 1e-14
    solver.destroy()


def test_history_round_trip_and_levels_checked(comm):
    solver, f, g = _problem(comm, 2)
    for k in range(3):
        f.x.array[:] = (1 + k) * g[1].x.array
        solver.solve(float(k))
    saved = solver.history()
    assert len(saved) == 2  # two levels of one unknown
    solver.restore_history({})
    assert solver.history() == {}
    solver.restore_history(saved)
    again = solver.history()
    assert saved.keys() == again.keys()
    assert all(np.array_equal(saved[k], again[k]) for k in saved)
    solver.destroy()
    with pytest.raises(ValueError, match="levels"):
        ProjectedGuess(-1)


def _coupled(extra: list[str], steps: int):
    comm = MPI.COMM_WORLD
    study = load_study(BASELINE, [*SHARED, 'time.duration="6 day"', *extra])
    m, cells, facets = load_mesh(ensure_mesh(study.geometry, comm), comm,
                                 ghost_mode="shared_facet")
    with CoupledModel(study, m, cells, facets) as model:
        for _ in range(steps):
            model.step(0.5)
        out = {sp.name: sp.c.x.array.copy() for sp in model.species.members}
        stats = {s.field: s.total_iterations for s in _linear(model)}
        balance = {n: model.ledger.error(n) for n in model.species_names}
    return out, stats, balance


def _linear(model):
    seen = []
    for sp in model.species.members:
        for s in sp.solvers.values():
            if isinstance(s, LinearSolver) and s not in seen:
                seen.append(s)
    return seen


def test_coupled_model_fewer_iterations_and_the_same_fields_as_the_plain_warm_start():
    plain, its_plain, _ = _coupled(["solver.transport.guess_levels=0"], 10)
    proj, its_proj, balance = _coupled([], 10)
    for name, x in plain.items():
        scale = max(np.abs(x).max(), 1e-30)
        assert np.abs(proj[name] - x).max() / scale < 1e-6, name
        assert balance[name] < 1e-10, (name, balance[name])
    assert sum(its_proj.values()) < 0.8 * sum(its_plain.values()), (its_proj, its_plain)


@pytest.mark.parametrize("value", ["-1", "9", "1.5", "true"])
def test_guess_levels_out_of_range_is_refused_in_one_line(value):
    with pytest.raises(StudyError) as err:
        load_study(BASELINE, [f"solver.transport.guess_levels={value}"])
    assert "solver.transport.guess_levels" in str(err.value)
    assert "whole number from 0 to 8" in str(err.value)


def test_small_changes_where_the_operator_is_soft_are_predicted(comm):
    """Solutions that move by ~1e-8 of themselves, only where the operator is 1e5 times
    softer (the degrading scaffold in the cord): the next one is in the span of the
    last three, and the guess finds it. The basis products are those of the (exact)
    differences: as differences of the products ``A hⱼ`` they would lose the digits
    the guess needs (measured: 178 instead of 68 elasticity iterations, medium)."""
    msh = mesh.create_unit_cube(comm, 8, 8, 8)
    V = fem.functionspace(msh, ("Lagrange", 1))
    kappa = fem.Function(fem.functionspace(msh, ("DG", 0)))
    kappa.interpolate(lambda p: np.where(p[0] < 0.5, 1.0e5, 1.0))
    c, f = fem.Function(V), fem.Function(V)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = kappa * (ufl.inner(ufl.grad(u), ufl.grad(v)) + u * v) * ufl.dx
    direct = LinearSolver(a, f * v * ufl.dx, c, field="guess_direct", preset="mumps",
                          rhs_coefficients=[f])
    g0, g1, g2 = (fem.Function(V) for _ in range(3))
    g0.interpolate(lambda p: 1.0e5 * (1.0 + p[1] + p[2]))
    g1.interpolate(lambda p: np.where(p[0] > 0.6, np.sin(3 * p[1]) + p[2], 0.0))
    g2.interpolate(lambda p: np.where(p[0] > 0.6, np.cos(2 * p[2]) * p[1], 0.0))
    delta = 1.0e-3  # soft-region change per step: ~1e-8 of the solution there
    sols = []
    for k in range(4):
        f.x.array[:] = g0.x.array + delta * (k * g1.x.array + k**2 * g2.x.array)
        direct.solve(float(k))
        sols.append(c.x.petsc_vec.copy())
    guess = ProjectedGuess(3)
    for h in sols[:3]:
        guess.record(h, 0)
    b = direct.assemble_rhs().copy()  # f of k = 3
    x = sols[2].copy()
    assert guess.apply(direct.A, b, x, 0)
    x.axpy(-1.0, sols[3])
    change = sols[3].copy()
    change.axpy(-1.0, sols[2])
    assert change.norm() > 1e-10 * sols[3].norm()  # it moved (beyond rounding)
    assert x.norm() < 1e-3 * change.norm(), (x.norm(), change.norm())
    for vec in (*sols, b, x, change):
        vec.destroy()
    guess.destroy()
    direct.destroy()


def test_kept_products_give_the_guess_of_new_ones_and_follow_the_matrix(comm):
    """The solver's guess, with its kept difference products, has the bits of a guess
    built afresh from the same history, also right after the matrix changed (a kept
    product of the old matrix would give another guess)."""
    msh = mesh.create_unit_cube(comm, 6, 6, 6)
    V = fem.functionspace(msh, ("Lagrange", 1))
    kc = fem.Constant(msh, 1.0)
    c, f, g1 = fem.Function(V), fem.Function(V), fem.Function(V)
    g1.interpolate(lambda p: np.sin(3 * p[0]) * p[1])
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = (kc * u * v + 0.05 * ufl.inner(ufl.grad(u), ufl.grad(v))) * ufl.dx
    solver = LinearSolver(a, f * v * ufl.dx, c, field="guess_kept", rhs_coefficients=[f])
    for k in range(6):
        if k == 4:
            kc.value = 3.0
            solver.invalidate()
        f.x.array[:] = 1.0 + k * g1.x.array + 0.1 * k**2
        solver.assemble_matrix()
        b = solver.assemble_rhs().copy()
        afresh = ProjectedGuess(3)
        afresh.put(0, solver.guess.get(id(c)), like=b)
        kept, new = c.x.petsc_vec.copy(), c.x.petsc_vec.copy()
        used = solver.guess.apply(solver.A, b, kept, id(c))
        assert used == afresh.apply(solver.A, b, new, 0) == (k > 0)
        assert np.array_equal(kept.array, new.array), k
        solver.solve(float(k))
        for vec in (b, kept, new):
            vec.destroy()
        afresh.destroy()
    solver.destroy()
