"""Reactive oxygen species (as H2O2) with their sources and scavengers.

``∂(α r)/∂t = ∇·(D ∇r) − (α k + Σ_j k_s,j S_j) r + P_n p̄_n χ_n + P_m p̄_m χ_m``:
production by neutrophils and macrophages (presence ``p̄`` from the injury timeline,
Simpson mean over the step, in their regions ``χ``), first-order clearance
``k = ln 2/t½`` and consumption by scavengers of capacity ``S_j`` (ng H2O2 per mL of
tissue, immobile). Both losses form one linear sink, **lumped** (vertex rule):
with ``k`` ~ 3e4 /day the consistent mass would undershoot at every source border.
After the step each scavenger's capacity falls by exactly what it consumed,
``Δt k_s S_j r̄`` per cell (``r̄`` the cell mean; clipped at its remaining capacity),
and doses add capacity uniformly over their region. With the default half-life the
decay length ``sqrt(D*/k)`` ≈ 0.09 mm is below the mesh size: ROS is then local,
production ≈ clearance, which the lumped scheme reproduces without oscillation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.inflammation import InflammationConfig, ROSConfig
from scaffoldfem.config.scavengers import Scavenger
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.enzyme import region_indicator, step_mean
from scaffoldfem.model.material import Material
from scaffoldfem.model.state import ModelState
from scaffoldfem.model.transport import TransportParams
from scaffoldfem.physics.inflammation import presence, ros_decay_rate
from scaffoldfem.physics.schedules import dose_amount
from scaffoldfem.physics.transport import mass_rate_to_source
from scaffoldfem.regions import cell_tag

POPULATIONS = ("neutrophils", "macrophages")
#: Relative undershoot of ROS accepted (see :class:`ROS`).
ROS_NEGATIVE_TOLERANCE = 0.02


class ROS:
    """The ROS field and the scavengers' capacities (a part of the coupled model).

    Args:
        cfg: The ``ros`` section (``enabled = false``: no field, ROS 0 everywhere).
        timeline: The ``inflammation`` section.
        scavengers: The ``scavengers`` list.
        disc: The shared discretisation.
        material: Supplies α and D.
        dt: The step Constant shared by the transport solvers.
        solver_options: PETSc options of the transport solvers.
        negative_tolerance: ``time.negative_tolerance``.
    """

    def __init__(self, cfg: ROSConfig, timeline: InflammationConfig,
                 scavengers: Sequence[Scavenger], disc: Discretisation, material: Material,
                 dt: fem.Constant, *, solver_options: Mapping[str, Any] | None,
                 negative_tolerance: float):
        self.cfg, self.timeline, self.disc = cfg, timeline, disc
        # Reaction-dominated on a non-Delaunay tetrahedral mesh, the stiffness matrix's
        # positive off-diagonals (obtuse dihedral angles) leave sub-percent undershoots
        # next to source borders even with the sink lumped: tolerated up to 2 %, and
        # the per-cell values used downstream are clipped at 0.
        self.scavengers = list(scavengers)
        self.tolerance = max(negative_tolerance, ROS_NEGATIVE_TOLERANCE)
        self.cells = np.zeros(disc.n_cells)
        self.capacity = np.zeros((len(self.scavengers), disc.n_cells))
        self.consumed = 0.0  # ng, cumulative, all scavengers
        self.solver: LinearSolver | None = None
        if not cfg.enabled:
            return
        self.r = fem.Function(disc.V, name="ROS")
        self.r_old = fem.Function(disc.V)
        self.r_dg = fem.Function(disc.Q)
        self.scavenging = disc.dg0("scavenging")  # Σ k_s S (1/day)
        band = timeline.interface_band
        #: Where each population produces (1 in its regions), and the source of a step:
        #: Σ_p rate_p × shape_p, one DG0 Function (a right-hand-side matrix, no assembly).
        self.shapes = {p: disc.dg0(f"ros_{p}", region_indicator(
            disc, timeline.course(p).regions, band)).x.array.copy() for p in POPULATIONS}
        self.source = disc.dg0("ros_source")
        k = fem.Constant(disc.mesh, ros_decay_rate(cfg))
        params = TransportParams(
            c_old=self.r_old, alpha=material.alpha, alpha_old=material.alpha,
            D=material.diffusivity(fem.Constant(disc.mesh, cfg.diffusivity_free),
                                   tortuosity=cfg.tortuosity),
            k=fem.Constant(disc.mesh, 0.0), dt=dt, sources={"ros": self.source}, dx=disc.dx,
            ds=disc.ds,
            sink=material.alpha * k + self.scavenging)
        a, L = params.forms(disc.V)
        # The source's right-hand-side matrix is assembled once; the old level's term,
        # α/Δt M r_old with α moving every step, is applied in closed form (a matrix
        # would be re-assembled at every step; its vector assembly cost 22-27 ms a
        # step on medium, the closed form 2.3 ms: fem/mass_action.py).
        self.solver = LinearSolver(a, L, self.r, field="ROS", preset="transport",
                                   petsc_options=solver_options,
                                   rhs_coefficients=[self.source], static_rhs=[self.source],
                                   mass_rhs=params.old_level_mass(),
                                   cellwise=params.cellwise())

    @property
    def enabled(self) -> bool:
        return self.solver is not None

    def production(self, population: str, t0: float, t1: float) -> float:
        """Mean production rate (ng/mL/day at presence 1 × presence) over the step."""
        rate = {"neutrophils": self.cfg.neutrophil_production,
                "macrophages": self.cfg.macrophage_production}[population]
        return rate * step_mean(lambda t: presence(t, self.timeline, population), t0, t1)

    def _dose(self, t0: float, t1: float) -> None:
        d = self.disc
        for j, s in enumerate(self.scavengers):
            amount = dose_amount(s.kind, t0, t1, start=s.start, end=s.end, amount=s.amount,
                                 rate=s.rate)
            vol = d.volumes.get(s.region, 0.0)
            if amount and vol > 0:  # ng spread over the region, per mL of tissue
                self.capacity[j, d.region == cell_tag(s.region)] += mass_rate_to_source(
                    amount, vol)

    def advance(self, t0: float, t1: float) -> dict[str, int]:
        """Dose scavengers, solve ROS to ``t1``, use up their capacity; iterations."""
        self._dose(t0, t1)
        if self.solver is None:
            return {}
        d, dt = self.disc, t1 - t0
        ks = np.array([s.rate_constant for s in self.scavengers], dtype=float)
        rate = ks[:, None] * self.capacity  # (scavengers, cells), 1/day
        d.set_cells(self.scavenging, rate.sum(axis=0))
        self.source.x.array[:] = sum(self.production(p, t0, t1) * self.shapes[p]
                                     for p in POPULATIONS)
        self.r_old.x.array[:] = self.r.x.array
        if len(ks):
            self.solver.invalidate()  # the sink moves with the capacity
        its = self.solver.solve(t1)
        d.check_concentration(self.r, "ROS", t1, self.tolerance)
        self.r_dg.interpolate(self.r)
        self.cells = np.maximum(d.cells_of(self.r_dg), 0.0)
        if len(ks):
            used = np.minimum(dt * rate * self.cells[None, :], self.capacity)
            self.capacity -= used
            own = d.n_owned
            local = float(np.sum(used[:, :own] * d.cell_volume[None, :own]))
            self.consumed += d.comm.allreduce(local, op=MPI.SUM) / 1e3
        return {"ROS": its}

    def invalidate(self) -> None:
        if self.solver is not None:
            self.solver.invalidate()

    # ------------------------------------------------------------------ part protocol
    def fields(self) -> dict[str, fem.Function]:
        return {"ROS": self.r} if self.enabled else {}

    def state(self) -> ModelState:
        out = ModelState(scalars={"ros_consumed": self.consumed})
        out.cells["ros_cells"] = self.cells.copy()
        for j in range(len(self.scavengers)):
            out.cells[f"scavenger:{j}"] = self.capacity[j].copy()
        if self.enabled:
            out.nodes["ros"] = self.r.x.array.copy()
        if self.solver is not None:
            out.local.update(self.solver.history())
        return out

    def restore(self, state: ModelState) -> None:
        self.consumed = state.scalars["ros_consumed"]
        self.cells[:] = state.cells["ros_cells"]
        for j in range(len(self.scavengers)):
            self.capacity[j] = state.cells[f"scavenger:{j}"]
        if self.enabled:
            self.r.x.array[:] = state.nodes["ros"]
        if self.solver is not None:
            self.solver.restore_history(state.local)

    def destroy(self) -> None:
        if self.solver is not None:
            self.solver.destroy()
            self.solver = None
