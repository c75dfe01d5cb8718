"""Host tissue growing into the scaffold pores, and the cavitation risk (``[ingrowth]``).

The filled fraction ``f`` of the pore space (P1, 0..1) advances as a Fisher–KPP front
(:mod:`scaffoldfem.physics.ingrowth`) from host tissue and channel lumens, where
``f = 1`` (Dirichlet at every node of a host or channel cell, so the scaffold's nodes
on the host interface and the channel walls are the source). The rate is ``g v``,
``g`` the permissiveness of each scaffold cell from ``scaffold.pore_size``, its
current porosity and the stiffness match of its polymer skeleton with the host; the
front width ``ℓ`` is a physical length. Nothing grows outside the scaffold (``g = 0``;
the cavity keeps ``f = 0``). The cell means of ``f`` set α, D and E of the scaffold
cells by a rule of mixtures (``Material.fill``). A scaffold cell whose polymer has gone
(``w < polymer_gone``) while ``f < filled_threshold`` is **cavitated**: its volume, as
a fraction of the lesion, is the cavitation risk, tracked over time (final, maximum,
time integral).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from dolfinx import fem, la
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.ingrowth import IngrowthConfig
from scaffoldfem.config.physics import ScaffoldConfig
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.model.discretisation import LESION_REGIONS, Discretisation
from scaffoldfem.model.material import Material
from scaffoldfem.model.state import ModelState
from scaffoldfem.physics import ingrowth as law


class Ingrowth:
    """The filled fraction ``f`` and the cavitation bookkeeping (a model part).

    Args:
        cfg: The ``ingrowth`` section (``enabled = false``: no field, nothing changes).
        scaffold: The ``scaffold`` section (its ``pore_size``).
        disc: The shared discretisation.
        material: Supplies w, φ and the skeleton modulus; receives ``fill``.
        dt: The step Constant of the model.
        solver_options: PETSc options of the transport solvers.
    """

    def __init__(self, cfg: IngrowthConfig, scaffold: ScaffoldConfig, disc: Discretisation,
                 material: Material, dt: fem.Constant, *,
                 solver_options: Mapping[str, Any] | None):
        self.cfg, self.scaffold, self.disc, self.material = cfg, scaffold, disc, material
        self.solver: LinearSolver | None = None
        self.t = 0.0
        self.volume = 0.0  # cavitated volume now (mm³)
        self.volume_max = 0.0
        self.volume_integral = 0.0  # ∫ V_cav dt (mm³·day)
        self.t_half = math.nan  # first time the scaffold is half filled (day)
        self.lesion_volume = sum(disc.volumes.get(n, 0.0) for n in LESION_REGIONS)
        if not (cfg.enabled and disc.has["scaffold"]):
            return
        material.enable_fill()
        self.f = fem.Function(disc.V, name="tissue_fill")
        self.f_old = fem.Function(disc.V)
        self.f_dg = fem.Function(disc.Q)
        self.g = disc.dg0("ingrowth_permissiveness")
        self.cav = disc.dg0("cavitation")
        D0, r0 = cfg.fisher()
        self.D, self.r = fem.Constant(disc.mesh, D0), fem.Constant(disc.mesh, r0)
        dofs = self._source_dofs(disc.host | material.lumen)
        self.bc = fem.dirichletbc(1.0, dofs, disc.V)
        self.f.x.array[dofs] = 1.0
        self.f.x.scatter_forward()
        lumped = disc.dx(metadata={"quadrature_rule": "vertex", "quadrature_degree": 1})
        a, L = law.ingrowth_forms(self.f, self.f_old, self.g, self.D, self.r, dt, disc.dx,
                                  lumped)
        self.solver = LinearSolver(a, L, self.f, [self.bc], field="ingrowth",
                                   preset="front", petsc_options=solver_options)
        self._update_cells()

    def _source_dofs(self, cells: np.ndarray) -> np.ndarray:
        """Local P1 dofs of the given cells, completed across ranks (a vertex of a host
        cell on another rank, not ghosted here, is a source too)."""
        V = self.disc.V
        mark = fem.Function(V)
        mark.x.array[np.unique(V.dofmap.list[np.flatnonzero(cells)].ravel())] = 1.0
        mark.x.scatter_reverse(la.InsertMode.add)
        mark.x.scatter_forward()
        return np.flatnonzero(mark.x.array > 0.5).astype(np.int32)

    @property
    def enabled(self) -> bool:
        return self.solver is not None

    # ------------------------------------------------------------------ stepping
    def permissiveness(self) -> np.ndarray:
        """``g`` per cell from the current porosity and skeleton modulus (0 off-scaffold)."""
        c, m, sc = self.cfg, self.material, self.disc.scaffold
        phi = m.porosity_cells()
        g = np.zeros(self.disc.n_cells)
        g[sc] = law.permissiveness(self.scaffold.pore_size, phi[sc], m.skeleton_modulus(phi),
                                   d_opt=c.optimal_pore_size, m=c.porosity_exponent,
                                   E_host=c.host_modulus, tolerance=c.stiffness_tolerance)
        return g

    def advance(self, t0: float, t1: float) -> dict[str, int]:
        """One semi-implicit step of ``f`` to ``t1`` (after degradation), then the
        cavitated volume; iterations."""
        if self.solver is None:
            return {}
        self.disc.set_cells(self.g, self.permissiveness())
        self.f_old.x.array[:] = self.f.x.array
        self.solver.invalidate()  # the reaction term holds fⁿ and g
        its = self.solver.solve(t1)
        # Obtuse tetrahedra can over/undershoot by round-off-sized amounts: keep 0..1.
        np.clip(self.f.x.array, 0.0, 1.0, out=self.f.x.array)
        self.f.x.scatter_forward()
        v_old = self.volume
        self._update_cells()
        self.volume_integral += 0.5 * (v_old + self.volume) * (t1 - t0)
        if math.isnan(self.t_half) and self.mean_fill() >= 0.5:
            self.t_half = t1
        self.t = t1
        return {"ingrowth": its}

    def _update_cells(self) -> None:
        """Cell means of f into the material; the cavitation indicator and volume."""
        d, m = self.disc, self.material
        self.f_dg.interpolate(self.f)  # midpoint value = vertex mean for P1
        fill = np.where(d.scaffold, d.cells_of(self.f_dg), 0.0)
        m.fill[:] = fill
        cav = d.scaffold & law.cavitated(m.w, fill, self.cfg.polymer_gone,
                                         self.cfg.filled_threshold)
        d.set_cells(self.cav, cav.astype(float))
        own = slice(0, d.n_owned)
        local = float(np.sum(d.cell_volume[own][cav[own]]))
        self.volume = d.comm.allreduce(local, op=MPI.SUM)
        self.volume_max = max(self.volume_max, self.volume)

    # ------------------------------------------------------------------ quantities
    def mean_fill(self) -> float:
        """Volume mean of the filled fraction over the scaffold."""
        d = self.disc
        own, sc = slice(0, d.n_owned), d.scaffold[: d.n_owned]
        vol = d.cell_volume[own][sc]
        num = d.comm.allreduce(float(np.sum(self.material.fill[own][sc] * vol)), op=MPI.SUM)
        den = d.comm.allreduce(float(np.sum(vol)), op=MPI.SUM)
        return num / den if den > 0 else math.nan

    def metrics(self) -> dict[str, float]:
        """The ``scaffold.ingrowth`` block of metrics.json (empty when off)."""
        if not self.enabled:
            return {}
        lv = self.lesion_volume
        frac = (lambda v: v / lv) if lv > 0 else (lambda v: math.nan)
        g = self.permissiveness()[: self.disc.n_owned][self.disc.scaffold[: self.disc.n_owned]]
        g_mean = self.disc.comm.allreduce(float(np.sum(g)), op=MPI.SUM) / max(
            self.disc.comm.allreduce(int(g.size), op=MPI.SUM), 1)
        return {
            "filled_fraction_final": self.mean_fill(),
            "time_half_filled_day": self.t_half,
            "front_speed_mean_mm_per_day": self.cfg.front_speed * g_mean,
            "permissiveness_mean_final": g_mean,
            "cavitation_volume_final_mm3": self.volume,
            "cavitation_volume_max_mm3": self.volume_max,
            "cavitation_volume_integral_mm3_day": self.volume_integral,
            "cavitation_fraction_final": frac(self.volume),
            "cavitation_fraction_max": frac(self.volume_max),
            "cavitation_fraction_time_mean": (frac(self.volume_integral) / self.t
                                              if self.t > 0 else 0.0),
        }

    # ------------------------------------------------------------------ part protocol
    def fields(self) -> dict[str, fem.Function]:
        return {"tissue_fill": self.f, "cavitation": self.cav} if self.enabled else {}

    def state(self) -> ModelState:
        if not self.enabled:
            return ModelState()
        return ModelState(
            scalars={"ingrowth_t": self.t, "cavitation_volume_max": self.volume_max,
                     "cavitation_volume_integral": self.volume_integral,
                     "ingrowth_t_half": None if math.isnan(self.t_half) else self.t_half},
            nodes={"tissue_fill": self.f.x.array.copy()},
            local=self.solver.history() if self.solver is not None else {},
        )

    def restore(self, state: ModelState) -> None:
        if not self.enabled:
            return
        s = state.scalars
        self.t = s["ingrowth_t"]
        self.volume_max = s["cavitation_volume_max"]
        self.volume_integral = s["cavitation_volume_integral"]
        self.t_half = math.nan if s["ingrowth_t_half"] is None else s["ingrowth_t_half"]
        self.f.x.array[:] = state.nodes["tissue_fill"]
        self.f.x.scatter_forward()
        if self.solver is not None:
            self.solver.restore_history(state.local)
        self._update_cells()

    def destroy(self) -> None:
        if self.solver is not None:
            self.solver.destroy()
            self.solver = None
