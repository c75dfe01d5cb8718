"""Object lifetimes across tests: a destroyed solver lets its mesh go.

A 2-rank pytest process over every test file used to die with exit 15 in
test_tracing.py: MPICH had run out of its ~2048 communicator context ids, because
every ``ufl.derivative`` kept its form, hence the dolfinx mesh and the
communicators the mesh duplicates, alive for good (Python 3.13.0's
``singledispatchmethod`` cache, switched off by tests/conftest.py). These tests
fail if that comes back (or if a solver starts holding on to its mesh).
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

import gc
import weakref

import scaffoldfem  # noqa: F401
import ufl
from conftest import free_context_ids
from dolfinx import fem
from dolfinx import mesh as dmesh

from scaffoldfem.fem.solver import LinearSolver


def _solve_once(comm) -> weakref.ref:
    """A transport-like solve whose right-hand side is split (``ufl.derivative``),
    destroyed afterwards; returns a weak reference to its mesh."""
    msh = dmesh.create_box(comm, [[0, 0, 0], [1, 1, 1]], [3, 3, 3])
    V = fem.functionspace(msh, ("Lagrange", 1))
    u, f = fem.Function(V), fem.Function(V)
    f.x.array[:] = 1.0
    w, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = (0.1 * ufl.inner(ufl.grad(w), ufl.grad(v)) + w * v) * ufl.dx
    solver = LinearSolver(a, f * v * ufl.dx, u, field="lifetime", rhs_coefficients=[f])
    solver.solve(0.0)
    assert abs(comm.allreduce(float(u.x.array[: V.dofmap.index_map.size_local].sum()))) > 0
    solver.destroy()
    return weakref.ref(msh)


def test_destroyed_solver_frees_its_mesh(comm):
    ref = _solve_once(comm)
    gc.collect()
    assert ref() is None, "the mesh outlived its destroyed solver"


def test_repeated_solves_keep_communicators(comm):
    """Once warm (form compiled), building and destroying a solver on a new mesh
    returns every MPI context id it took."""
    _solve_once(comm)
    gc.collect()
    before = free_context_ids(comm)
    for _ in range(3):
        _solve_once(comm)
    gc.collect()
    assert free_context_ids(comm) == before
