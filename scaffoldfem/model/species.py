"""Growth-factor transport: every species' concentration, reservoir and sources.

Per species: the scaffold-bound reservoir ``b`` releases with MMP and matrix loss
(exact, with m and w frozen over the step), the amount released becomes the DG0
source R; secretion S = σ ρ̄ · 1000 from the cells; doses spread uniformly over
their region (docs/model.md §10). Then one implicit step (backward Euler, or BDF2
after the first step) from matrices refreshed only when α, D, ω or Δt changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.physics import Species
from scaffoldfem.fem.solver import LinearSolver, NonlinearSolver
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.material import Material
from scaffoldfem.model.state import ModelState
from scaffoldfem.model.transport import TransportParams
from scaffoldfem.physics import degradation as deg
from scaffoldfem.physics.materials import half_life_to_rate
from scaffoldfem.physics.schedules import dose_amount
from scaffoldfem.physics.transport import (
    Robin,
    Uptake,
    mass_rate_to_source,
    secretion_source,
    to_ng,
)
from scaffoldfem.regions import cell_tag, facet_tag

Solver = LinearSolver | NonlinearSolver


@dataclass
class SpeciesField:
    """One growth factor: its functions, step parameters per scheme and solvers."""

    cfg: Species
    c: fem.Function
    c_old: fem.Function
    c_old2: fem.Function
    b: np.ndarray  # bound reservoir per cell (ng/mL of scaffold)
    release: fem.Function  # DG0 source R (ng/mL/day)
    secretion: fem.Function  # DG0 source S
    dose: fem.Function  # DG0 source from the schedule
    params: dict[str, TransportParams] = field(default_factory=dict)
    solvers: dict[str, Solver] = field(default_factory=dict)
    dirichlet_dofs: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.cfg.name


class SpeciesTransport:
    """All growth factors of a study.

    Args:
        species: The ``species`` study section (one entry per growth factor).
        scheme: ``time.scheme``.
        disc: The shared discretisation.
        material: Supplies α (three levels) and D.
        dt: The step Constant shared by the transport solvers.
        solver_options: PETSc options of the transport solvers.
        negative_tolerance: ``time.negative_tolerance``.
    """

    def __init__(
        self,
        species: Sequence[Species],
        scheme: str,
        disc: Discretisation,
        material: Material,
        dt: fem.Constant,
        *,
        solver_options: Mapping[str, Any] | None,
        negative_tolerance: float,
    ):
        self.disc, self.material, self.tolerance = disc, material, negative_tolerance
        self.bdf2 = scheme == "bdf2"
        self.omega = fem.Constant(disc.mesh, 1.0)
        self.members = [self._build(cfg, dt, solver_options) for cfg in species]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sp.name for sp in self.members)

    # ------------------------------------------------------------------ set-up
    def _build(
        self, cfg: Species, dt: fem.Constant, opts: Mapping[str, Any] | None
    ) -> SpeciesField:
        d, mat = self.disc, self.material
        sp = SpeciesField(
            cfg=cfg,
            c=fem.Function(d.V, name=cfg.name),
            c_old=fem.Function(d.V),
            c_old2=fem.Function(d.V),
            b=np.where(d.scaffold, cfg.release.loading, 0.0),
            release=d.dg0(f"release_{cfg.name}"),
            secretion=d.dg0(f"secretion_{cfg.name}"),
            dose=d.dg0(f"dose_{cfg.name}"),
        )
        robin, bcs = self._boundaries(sp)
        uptake = None
        if cfg.uptake.enabled:
            vmax = d.dg0(f"vmax_{cfg.name}", np.where(d.host, cfg.uptake.vmax, 0.0))
            uptake = Uptake(vmax, fem.Constant(d.mesh, cfg.uptake.kd), mode="newton")
        base = TransportParams(
            c_old=sp.c_old,
            alpha=mat.alpha,
            alpha_old=mat.alpha_prev,
            D=mat.diffusivity(fem.Constant(d.mesh, cfg.diffusivity_free)),
            k=fem.Constant(d.mesh, half_life_to_rate(cfg.half_life)),
            dt=dt,
            sources={"released": sp.release, "secreted": sp.secretion, "dosed": sp.dose},
            dx=d.dx,
            ds=d.ds,
            robin=tuple(robin),
            uptake=uptake,
        )
        sp.params["be"] = base
        if self.bdf2:
            sp.params["bdf2"] = base.bdf2(sp.c_old2, mat.alpha_prev2, self.omega)
        for scheme, p in sp.params.items():
            sp.solvers[scheme] = self._solver(sp, p, bcs, opts)
        return sp

    def _boundaries(self, sp: SpeciesField) -> tuple[list[Robin], list[fem.DirichletBC]]:
        """Robin conditions and Dirichlet BCs of the two cord ends."""
        d = self.disc
        robin, bcs, dofs = [], [], []
        for end, bc in (("rostral_end", sp.cfg.rostral_end), ("caudal_end", sp.cfg.caudal_end)):
            if bc.kind == "robin":
                robin.append(
                    Robin(end, fem.Constant(d.mesh, bc.transfer), fem.Constant(d.mesh, bc.value))
                )
            elif bc.kind == "dirichlet":
                dd = fem.locate_dofs_topological(d.V, 2, d.facet_tags.find(facet_tag(end)))
                bcs.append(fem.dirichletbc(bc.value, dd, d.V))
                dofs.append(dd)
        sp.dirichlet_dofs = np.unique(np.concatenate(dofs)) if dofs else None
        return robin, bcs

    @staticmethod
    def _solver(
        sp: SpeciesField,
        p: TransportParams,
        bcs: list[fem.DirichletBC],
        opts: Mapping[str, Any] | None,
    ) -> Solver:
        if not p.linear:
            return NonlinearSolver(
                p.residual(sp.c), sp.c, bcs, field=sp.name, preset="transport", petsc_options=opts
            )
        a, L = p.forms(sp.c.function_space)
        # The right-hand side as Σ B_j f_j from matrices assembled with A:
        # a step costs a few mat-vecs instead of a volume assembly.
        rhs = [sp.c_old, sp.release, sp.secretion, sp.dose]
        if p.scheme == "bdf2":
            rhs.append(sp.c_old2)
        return LinearSolver(
            a,
            L,
            sp.c,
            bcs,
            field=sp.name,
            preset="transport",
            petsc_options=opts,
            rhs_coefficients=rhs,
            static_rhs=[sp.release, sp.secretion, sp.dose],
        )

    # ------------------------------------------------------------------ stepping
    def set_sources(
        self,
        t0: float,
        t1: float,
        dt: float,
        w_old: np.ndarray,
        m_cells: np.ndarray,
        rho_mean: np.ndarray,
    ) -> None:
        """Release (reservoirs updated), secretion and dose sources over ``[t0, t1]``
        (``dt`` the step as taken: ``t1 − t0`` up to rounding)."""
        d, sc = self.disc, self.disc.scaffold
        w_new = self.material.w
        for sp in self.members:
            r = sp.cfg.release
            b_new, released = deg.release_step(
                sp.b[sc],
                w_old[sc],
                w_new[sc],
                dt,
                k0=r.first_order_rate,
                k_mmp=r.mmp_rate,
                K_m=r.mmp_half_saturation,
                m=m_cells[sc],
                rho_rel=r.degradation_coupling,
            )
            sp.b[sc] = b_new
            rel = np.zeros(d.n_cells)
            rel[sc] = released / dt
            d.set_cells(sp.release, rel)
            d.set_cells(sp.secretion, secretion_source(sp.cfg.secretion, rho_mean))
            d.set_cells(sp.dose, self._dose_source(sp.cfg, t0, t1, dt))

    def _dose_source(self, cfg: Species, t0: float, t1: float, dt: float) -> np.ndarray:
        d = self.disc
        out = np.zeros(d.n_cells)
        for dose in cfg.doses:
            vol = d.volumes.get(dose.region, 0.0)
            if vol <= 0:
                continue
            amount = dose_amount(
                dose.kind,
                t0,
                t1,
                start=dose.start,
                end=dose.end,
                amount=dose.amount,
                rate=dose.rate,
            )
            if amount:
                out[d.region == cell_tag(dose.region)] += mass_rate_to_source(amount / dt, vol)
        return out

    def reassemble_old_levels(self) -> None:
        """Only α of an old level changed: re-assemble the matrices of α_prev c_old and
        α_prev2 c_old2 (the system matrix is current)."""
        for sp in self.members:
            for solver in sp.solvers.values():
                if isinstance(solver, LinearSolver):
                    solver.reassemble_rhs_matrix(sp.c_old)
                    solver.reassemble_rhs_matrix(sp.c_old2)

    def invalidate(self) -> None:
        """α, D or Δt changed: every linear solver re-assembles at its next solve."""
        for sp in self.members:
            for solver in sp.solvers.values():
                if isinstance(solver, LinearSolver):
                    solver.invalidate()

    def solve(self, t1: float, scheme: str, omega: float) -> dict[str, int]:
        """Shift the time levels and solve every species to ``t1``; iterations by name."""
        if scheme == "bdf2" and omega != float(self.omega.value):
            self.omega.value = omega  # the BDF2 matrix depends on ω
            for sp in self.members:
                if isinstance(sp.solvers["bdf2"], LinearSolver):
                    sp.solvers["bdf2"].invalidate()
        iters = {}
        for sp in self.members:
            sp.c_old2.x.array[:] = sp.c_old.x.array
            sp.c_old.x.array[:] = sp.c.x.array
            iters[sp.name] = sp.solvers[scheme].solve(t1)
            self.disc.check_concentration(sp.c, sp.name, t1, self.tolerance)
        return iters

    # ------------------------------------------------------------------ quantities
    def bound(self, sp: SpeciesField) -> float:
        """Scaffold-bound reservoir ∫b dV in ng (DG0 values × cell volumes)."""
        d = self.disc
        own = d.n_owned
        return to_ng(d.comm.allreduce(float(np.sum(sp.b[:own] * d.cell_volume[:own])), op=MPI.SUM))

    # ------------------------------------------------------------------ part protocol
    def fields(self) -> dict[str, fem.Function]:
        return {sp.name: sp.c for sp in self.members}

    def state(self) -> ModelState:
        out = ModelState()
        for sp in self.members:
            out.cells[f"b:{sp.name}"] = sp.b.copy()
            out.nodes[f"c:{sp.name}"] = sp.c.x.array.copy()
            out.nodes[f"c_old:{sp.name}"] = sp.c_old.x.array.copy()
        return out

    def restore(self, state: ModelState) -> None:
        for sp in self.members:
            sp.b[:] = state.cells[f"b:{sp.name}"]
            sp.c.x.array[:] = state.nodes[f"c:{sp.name}"]
            sp.c_old.x.array[:] = state.nodes[f"c_old:{sp.name}"]

    def destroy(self) -> None:
        for sp in self.members:
            for solver in sp.solvers.values():
                solver.destroy()
            sp.solvers.clear()
