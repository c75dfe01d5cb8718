"""MMP (gelatinase) transport with its time-dependent source.

Source rate ``A·g(t)`` (ng/mL/day), g the gamma-shaped profile or a table
(:mod:`scaffoldfem.physics.schedules`), in ``scar`` cells and in the band of
cells whose centre lies within ``interface_band`` of ``scaffold_interface``.
α is lagged over the MMP step (the same α at both storage levels).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from dolfinx import fem
from dolfinx import mesh as dmesh

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.physics import EnzymeConfig
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.material import Material
from scaffoldfem.model.state import ModelState
from scaffoldfem.model.transport import TransportParams
from scaffoldfem.physics.materials import half_life_to_rate
from scaffoldfem.physics.schedules import gamma_profile, table_profile
from scaffoldfem.regions import cell_tag, facet_tag


class Enzyme:
    """The MMP field ``m`` (P1) and its per-cell values for degradation and release.

    Args:
        cfg: The ``enzyme`` study section.
        disc: The shared discretisation.
        material: Supplies α and D.
        dt: The step Constant shared by the transport solvers.
        solver_options: PETSc options of the transport solvers.
        negative_tolerance: ``time.negative_tolerance``.
    """

    def __init__(
        self,
        cfg: EnzymeConfig,
        disc: Discretisation,
        material: Material,
        dt: fem.Constant,
        *,
        solver_options: Mapping[str, Any] | None,
        negative_tolerance: float,
    ):
        self.cfg, self.disc, self.tolerance = cfg, disc, negative_tolerance
        self.m = fem.Function(disc.V, name="MMP")
        self.m_old = fem.Function(disc.V)
        self.m_dg = fem.Function(disc.Q)
        self.m_cells = np.zeros(disc.n_cells)
        self.amplitude = fem.Constant(disc.mesh, 0.0)
        self.k = fem.Constant(disc.mesh, half_life_to_rate(cfg.half_life))
        self.d_free = fem.Constant(disc.mesh, cfg.diffusivity_free)
        self.solver: LinearSolver | None = None
        if not cfg.enabled:
            return
        shape = disc.dg0("mmp_source_shape", self._source_cells())
        params = TransportParams(
            c_old=self.m_old,
            alpha=material.alpha,
            alpha_old=material.alpha,
            D=material.diffusivity(self.d_free),
            k=self.k,
            dt=dt,
            sources={"source": self.amplitude * shape},
            dx=disc.dx,
            ds=disc.ds,
        )
        a, L = params.forms(disc.V)
        self.solver = LinearSolver(
            a, L, self.m, field="MMP", preset="transport", petsc_options=solver_options
        )

    def _source_cells(self) -> np.ndarray:
        src = np.zeros(self.disc.n_cells)
        regions = self.cfg.source.regions
        if "scar" in regions:
            src[self.disc.region == cell_tag("scar")] = 1.0
        if "scaffold_interface" in regions:
            src[self._interface_band(self.cfg.source.interface_band)] = 1.0
        return src

    def _interface_band(self, halfwidth: float) -> np.ndarray:
        """Cells whose midpoint lies within ``halfwidth`` of a scaffold_interface facet."""
        from scipy.spatial import cKDTree  # heavy, needed once

        d = self.disc
        tdim = d.mesh.topology.dim
        facets = d.facet_tags.find(facet_tag("scaffold_interface"))
        mids = dmesh.compute_midpoints(d.mesh, tdim - 1, facets.astype(np.int32))
        allmids = np.vstack([m for m in d.comm.allgather(mids) if len(m)] or [np.zeros((0, 3))])
        band = np.zeros(d.n_cells, dtype=bool)
        if len(allmids):
            cells = np.arange(d.n_cells, dtype=np.int32)
            cm = dmesh.compute_midpoints(d.mesh, tdim, cells)
            dist, _ = cKDTree(allmids).query(cm)
            band = dist <= halfwidth
        return band

    def rate(self, t: float) -> float:
        """MMP production rate (ng/mL/day) at time ``t``."""
        src = self.cfg.source
        if src.profile == "table":
            return table_profile(t, src.table)
        return src.amplitude * gamma_profile(t, src.peak_day, src.shape)

    def advance(self, t1: float) -> dict[str, int]:
        """Implicit MMP step to ``t1``; returns its iterations (none when disabled)."""
        if self.solver is None:
            return {}
        self.m_old.x.array[:] = self.m.x.array
        self.amplitude.value = self.rate(t1)
        its = self.solver.solve(t1)
        self.disc.check_concentration(self.m, "MMP", t1, self.tolerance)
        self.m_dg.interpolate(self.m)
        self.m_cells = np.maximum(self.disc.cells_of(self.m_dg), 0.0)
        return {"MMP": its}

    def invalidate(self) -> None:
        """α, D or Δt changed: re-assemble the matrix at the next solve."""
        if self.solver is not None:
            self.solver.invalidate()

    def fields(self) -> dict[str, fem.Function]:
        return {"MMP": self.m} if self.cfg.enabled else {}

    def state(self) -> ModelState:
        return ModelState(nodes={"m": self.m.x.array.copy()})

    def restore(self, state: ModelState) -> None:
        self.m.x.array[:] = state.nodes["m"]

    def destroy(self) -> None:
        if self.solver is not None:
            self.solver.destroy()
            self.solver = None
