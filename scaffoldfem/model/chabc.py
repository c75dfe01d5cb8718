"""Chondroitinase ABC: a dosed, diffusing enzyme that loses its activity at 37 °C.

``∂(α c)/∂t = ∇·(D ∇c) − α k c + S_dose``, ``k = ln 2/t½``: doses as for a growth
factor (bolus or infusion spread over a region), ``D`` the flux-basis diffusivity of
its free diffusivity and tortuosity (by size when omitted). The uniform first-order
loss is split off exactly: with ``c = e^{−k(t−t0)} ĉ`` the step solves pure
transport of ``ĉ`` (backward Euler) with the dose scaled by ``(e^{kh} − 1)/(kh)``
and multiplies by ``e^{−kh}`` (:func:`scaffoldfem.physics.cspg.activity_factors`),
so the active amount follows ``exp(−k t)`` exactly between doses whatever the step.
Per-cell values (DG0 interpolant, clipped at 0) digest the CSPG field
(:mod:`scaffoldfem.model.cspg`). No field is built when there is no dose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.cspg import ChABCConfig
from scaffoldfem.fem.compat import compile_form, integrate
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.material import Material
from scaffoldfem.model.species import dose_source
from scaffoldfem.model.state import ModelState
from scaffoldfem.model.transport import TransportParams
from scaffoldfem.physics.cspg import activity_factors, chabc_decay_rate
from scaffoldfem.physics.transport import MM3_PER_ML


class ChABC:
    """The active ChABC field (a part of the coupled model).

    Args:
        cfg: The ``[chabc]`` section (no doses: no field, 0 everywhere).
        disc: The shared discretisation.
        material: Supplies α and D.
        dt: The step Constant shared by the transport solvers.
        solver_options: PETSc options of the transport solvers.
        negative_tolerance: ``time.negative_tolerance``.
    """

    def __init__(self, cfg: ChABCConfig, disc: Discretisation, material: Material,
                 dt: fem.Constant, *, solver_options: Mapping[str, Any] | None,
                 negative_tolerance: float):
        self.cfg, self.disc, self.tolerance = cfg, disc, negative_tolerance
        self.k = chabc_decay_rate(cfg)
        self.cells = np.zeros(disc.n_cells)
        self.dosed = 0.0  # ng, cumulative
        self.solver: LinearSolver | None = None
        if not cfg.doses:
            return
        self.c = fem.Function(disc.V, name="ChABC")
        self.c_old = fem.Function(disc.V)
        self.c_dg = fem.Function(disc.Q)
        self.dose = disc.dg0("dose_ChABC")
        self.alpha = material.alpha
        params = TransportParams(
            c_old=self.c_old, alpha=material.alpha, alpha_old=material.alpha,
            D=material.diffusivity(fem.Constant(disc.mesh, cfg.diffusivity_free),
                                   tortuosity=cfg.tortuosity),
            k=fem.Constant(disc.mesh, 0.0), dt=dt, sources={"dosed": self.dose},
            dx=disc.dx, ds=disc.ds)
        a, L = params.forms(disc.V)
        self.solver = LinearSolver(a, L, self.c, field="ChABC", preset="transport",
                                   petsc_options=solver_options,
                                   mass_rhs=params.old_level_mass(),  # (as for ROS)
                                   cellwise=params.cellwise())
        self._content = compile_form(material.alpha * self.c * disc.dx)  # ng/mL·mm³

    @property
    def enabled(self) -> bool:
        return self.solver is not None

    def advance(self, t0: float, t1: float) -> dict[str, int]:
        """Dose, transport and decay to ``t1``; iterations by field name."""
        if self.solver is None:
            return {}
        d, h = self.disc, t1 - t0
        src = dose_source(d, self.cfg, t0, t1, h)  # ng/mL/day per cell
        own = d.n_owned
        self.dosed += d.comm.allreduce(
            float(src[:own] @ d.cell_volume[:own]) * h / MM3_PER_ML, op=MPI.SUM)
        decay, gain = activity_factors(self.k, h)
        d.set_cells(self.dose, src * gain)
        self.c_old.x.array[:] = self.c.x.array
        its = self.solver.solve(t1)
        self.c.x.array[:] *= decay
        d.check_concentration(self.c, "ChABC", t1, self.tolerance)
        self.c_dg.interpolate(self.c)
        self.cells = np.maximum(d.cells_of(self.c_dg), 0.0)
        return {"ChABC": its}

    def active_amount(self) -> float:
        """Active ChABC in the tissue, ∫ α c (ng; collective)."""
        if self.solver is None:
            return 0.0
        return integrate(self._content, self.disc.comm) / MM3_PER_ML

    def invalidate(self) -> None:
        if self.solver is not None:
            self.solver.invalidate()

    # ------------------------------------------------------------------ part protocol
    def fields(self) -> dict[str, fem.Function]:
        return {"ChABC": self.c} if self.enabled else {}

    def state(self) -> ModelState:
        out = ModelState(scalars={"chabc_dosed": self.dosed})
        out.cells["chabc_cells"] = self.cells.copy()
        if self.enabled:
            out.nodes["chabc"] = self.c.x.array.copy()
        if self.solver is not None:
            out.local.update(self.solver.history())
        return out

    def restore(self, state: ModelState) -> None:
        self.dosed = state.scalars["chabc_dosed"]
        self.cells[:] = state.cells["chabc_cells"]
        if self.enabled:
            self.c.x.array[:] = state.nodes["chabc"]
        if self.solver is not None:
            self.solver.restore_history(state.local)

    def destroy(self) -> None:
        if self.solver is not None:
            self.solver.destroy()
            self.solver = None
