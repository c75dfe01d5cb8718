"""What the solvers of :mod:`scaffoldfem.fem.solver` share: options prefixes and their
database entries, converged-reason names, the finiteness check, the rigid-body
near-nullspace, and the per-field statistics of the live solvers."""

from __future__ import annotations

import itertools
import math
import re
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
from dolfinx import fem, la
from mpi4py import MPI
from petsc4py import PETSc

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.errors import SolverError, StudyError

__all__ = ["BalanceCorrection", "KeptPreconditioner", "Options", "check_finite", "from_options",
           "preset_of", "reason_name", "rigid_body_modes", "solver_statistics",
           "solver_timings", "track", "unique_prefix"]

_counter = itertools.count()
#: The per-field counters of :func:`solver_statistics`, in this order.
_STAT_KEYS = ("solves", "seconds", "iterations", "assemblies", "assembly_seconds",
              "pc_setups")
#: Every LinearSolver alive in this process, for :func:`solver_statistics`.
_live: weakref.WeakSet = weakref.WeakSet()


def track(solver: Any) -> None:
    """Count ``solver`` in :func:`solver_statistics` while it lives."""
    _live.add(solver)


def solver_statistics() -> dict[str, dict[str, float]]:
    """Per field name, over the live :class:`LinearSolver` objects of this rank: solves,
    their wall time (s), Krylov iterations, matrix assemblies and their time (s), and
    preconditioner set-ups."""
    out: dict[str, dict[str, float]] = {}
    for s in sorted(_live, key=lambda s: s.prefix):
        if getattr(s, "destroyed", False):  # an earlier model's, not yet collected
            continue
        row = out.setdefault(s.field, dict.fromkeys(_STAT_KEYS, 0.0))
        row["solves"] += s.solves
        row["seconds"] += s.seconds
        row["iterations"] += s.total_iterations
        row["assemblies"] += s.assemblies
        row["assembly_seconds"] += s.assembly_seconds
        row["pc_setups"] += s._pc.setups if hasattr(s, "_pc") else s.assemblies
    return out


def solver_timings(comm: Any) -> dict[str, dict[str, float]]:
    """Collective: per solved field (this run segment) solves, Krylov iterations,
    matrix assemblies (this rank's), and the wall time (s, the slowest rank) of the
    solves and of the assemblies (:func:`solver_statistics`).

    The fields are the union over the ranks, and one reduction covers them all, so a
    solver alive on some ranks only (not yet collected elsewhere) cannot mispair the
    collectives; a field this rank does not know counts zero here.
    """
    stats = solver_statistics()
    names = sorted(set().union(*comm.allgather(sorted(stats))))
    local = np.array([[stats.get(n, {}).get(k, 0.0) for k in _STAT_KEYS] for n in names],
                     dtype=np.float64).reshape(len(names), len(_STAT_KEYS))
    slowest = np.empty_like(local)
    comm.Allreduce(local, slowest, op=MPI.MAX)
    return {n: {k: float((slowest if k.endswith("seconds") else local)[i, j])
                for j, k in enumerate(_STAT_KEYS)} for i, n in enumerate(names)}


def reason_name(enum: Any, code: int) -> str:
    for name in dir(enum):
        if not name.startswith("_") and getattr(enum, name) == code:
            return name
    return f"reason {code}"


def unique_prefix(field: str) -> str:
    # Same on all ranks: solvers are created collectively in the same order.
    return f"sfem_{re.sub(r'[^A-Za-z0-9]', '_', field)}_{next(_counter)}_"


class BalanceCorrection:
    """The Galerkin correction on span{z} that makes a transport step's global balance
    exact (``LinearSolver(conserve=True)``): ``z`` is 1 on the free dofs, 0 on the
    Dirichlet dofs (their rows are not balanced)."""

    def __init__(self):
        #: The free-dof indicator (None until :meth:`prepare`).
        self.z: PETSc.Vec | None = None
        self._w: PETSc.Vec | None = None  # Aᵀz
        self._zAz = 0.0

    def prepare(self, A: PETSc.Mat, bcs: Any) -> None:
        """``z``, ``Aᵀz`` and ``zᵀAz`` for a newly assembled ``A``."""
        if self.z is None:
            self.z, self._w = A.createVecLeft(), A.createVecRight()
            self.z.set(1.0)
            for bc in bcs:
                dofs, n_own = bc.dof_indices()
                self.z.array_w[dofs[:n_own]] = 0.0
        A.multTranspose(self.z, self._w)
        self._zAz = self._w.dot(self.z)

    def apply(self, A: PETSc.Mat, b: PETSc.Vec, x: PETSc.Vec) -> float:
        """Remove the free-dof sum of the residual: ``x += β z``, ``β = zᵀr / zᵀAz``;
        returns β (the mean residual the Krylov tolerance left). ``zᵀ(b − Ax)`` is
        ``zᵀb − (Aᵀz)ᵀx``: two dot products, no matrix-vector product."""
        beta = (self.z.dot(b) - self._w.dot(x)) / self._zAz if self._zAz > 0 else 0.0
        if beta:
            x.axpy(beta, self.z)
        return beta

    def destroy(self) -> None:
        for v in (self.z, self._w):
            if v is not None:
                v.destroy()
        self.z = self._w = None


class KeptPreconditioner:
    """When a :class:`~scaffoldfem.fem.solver.LinearSolver` may keep the preconditioner
    of an earlier matrix (its ``stale_preconditioner`` factor; None: never).

    A solve with a kept preconditioner may take at most ``factor`` times the
    iterations of the solve after the last fresh set-up; one that would take more
    stops there (DIVERGED_ITS) and the solver sets up afresh and solves again. So a
    kept hierarchy costs at most ``factor`` x the fresh iterations before it is
    replaced, and the answer is always converged to the solver's tolerance.

    A kept solve converges to ``tighten`` x the solver's relative tolerance (and its
    cap grows by the extra orders): its answer then differs from a fresh set-up's by
    less than a fresh solve's own error, so whether (and since when) a hierarchy was
    kept, which depends on the rank count and on a resume, does not show in the
    results at the solver's tolerance.
    """

    def __init__(self, factor: float | None, tighten: float = 1.0e-2):
        self.factor, self.tighten = factor, tighten
        self.fresh_iterations: int | None = None
        self._saved: tuple[float, int] | None = None  # the solver's (rtol, max_it), while kept
        #: Preconditioner set-ups so far (fewer than matrix assemblies when kept).
        self.setups = 0

    def keep(self, ksp: Any) -> bool:
        """The matrix is about to change: keep the preconditioner? (Told to ``ksp``,
        with the tolerance and iteration cap of a kept solve.)"""
        kept = self.factor is not None and self.fresh_iterations is not None
        if self.factor is not None:
            ksp.getPC().setReusePreconditioner(kept)
        if kept:
            rtol, _, _, max_it = ksp.getTolerances()
            self._saved = (rtol, max_it)
            orders = math.log(rtol * self.tighten) / math.log(rtol) if 0 < rtol < 1 else 1.0
            cap = max(int(self.factor * orders * max(self.fresh_iterations, 1)), 1)
            ksp.setTolerances(rtol=rtol * self.tighten, max_it=min(cap, max_it))
        self.setups += not kept
        return kept

    def _uncap(self, ksp: Any) -> None:
        if self._saved is not None:
            rtol, max_it = self._saved
            ksp.setTolerances(rtol=rtol, max_it=max_it)
            self._saved = None

    def rebuild(self, ksp: Any) -> bool:
        """The kept preconditioner failed: set up afresh (returns False, "not kept")."""
        self._uncap(ksp)
        ksp.getPC().setReusePreconditioner(False)
        ksp.setUp()
        self.setups += 1
        return False

    def solved(self, ksp: Any, kept: bool, reason: int, iterations: int) -> None:
        """After the solve: lift the cap; a fresh set-up's iterations are the reference."""
        self._uncap(ksp)
        if self.factor is not None and not kept and reason >= 0:
            self.fresh_iterations = iterations


class Options:
    """Options of one solver in PETSc's database under its unique prefix.

    They stay in the database until the first setup, because PETSc reads some
    of them only then (multigrid level smoothers are created in PCSetUp), and
    are removed afterwards so no unused-option warnings remain at exit.
    """

    def __init__(self, prefix: str, opts: Mapping[str, Any]):
        self.prefix, self.opts = prefix, dict(opts)
        # An Options object with its own prefix (prefixPush is ignored by delValue).
        self._db = PETSc.Options(prefix)
        for k, v in self.opts.items():
            self._db[k] = "" if v is None else v
        self.active = True

    def clear(self) -> None:
        if self.active:
            for k in self.opts:
                del self._db[k]
            self.active = False


def from_options(solver: Any, opts: Options, field: str,
                 user: Mapping[str, Any] | None) -> None:
    """Collective: ``solver.setFromOptions()`` (a KSP or SNES) from ``opts``; a refusal
    by PETSc (options that do not go together) is bad input, naming the field's
    options (``opts`` then leave the database).

    Raises:
        StudyError: PETSc refused the options.
    """
    try:
        solver.setFromOptions()
    except PETSc.Error as err:
        opts.clear()
        given = ", ".join(f"{k} = {v!r}" for k, v in (user or {}).items()) or "none"
        raise StudyError([
            f"solver: PETSc refused the options of field '{field}' (PETSc error code "
            f"{err.ierr}); the [solver.*] options given for it: {given}"]) from None


def rigid_body_modes(V: fem.FunctionSpace) -> PETSc.NullSpace:
    """Orthonormal rigid-body modes (3 translations + 3 rotations in 3D) of ``V``.

    The near-nullspace lets smoothed-aggregation GAMG build coarse spaces that
    represent rigid motions, which elasticity needs for mesh-independent
    iteration counts (Vaněk, Mandel & Brezina 1996).
    """
    gdim = V.mesh.geometry.dim
    bs = V.dofmap.index_map_bs
    if bs != gdim:
        raise ValueError("rigid-body modes need a vector space with block size = gdim")
    n_modes = 6 if gdim == 3 else 3
    n_own = V.dofmap.index_map.size_local
    basis = [la.vector(V.dofmap.index_map, bs=bs, dtype=PETSc.ScalarType) for _ in range(n_modes)]
    x = V.tabulate_dof_coordinates()[:n_own]
    arrs = [b.array[: n_own * bs].reshape(n_own, bs) for b in basis]
    for i in range(gdim):
        arrs[i][:, i] = 1.0
    if gdim == 3:
        arrs[3][:, 0], arrs[3][:, 1] = -x[:, 1], x[:, 0]
        arrs[4][:, 0], arrs[4][:, 2] = x[:, 2], -x[:, 0]
        arrs[5][:, 2], arrs[5][:, 1] = x[:, 1], -x[:, 2]
    else:
        arrs[2][:, 0], arrs[2][:, 1] = -x[:, 1], x[:, 0]
    la.orthonormalize(basis)
    vecs = []
    for b in basis:
        vec = PETSc.Vec().createWithArray(b.array[: n_own * bs], bsize=bs, comm=V.mesh.comm)
        vec.setAttr("_sfem_owner", b)  # the Vec shares memory with b: keep b alive
        vecs.append(vec)
    return PETSc.NullSpace().create(vectors=vecs, comm=V.mesh.comm)


def preset_of(preset: str, user: Mapping[str, Any] | None) -> str:
    """The preset in force: the user's ``preset`` option, if any, replaces ours."""
    return str((user or {}).get("preset", preset))


def check_finite(u: fem.Function, field: str, time: float) -> None:
    n_own = u.function_space.dofmap.index_map.size_local * u.function_space.dofmap.index_map_bs
    bad = int(not np.all(np.isfinite(u.x.array[:n_own])))
    # Every rank takes the same decision (never raise on one rank only).
    if u.function_space.mesh.comm.allreduce(bad, op=MPI.MAX):
        raise SolverError(field, time, "NaN/Inf in solution")


