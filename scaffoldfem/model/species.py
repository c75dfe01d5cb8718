"""Growth-factor transport: every species' concentration, carriers and sources.

Per species: its carriers (:mod:`scaffoldfem.model.carriers`) release by their own
laws (exact, with the enzymes and w frozen over the step), the amount released
becomes the DG0 source R; affinity carriers add a linear binding sink and an
unbinding source to the step and take their exchange after it; secretion
S = Σ_cohorts σ ρ̄ · 1000 from the grafts (:mod:`scaffoldfem.model.cells`); doses
spread uniformly over their region (docs/model.md §10). Then one implicit step
(backward Euler, or BDF2 after the first step) from matrices refreshed only when α,
D, ω or Δt changed (every step for a species with affinity binding, whose sink moves).

Species whose transport operators coincide (same free diffusivity, tortuosity,
half-life and end conditions; no uptake, no affinity carriers: :func:`operator_key`)
share one solver: one matrix, one preconditioner, one assembly per refresh; each
solves its own right-hand side with it (docs/model.md §8). A study that gives them
different parameters gets separate solvers automatically.
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
from scaffoldfem.errors import SimulationFailed
from scaffoldfem.fem.solver import LinearSolver, NonlinearSolver
from scaffoldfem.model.carriers import CarrierSet
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.material import Material
from scaffoldfem.model.state import ModelState
from scaffoldfem.model.transport import TransportParams
from scaffoldfem.physics.materials import half_life_to_rate
from scaffoldfem.physics.schedules import dose_amount
from scaffoldfem.physics.transport import (
    Robin,
    Uptake,
    mass_rate_to_source,
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
    carriers: CarrierSet  # pools per cell (ng/mL of scaffold)
    release: fem.Function  # DG0 source R (ng/mL/day)
    secretion: fem.Function  # DG0 source S
    dose: fem.Function  # DG0 source from the schedule
    bind_sink: fem.Function | None = None  # DG0 k_sink of affinity carriers (1/day)
    unbind: fem.Function | None = None  # DG0 unbinding source (ng/mL/day)
    params: dict[str, TransportParams] = field(default_factory=dict)
    solvers: dict[str, Solver] = field(default_factory=dict)
    dirichlet_dofs: np.ndarray | None = None
    shares: SpeciesField | None = None  # the species whose solvers this one uses

    @property
    def name(self) -> str:
        return self.cfg.name

    def substitute(self) -> dict[fem.Function, fem.Function]:
        """Its own right-hand-side Functions in place of the sharing leader's."""
        lead = self.shares
        assert lead is not None
        return {lead.c_old: self.c_old, lead.c_old2: self.c_old2, lead.release: self.release,
                lead.secretion: self.secretion, lead.dose: self.dose}

    def solve(self, scheme: str, t1: float) -> int:
        """Solve this species' step ``scheme`` to ``t1`` (with the shared solver if any)."""
        if self.shares is None:
            return self.solvers[scheme].solve(t1)
        return self.shares.solvers[scheme].solve(t1, u=self.c, substitute=self.substitute())


def operator_key(cfg: Species) -> tuple | None:
    """What a species' transport matrix depends on beyond the shared α, D(φ) and Δt;
    None if it may not share (uptake makes the step nonlinear; affinity carriers put
    a sink of their own into the matrix)."""
    if cfg.uptake.enabled or any(c.law == "affinity" for c in cfg.carriers):
        return None
    return (cfg.diffusivity_free, cfg.tissue_tortuosity(), cfg.half_life,
            tuple(sorted(cfg.rostral_end.model_dump().items())),
            tuple(sorted(cfg.caudal_end.model_dump().items())))


def dose_source(d: Discretisation, cfg: Species, t0: float, t1: float, dt: float) -> np.ndarray:
    """DG0 source (ng/mL/day) of a species' doses over ``[t0, t1]``, each spread uniformly
    over its region."""
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


def species_solver(
    sp: SpeciesField,
    p: TransportParams,
    bcs: list[fem.DirichletBC],
    opts: Mapping[str, Any] | None,
) -> Solver:
    """The solver of one species' step ``p`` (Newton with uptake, else linear with its
    right-hand side from stored matrices)."""
    if not p.linear:
        return NonlinearSolver(
            p.residual(sp.c), sp.c, bcs, field=sp.name, preset="transport", petsc_options=opts
        )
    a, L = p.forms(sp.c.function_space)
    # Right-hand side: the sources' matrices assembled once, the backward-Euler old
    # level in closed form (no matrix to re-assemble; BDF2's are matrices, with A).
    static = [sp.release, sp.secretion, sp.dose] + ([sp.unbind] if sp.unbind else [])
    mass = p.old_level_mass()
    rhs = [*static] if mass else [sp.c_old, *static]
    if p.scheme == "bdf2":
        rhs.append(sp.c_old2)
    return LinearSolver(a, L, sp.c, bcs, field=sp.name, preset="transport",
                        petsc_options=opts, rhs_coefficients=rhs, static_rhs=static,
                        mass_rhs=mass, cellwise=p.cellwise())


class SpeciesTransport:
    """All growth factors of a study.

    Args:
        species: The ``species`` study section (one entry per growth factor).
        scheme: ``time.scheme``.
        disc: The shared discretisation.
        material: Supplies α (three levels) and D.
        dt: The step Constant shared by the transport solvers.
        enzyme_masses: Molar mass (kDa) of every enzyme of the study, by name.
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
        enzyme_masses: Mapping[str, float] | None = None,
        solver_options: Mapping[str, Any] | None,
        negative_tolerance: float,
    ):
        self.disc, self.material, self.tolerance = disc, material, negative_tolerance
        self.enzyme_masses = dict(enzyme_masses or {})
        self.bdf2 = scheme == "bdf2"
        self.omega = fem.Constant(disc.mesh, 1.0)
        self._cg = fem.Function(disc.Q)  # cell means of c (affinity binding)
        self._leaders: dict[tuple, SpeciesField] = {}
        self.members = [self._build(cfg, dt, solver_options) for cfg in species]

    @property
    def operator_groups(self) -> list[tuple[str, ...]]:
        """Species names by shared solver (the first of each group owns it)."""
        groups: dict[str, list[str]] = {}
        for sp in self.members:
            groups.setdefault((sp.shares or sp).name, []).append(sp.name)
        return [tuple(g) for g in groups.values()]

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
            carriers=CarrierSet(cfg.carriers, d.scaffold, self.enzyme_masses),
            release=d.dg0(f"release_{cfg.name}"),
            secretion=d.dg0(f"secretion_{cfg.name}"),
            dose=d.dg0(f"dose_{cfg.name}"),
        )
        robin, bcs = self._boundaries(sp)
        uptake = None
        if cfg.uptake.enabled:
            vmax = d.dg0(f"vmax_{cfg.name}", np.where(d.host, cfg.uptake.vmax, 0.0))
            uptake = Uptake(vmax, fem.Constant(d.mesh, cfg.uptake.kd), mode="newton")
        sources = {"released": sp.release, "secreted": sp.secretion, "dosed": sp.dose}
        if sp.carriers.affinity:
            sp.bind_sink = d.dg0(f"binding_{cfg.name}")
            sp.unbind = d.dg0(f"unbinding_{cfg.name}")
            sources["unbound"] = sp.unbind
        tortuosity = cfg.tissue_tortuosity()
        base = TransportParams(
            c_old=sp.c_old,
            alpha=mat.alpha,
            alpha_old=mat.alpha_prev,
            D=mat.diffusivity(fem.Constant(d.mesh, cfg.diffusivity_free), tortuosity=tortuosity),
            k=fem.Constant(d.mesh, half_life_to_rate(cfg.half_life)),
            dt=dt,
            sources=sources,
            sink=sp.bind_sink,
            dx=d.dx,
            ds=d.ds,
            robin=tuple(robin),
            uptake=uptake,
        )
        sp.params["be"] = base
        if self.bdf2:
            sp.params["bdf2"] = base.bdf2(sp.c_old2, mat.alpha_prev2, self.omega)
        key = operator_key(cfg)
        if key is not None and key in self._leaders:
            sp.shares = self._leaders[key]
            return sp
        for scheme, p in sp.params.items():
            sp.solvers[scheme] = species_solver(sp, p, bcs, opts)
        if key is not None:
            self._leaders[key] = sp
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

    # ------------------------------------------------------------------ stepping
    def set_sources(
        self,
        t0: float,
        t1: float,
        dt: float,
        w_old: np.ndarray,
        enzymes: Mapping[str, np.ndarray],
        secretion: Mapping[str, np.ndarray],
        ros: np.ndarray | None = None,
    ) -> None:
        """Release (carriers advanced), secretion, dose and binding terms over
        ``[t0, t1]`` (``dt`` the step as taken: ``t1 − t0`` up to rounding).

        Args:
            t0, t1, dt: The step.
            w_old: Polymer mass fraction per cell at ``t0`` (the material holds ``t1``'s).
            enzymes: Per-cell concentration of every enzyme (ng/mL), frozen over the step.
            secretion: Source (ng/mL/day) per cell of each species the grafts secrete
                over the step (:meth:`Cells.advance <scaffoldfem.model.cells.Cells.advance>`);
                a species not in it gets none.
            ros: Per-cell ROS (ng/mL H2O2) at ``t1``, for ROS-cleavable carriers.
        """
        d = self.disc
        w_new = self.material.w
        for sp in self.members:
            released = sp.carriers.release(dt, enzymes, w_old, w_new, ros)
            d.set_cells(sp.release, released / dt)
            d.set_cells(sp.secretion, secretion.get(sp.name, 0.0))
            d.set_cells(sp.dose, dose_source(d, sp.cfg, t0, t1, dt))
            if sp.bind_sink is not None:
                k_sink, source = sp.carriers.binding(dt, self._cell_means(sp.c))
                d.set_cells(sp.bind_sink, k_sink)
                d.set_cells(sp.unbind, source)
                for solver in sp.solvers.values():  # the sink is in the matrix
                    solver.invalidate()

    def _cell_means(self, c: fem.Function) -> np.ndarray:
        """Cell means of a P1 field (its value at the centroid: exact for linears)."""
        self._cg.interpolate(c)
        return self.disc.cells_of(self._cg)

    def bind(self, dt: float, t1: float) -> None:
        """After the solve: affinity carriers take their exchange with the new c.

        Raises:
            SimulationFailed: on every rank, if a sudden rise of the free factor
                overfilled binding sites (the loop restores and halves the step).
        """
        for sp in self.members:
            if sp.bind_sink is not None:
                sp.carriers.bind(dt, self._cell_means(sp.c))
                over = sp.carriers.overfill()
                if self.disc.comm.allreduce(over, op=MPI.MAX) > 1e-6:
                    raise SimulationFailed(sp.name, t1, "affinity sites overfilled (bound > "
                                           "capacity); reduce time.dt")

    def reassemble_old_levels(self) -> None:
        """Only α of an old level changed: re-assemble BDF2's old-level matrices (the
        backward-Euler old level is applied in closed form and reads α_prev itself)."""
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
                if isinstance(sp.solvers.get("bdf2"), LinearSolver):
                    sp.solvers["bdf2"].invalidate()
        iters = {}
        for sp in self.members:
            sp.c_old2.x.array[:] = sp.c_old.x.array
            sp.c_old.x.array[:] = sp.c.x.array
            iters[sp.name] = sp.solve(scheme, t1)
            self.disc.check_concentration(sp.c, sp.name, t1, self.tolerance)
        return iters

    # ------------------------------------------------------------------ quantities
    def bound(self, sp: SpeciesField) -> float:
        """Factor held by the carriers, ∫Σ pools dV in ng (DG0 values × cell volumes)."""
        d = self.disc
        own = d.n_owned
        held = sp.carriers.total()
        return to_ng(d.comm.allreduce(float(np.sum(held[:own] * d.cell_volume[:own])),
                                      op=MPI.SUM))

    # ------------------------------------------------------------------ part protocol
    def fields(self) -> dict[str, fem.Function]:
        return {sp.name: sp.c for sp in self.members}

    def state(self) -> ModelState:
        out = ModelState()
        for sp in self.members:
            out.cells.update(sp.carriers.state(f"carrier:{sp.name}"))
            out.nodes[f"c:{sp.name}"] = sp.c.x.array.copy()
            out.nodes[f"c_old:{sp.name}"] = sp.c_old.x.array.copy()
            for solver in sp.solvers.values():
                if isinstance(solver, LinearSolver):
                    out.local.update(solver.history())
        return out

    def restore(self, state: ModelState) -> None:
        for sp in self.members:
            sp.carriers.restore(f"carrier:{sp.name}", state.cells)
            sp.c.x.array[:] = state.nodes[f"c:{sp.name}"]
            sp.c_old.x.array[:] = state.nodes[f"c_old:{sp.name}"]
            for solver in sp.solvers.values():
                if isinstance(solver, LinearSolver):
                    solver.restore_history(state.local)

    def destroy(self) -> None:
        for sp in self.members:
            for solver in sp.solvers.values():
                solver.destroy()
            sp.solvers.clear()


def cell_concentrations(transport: SpeciesTransport, names: Sequence[str]
                        ) -> dict[str, np.ndarray]:
    """Cell means (ng/mL) of the named species now, per local cell (graft trophic support)."""
    by_name = {sp.name: sp for sp in transport.members}
    return {n: transport._cell_means(by_name[n].c).copy() for n in names}
