"""Benchmark of the transport step against the floor of the stack.

:func:`bench_transport` times backward-Euler steps of one species through
:class:`scaffoldfem.fem.solver.LinearSolver` (right-hand-side assembly, Dirichlet
lifting, solve, converged-reason and NaN checks) and, interleaved on the same
steps, a bare PETSc KSP solve of the same assembled matrix with the *same*
preconditioner object, the same right-hand side and the same initial guess.
The ratio of the two is the overhead of the class (target <= 1.2).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI
from petsc4py import PETSc

from scaffoldfem.fem.compat import global_size, interpolate_expression
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.physics.materials import TISSUE, half_life_to_rate
from scaffoldfem.physics.transport import host_diffusivity, transport_forms

__all__ = ["bench_transport"]


def _bbox(msh: dmesh.Mesh) -> tuple[np.ndarray, np.ndarray]:
    x = msh.geometry.x
    lo_loc = x.min(axis=0) if len(x) else np.full(3, np.inf)
    hi_loc = x.max(axis=0) if len(x) else np.full(3, -np.inf)
    lo, hi = np.empty(3), np.empty(3)
    msh.comm.Allreduce(lo_loc, lo, op=MPI.MIN)
    msh.comm.Allreduce(hi_loc, hi, op=MPI.MAX)
    return lo, hi


def bench_transport(msh: dmesh.Mesh, *, degree: int = 1, steps: int = 10, dt: float = 0.25,
                    half_life: float = 0.25, petsc_options: dict[str, Any] | None = None,
                    warmup: int = 1, rhs_matrices: bool = True) -> dict[str, Any]:
    """Time transport steps via :class:`LinearSolver` against a bare KSP solve.

    A Gaussian source at the centre of the mesh's bounding box, host
    diffusivity (NGF, α = 0.2, λ = 1.6) and first-order decay; the matrix is
    assembled once (constant Δt) so each step is RHS assembly + solve.

    Args:
        msh: Any 3D mesh (e.g. ``create_box`` or the cord mesh).
        degree: Lagrange degree.
        steps: Timed steps.
        dt: Step (day).
        half_life: Decay half-life (day).
        petsc_options: Options merged over the ``transport`` preset.
        warmup: Untimed steps first (matrix assembly, PC setup, caches).
        rhs_matrices: Build the RHS from precomputed matrices (``c_old`` and the
            source as ``rhs_coefficients``) instead of assembling it each step.

    Returns:
        Dict with ``ndofs``, ``nranks``, ``steps``, ``t_matrix`` (one
        assembly, s), ``t_setup`` (first solve incl. PC setup, s),
        ``t_step`` (mean per step via the class, s), ``t_rhs`` (its RHS
        assembly part), ``t_bare`` (mean bare KSP solve, s), ``ratio``
        (t_step / t_bare), ``iterations`` and ``bare_iterations`` (means).
        Times are the maximum over ranks. Identical on every rank.
    """
    comm = msh.comm
    V = fem.functionspace(msh, ("Lagrange", degree))
    lo, hi = _bbox(msh)
    centre = 0.5 * (lo + hi)
    width = 0.1 * float(np.linalg.norm(hi - lo))
    x = ufl.SpatialCoordinate(msh)
    r2 = sum((x[i] - centre[i]) ** 2 for i in range(msh.geometry.dim))
    # Sources in the coupled loop are P1/DG0 Functions (release, secretion, doses).
    src = interpolate_expression(fem.Function(V), 100.0 * ufl.exp(-r2 / width**2))
    alpha = TISSUE["alpha_host"][0]
    D = host_diffusivity(TISSUE["D_free_ngf"][0], alpha, TISSUE["tortuosity_host"][0])
    c, c_old = fem.Function(V), fem.Function(V)
    k = fem.Constant(msh, half_life_to_rate(half_life))
    dt_c = fem.Constant(msh, dt)
    a, L = transport_forms(ufl.TrialFunction(V), ufl.TestFunction(V), c_old, alpha, alpha, D, k,
                           dt_c, src, scheme="be")
    # The plain warm start, as the bare KSP's: the ratio is the solver's overhead.
    solver = LinearSolver(a, L, c, field="bench", preset="transport",
                          petsc_options=petsc_options, guess_levels=0,
                          rhs_coefficients=[c_old, src] if rhs_matrices else ())

    def tmax(t: float) -> float:
        return comm.allreduce(t, op=MPI.MAX)

    comm.barrier()
    t0 = time.perf_counter()
    solver.assemble_matrix()
    t_matrix = tmax(time.perf_counter() - t0)
    comm.barrier()
    t0 = time.perf_counter()
    for n in range(max(warmup, 1)):
        solver.solve(n * dt)
        c_old.x.array[:] = c.x.array
    t_setup = tmax(time.perf_counter() - t0)

    # The bare solver shares the matrix *and* the already set-up PC object.
    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(solver.A)
    ksp.setType(solver.ksp.getType())
    ksp.setTolerances(*solver.ksp.getTolerances())
    ksp.setNormType(solver.ksp.getNormType())
    ksp.setPC(solver.ksp.getPC())
    ksp.setInitialGuessNonzero(solver.ksp.getInitialGuessNonzero())
    x_bare = solver.b.duplicate()

    t_ours = t_rhs = t_bare = 0.0
    its = its_bare = 0
    for n in range(steps):
        x0 = c.x.petsc_vec.copy()
        comm.barrier()
        t0 = time.perf_counter()
        solver.solve((n + warmup) * dt)
        t_ours += time.perf_counter() - t0
        its += solver.iterations
        # RHS assembly alone (for the breakdown); reassembling gives the same b.
        comm.barrier()
        t0 = time.perf_counter()
        solver.assemble_rhs()
        t_rhs += time.perf_counter() - t0
        x0.copy(x_bare)
        comm.barrier()
        t0 = time.perf_counter()
        ksp.solve(solver.b, x_bare)
        t_bare += time.perf_counter() - t0
        its_bare += ksp.getIterationNumber()
        if ksp.getConvergedReason() < 0:
            raise RuntimeError(f"bare KSP diverged: {ksp.getConvergedReason()}")
        x0.destroy()
        c_old.x.array[:] = c.x.array
    x_bare.destroy()
    ksp.setPC(PETSc.PC().create(comm))  # detach the shared PC before destroying
    ksp.destroy()
    t_ours, t_rhs, t_bare = tmax(t_ours), tmax(t_rhs), tmax(t_bare)
    result = {
        "ndofs": global_size(V),
        "nranks": comm.size,
        "degree": degree,
        "steps": steps,
        "t_matrix": t_matrix,
        "t_setup": t_setup,
        "t_step": t_ours / steps,
        "t_rhs": t_rhs / steps,
        "t_bare": t_bare / steps,
        "ratio": t_ours / t_bare if t_bare > 0 else math.nan,
        "iterations": its / steps,
        "bare_iterations": its_bare / steps,
        "rhs_matrices": rhs_matrices,
    }
    solver.destroy()
    return result
