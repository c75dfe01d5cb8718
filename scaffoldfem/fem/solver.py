"""The only module that touches PETSc KSP/SNES.

* :class:`LinearSolver` assembles its matrix only when told the coefficients
  changed (:meth:`LinearSolver.invalidate`): its preconditioner serves every step.
* :class:`NonlinearSolver` wraps SNES (Newton) for the saturable uptake.
* Each solver gets a unique options prefix (``sfem_<field>_<n>_``); user
  options are merged over the preset's defaults; the converged reason is
  always checked and a failure raises :class:`SolverError` naming the field,
  the time and PETSc's reason.

Presets (:mod:`scaffoldfem.fem.solver_options`): ``"transport"`` (CG + GAMG,
reused interpolation), ``"elasticity"`` (CG + smoothed-aggregation GAMG, rigid-body
near-nullspace; unsmoothed on small systems, ``SMALL_SYSTEM``), ``"mumps"`` (direct
LU: the fallback for small or hard problems).
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Mapping, Sequence
from typing import Any

import dolfinx.fem.petsc as fpetsc
import numpy as np
import ufl
from dolfinx import fem
from petsc4py import PETSc

from scaffoldfem.errors import SolverError
from scaffoldfem.fem.cell_operator import Coefficients, operator_matrix
from scaffoldfem.fem.compat import compile_form, create_petsc_vector
from scaffoldfem.fem.guess import GUESS_KEY, ProjectedGuess
from scaffoldfem.fem.mass_action import MassTerm, WeightedMass, add_mass, split_mass
from scaffoldfem.fem.matrix import NativeMatrix, split_rhs
from scaffoldfem.fem.solver_base import (
    BalanceCorrection,
    KeptPreconditioner,
    Options,
    check_finite,
    from_options,
    preset_of,
    reason_name,
    rigid_body_modes,
    solver_statistics,
    track,
    unique_prefix,
)
from scaffoldfem.fem.solver_options import PRESETS, SNES_DEFAULTS, merged_options

__all__ = [
    "PRESETS",
    "LinearSolver",
    "NonlinearSolver",
    "SolverError",
    "merged_options",
    "rigid_body_modes",
    "solver_statistics",
]

class LinearSolver:
    """Linear solve ``a(u, v) = L(v)`` with matrix reuse and checked convergence.

    The matrix is assembled on the first solve and again only after
    :meth:`invalidate` (the caller knows when α, D, k or Δt changed). PETSc
    rebuilds the preconditioner only when the matrix changed; with the
    transport preset GAMG then reuses its interpolation. The solution is
    written in place into ``u``, whose current value is the initial guess.

    Args:
        a: Bilinear form (UFL or compiled).
        L: Linear form (UFL or compiled) or None for a zero right-hand side.
        u: Solution Function (also the initial guess).
        bcs: Dirichlet conditions.
        field: Name used in the options prefix and in error messages.
        preset: ``"transport"``, ``"elasticity"`` or ``"mumps"``.
        petsc_options: User options merged over the preset (no prefix).
        near_nullspace: True for rigid-body modes of ``u``'s space (elasticity),
            or an explicit ``PETSc.NullSpace``.
        rhs_coefficients: Functions that ``L`` is affine in and that change
            every step (``c_old``, sources). ``L`` is then split into
            ``Σ B_j f_j + L_rest`` with matrices ``B_j = ∂L/∂f_j`` assembled
            together with ``a`` (only when invalidated), so a step costs a few
            sparse mat-vecs instead of a volume assembly. Needs a UFL ``L``;
            a ValueError says if ``L`` is not affine in one of them. They are also
            what another field sharing this operator substitutes
            (:meth:`solve` with ``u`` and ``substitute``).
        mass_rhs: Terms ``(f, w, scale)``, ``∫ scale() w f v dx`` of ``L``, applied in
            closed form, not assembled (:mod:`scaffoldfem.fem.mass_action`).
        cellwise: ``(w, D, σ)`` or Lamé of ``a``: closed-form matrix (:mod:`~.cell_operator`).
        conserve: After each solve, correct the solution along the indicator ``z``
            of the free (non-Dirichlet) dofs so that ``zᵀ(b − A x) = 0`` to
            rounding: the global balance of a transport step (Σ over the P1 test
            functions, which sum to one) then holds exactly whatever the Krylov
            tolerance (the Galerkin correction on span{z}: it also lowers the
            A-norm error of an SPD system). Default: on for the ``transport`` preset.
        stale_preconditioner: Keep the preconditioner of an earlier matrix for a
            solve of at most this many times the iterations after the last fresh
            set-up; a solve that needs more is redone with a fresh set-up. For slowly
            changing operators whose set-up dominates (elasticity). None (default):
            a fresh set-up at every matrix change.
        guess_levels: With CG (an SPD system), start each solve from the Galerkin
            projection on the last ``guess_levels`` solutions of the same unknown
            (:mod:`scaffoldfem.fem.guess`; 0: from ``u`` as it is). For unknowns that
            evolve step by step; not for a solver whose calls take unrelated inputs.
            A ``guess_levels`` entry in ``petsc_options`` (a ``[solver.<field>]``
            key) overrides it.
        form_compiler_options, jit_options: Passed to :func:`dolfinx.fem.form`.
    """

    def __init__(self, a: ufl.Form | fem.Form, L: ufl.Form | fem.Form | None, u: fem.Function,
                 bcs: Sequence[fem.DirichletBC] = (), *, field: str, preset: str = "transport",
                 petsc_options: Mapping[str, Any] | None = None,
                 near_nullspace: bool | PETSc.NullSpace | None = None,
                 rhs_coefficients: Sequence[fem.Function] = (),
                 static_rhs: Sequence[fem.Function] = (),
                 mass_rhs: Sequence[MassTerm] = (), cellwise: Coefficients | None = None,
                 conserve: bool | None = None, stale_preconditioner: float | None = None,
                 guess_levels: int = 3,
                 form_compiler_options: dict | None = None, jit_options: dict | None = None):
        kw = {"form_compiler_options": form_compiler_options, "jit_options": jit_options}
        # A [solver.<field>] guess_levels overrides ours (merged_options drops it).
        guess_levels = int((petsc_options or {}).get(GUESS_KEY, guess_levels))
        # Right-hand-side coefficients whose matrix B_j never changes (e.g. ∫ f v dx
        # for a source f): assembled once, not again with every new A.
        self._static = {id(f) for f in static_rhs}
        self._static_done: set[int] = set()
        self.field = field
        self.u = u
        self.bcs = list(bcs)
        self.a = compile_form(a, **kw)
        self._rhs_ops: list[tuple[NativeMatrix, fem.Function]] = []
        self._mass: list[tuple[WeightedMass, fem.Function]] = []
        if mass_rhs:
            L, self._mass = split_mass(L, mass_rhs, kw)
        if rhs_coefficients:
            L, self._rhs_ops = split_rhs(L, rhs_coefficients, kw)
        self.L = None if L is None else compile_form(L, **kw)
        self.prefix = unique_prefix(field)
        imap = u.function_space.dofmap.index_map
        self.options = merged_options(
            preset, petsc_options, size=imap.size_global * u.function_space.dofmap.index_map_bs,
            ranks=imap.comm.size)
        self.preset = preset_of(preset, petsc_options)
        self.conserve = (self.preset == "transport") if conserve is None else conserve
        self._A = operator_matrix(self.a, u.function_space, cellwise, self.bcs, a)
        self.A = self._A.mat
        self.A.setOptionsPrefix(f"{self.prefix}A_")
        self._own_nullspace = near_nullspace is True  # built here: destroyed here
        if near_nullspace is True:
            near_nullspace = rigid_body_modes(u.function_space)
        if near_nullspace:
            self.A.setNearNullSpace(near_nullspace)
        self._nullspace = near_nullspace or None
        self.b = create_petsc_vector(u.function_space)
        self.b.setOptionsPrefix(f"{self.prefix}b_")
        self.ksp = PETSc.KSP().create(self.A.getComm())
        self.ksp.setOptionsPrefix(self.prefix)
        self.ksp.setOperators(self.A)
        self._opts = Options(self.prefix, self.options)
        from_options(self.ksp, self._opts, field, petsc_options)
        # Warm start from the previous step (not allowed with a direct solve).
        self.ksp.setInitialGuessNonzero(self.ksp.getType() != PETSc.KSP.Type.PREONLY)
        #: The projected initial guess and its history per unknown (key ``id(u)``).
        self.guess = ProjectedGuess(guess_levels)  # (checks the range)
        if self.ksp.getType() != PETSc.KSP.Type.CG:  # not SPD: no Galerkin guess
            self.guess.levels = 0
        self._stale = True
        self._balance = BalanceCorrection()  # (``conserve``)
        #: Number of matrix assemblies so far (tests and benchmarks read it).
        self.assemblies = 0
        self.iterations = 0  # of the last solve
        #: Solves so far and their wall time in s (right-hand side, solve, checks;
        #: not the matrix assembly), for ``scaffoldfem bench``.
        self.solves = 0
        self.seconds = 0.0
        self.total_iterations = 0
        #: Wall time (s) of the matrix assemblies (A and the right-hand-side matrices).
        self.assembly_seconds = 0.0
        self._pc = KeptPreconditioner(stale_preconditioner)
        track(self)
        #: Balance correction ``zᵀ(b − A x) / zᵀ1`` of the last solve before it was
        #: removed (``conserve``): the mean residual the Krylov tolerance left.
        self.correction = 0.0

    def invalidate(self) -> None:
        """Mark the matrix stale: its coefficients (or Δt) changed since assembly."""
        self._stale = True

    def reassemble_rhs_matrix(self, f: fem.Function) -> None:
        """Re-assemble only the right-hand-side matrix of coefficient ``f`` (its own
        coefficients changed but the system matrix did not, e.g. α of the old level)."""
        if self._stale:
            return  # the next solve re-assembles everything anyway
        tic = _time.perf_counter()
        for B, g in self._rhs_ops:
            if g is f:
                B.assemble()
        self.assembly_seconds += _time.perf_counter() - tic

    def assemble_matrix(self) -> None:
        """Assemble the matrix now (Dirichlet rows get a unit diagonal)."""
        tic = _time.perf_counter()
        self._A.assemble(self.bcs)
        for B, f in self._rhs_ops:
            if id(f) in self._static_done:
                continue
            B.assemble()
            if id(f) in self._static:
                self._static_done.add(id(f))
        if self.conserve:
            self._balance.prepare(self.A, self.bcs)
        self._stale = False
        self.assemblies += 1
        self.assembly_seconds += _time.perf_counter() - tic

    def assemble_rhs(self, substitute: Mapping[fem.Function, fem.Function] | None = None
                     ) -> PETSc.Vec:
        """Assemble the right-hand side with Dirichlet lifting into :attr:`b`.

        Args:
            substitute: For a field sharing this operator: its own Function in place of
                each ``rhs_coefficients`` entry (e.g. its ``c_old`` for ours).
        """
        with self.b.localForm() as loc:
            loc.set(0.0)
        if self.L is not None:
            fpetsc.assemble_vector(self.b, self.L)
        if self.bcs:
            fpetsc.apply_lifting(self.b, [self.a], bcs=[self.bcs])
        sub = substitute or {}
        add_mass(self._mass, sub, self.b)
        self.b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        # Precomputed parts act on owned entries only (after the ghost accumulation).
        for B, f in self._rhs_ops:
            B.mat.multAdd(sub.get(f, f).x.petsc_vec, self.b, self.b)
        if self.bcs:
            fpetsc.set_bc(self.b, self.bcs)
        return self.b

    def solve(self, time: float = math.nan, u: fem.Function | None = None,
              substitute: Mapping[fem.Function, fem.Function] | None = None) -> int:
        """Solve into ``u``; raise :class:`SolverError` on failure.

        On failure ``u`` holds a partial iterate: restore the last good state.

        Args:
            time: Simulated time of the step, for the error message.
            u: Another field with the same operator (same space, matrix and boundary
                conditions) to solve for instead of ours, with ``substitute`` giving
                its right-hand-side coefficients: the matrix, preconditioner or
                factorisation are shared.
            substitute: See :meth:`assemble_rhs`.

        Returns:
            Number of Krylov iterations.
        """
        keep_pc = self._pc.keep(self.ksp) if self._stale else False
        if self._stale:
            self.assemble_matrix()
        if self._opts.active:
            self.ksp.setUp()  # reads the setup-time options (GAMG levels) ...
            self._opts.clear()  # ... which can then leave the database
        tic = _time.perf_counter()
        u = self.u if u is None else u
        self.assemble_rhs(substitute)
        x = u.x.petsc_vec
        if self.guess.apply(self.A, self.b, x, id(u)) and self.bcs:
            fpetsc.set_bc(x, self.bcs)  # the Dirichlet values exactly, as before
        self.ksp.solve(self.b, x)
        reason = self.ksp.getConvergedReason()
        capped = 0
        if keep_pc and reason < 0:  # too weak for this matrix: a fresh set-up, again
            capped, keep_pc = self.ksp.getIterationNumber(), self._pc.rebuild(self.ksp)
            self.ksp.solve(self.b, x)
            reason = self.ksp.getConvergedReason()
        self.iterations = capped + self.ksp.getIterationNumber()
        self._pc.solved(self.ksp, keep_pc, reason, self.iterations - capped)
        if reason >= 0 and self.conserve:
            self.correction = self._balance.apply(self.A, self.b, x)
        u.x.scatter_forward()
        if reason < 0:
            raise SolverError(self.field, time, reason_name(PETSc.KSP.ConvergedReason, reason),
                              reason)
        check_finite(u, self.field, time)
        self.guess.record(x, id(u))
        self.solves += 1
        self.total_iterations += self.iterations
        self.seconds += _time.perf_counter() - tic
        return self.iterations

    def history(self) -> dict[str, np.ndarray]:
        """The stored solutions of the projected initial guess, for an in-memory
        snapshot (``ModelState.local``: a step repeated after :meth:`restore_history`
        then starts from the same guess and gives the same result bit for bit)."""
        return self.guess.arrays(self.prefix)

    def restore_history(self, local: Mapping[str, np.ndarray]) -> None:
        """Return to a :meth:`history` (absent, e.g. from a checkpoint: start afresh)."""
        self.guess.load(self.prefix, dict(local), like=self.b)

    def destroy(self) -> None:
        """Free the PETSc objects (collective)."""
        self._opts.clear()
        self.destroyed = True
        own = [self._nullspace] if self._own_nullspace else []
        for obj in (self.ksp, self._A, self.b, self._balance, self.guess, *own,
                    *(B for B, _ in self._rhs_ops)):
            if obj is not None:
                obj.destroy()


class NonlinearSolver:
    """Newton (PETSc SNES) for ``F(u; v) = 0``, e.g. transport with saturable uptake.

    The Jacobian is derived automatically unless ``J`` is given. ``u``'s
    current value is the initial guess (the previous step is a good one).

    Args:
        F: Residual form (UFL) with ``u`` a Function.
        u: Unknown.
        bcs: Dirichlet conditions.
        field: Name for prefix and messages.
        preset: KSP preset for the Newton systems (``"transport"`` or ``"mumps"``).
        petsc_options: User options merged over SNES defaults and the preset.
        J: Optional Jacobian form.
    """

    def __init__(self, F: ufl.Form, u: fem.Function, bcs: Sequence[fem.DirichletBC] = (), *,
                 field: str, preset: str = "transport",
                 petsc_options: Mapping[str, Any] | None = None, J: ufl.Form | None = None,
                 form_compiler_options: dict | None = None, jit_options: dict | None = None):
        self.field = field
        self.prefix = unique_prefix(field)
        opts = dict(SNES_DEFAULTS)
        # SNES drives its own linear solves (Newton updates): no projected guess
        # (merged_options drops the key).
        opts.update(merged_options(preset, {k: v for k, v in (petsc_options or {}).items()
                                            if not k.startswith("snes_")}))
        opts.update({k: v for k, v in (petsc_options or {}).items() if k.startswith("snes_")})
        self.options = opts
        # Options are set here, not through NonlinearProblem (which deletes them
        # right after SNESSetFromOptions, before GAMG reads its level options).
        self.problem = fpetsc.NonlinearProblem(
            F, u, bcs=list(bcs), J=J, petsc_options_prefix=self.prefix,
            form_compiler_options=form_compiler_options, jit_options=jit_options)
        self.snes = self.problem.solver
        self._opts = Options(self.prefix, opts)
        from_options(self.snes, self._opts, field, petsc_options)
        self.u = u
        self.newton_iterations = 0
        self.linear_iterations = 0

    def solve(self, time: float = math.nan) -> int:
        """Solve into ``u``; raise :class:`SolverError` unless SNES converged.

        Returns:
            Number of Newton iterations.
        """
        self.problem.solve()
        self._opts.clear()  # the first solve has set everything up
        reason = self.snes.getConvergedReason()
        self.newton_iterations = self.snes.getIterationNumber()
        self.linear_iterations = self.snes.getLinearSolveIterations()
        if reason <= 0:
            raise SolverError(self.field, time, reason_name(PETSc.SNES.ConvergedReason, reason),
                              reason)
        check_finite(self.u, self.field, time)
        return self.newton_iterations

    def destroy(self) -> None:
        """Free the PETSc objects now (collective) rather than at garbage collection:
        the problem's ``__del__`` frees the SNES, matrices and vectors."""
        self._opts.clear()
        problem, self.problem = self.problem, None
        if problem is not None:
            problem.__del__()
            for name in ("_snes", "_A", "_b", "_x", "_P_mat"):
                if hasattr(problem, name):
                    setattr(problem, name, None)
