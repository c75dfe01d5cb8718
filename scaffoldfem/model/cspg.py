"""The CSPG level of the scar (a part of the coupled model): DG0, one value per cell.

``ds/dt = k_dep A(t) χ (1 − s/s_max) − (Σ_j k_j m_j + k_ch c_ChABC) s``
(:mod:`scaffoldfem.physics.cspg`). CSPGs are large matrix molecules held in the
scar's extracellular matrix (not a solute): they are not transported, so each cell
evolves on its own and the step is the exact solution of its linear ODE with the
enzymes and ChABC frozen at the new level (as scaffold degradation freezes its
enzymes) and the astrocytes' presence averaged over the step (Gauss-Legendre).
The DG0 field ``cspg`` is what the growth cones read (smoothed like their other cue
fields) in place of the static scar tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.cspg import ChABCConfig, CSPGConfig
from scaffoldfem.config.inflammation import InflammationConfig
from scaffoldfem.model.chabc import ChABC
from scaffoldfem.model.discretisation import LESION_REGIONS, Discretisation
from scaffoldfem.model.enzyme import region_indicator
from scaffoldfem.model.material import Material
from scaffoldfem.model.state import ModelState
from scaffoldfem.physics.cspg import clearance_rate, cspg_step, driver_mean
from scaffoldfem.regions import cell_tag

#: The growth cones' copy of the level (:attr:`CSPG.cue`) follows ``s`` once it moved
#: by more than this anywhere; kept in the state, so a resumed run smooths the same cue.
#: 1e-3 (was 1e-4): ≤ 0.2 % in the cone speed, less than half the cue solves (model.md).
CUE_TOLERANCE = 1e-3


class CSPG:
    """The scar's CSPG level ``s`` (1 = mature scar) and the ChABC that digests it.

    Args:
        cfg: The ``[cspg]`` section (``enabled = false``: no field; the growth cones
            then see the static tag ``axons.scar_cspg``).
        chabc: The ``[chabc]`` section (:class:`~scaffoldfem.model.chabc.ChABC`, a
            field only when dosed).
        timeline: The ``[inflammation]`` section (presence of the depositing cells).
        disc: The shared discretisation.
        material, dt, solver_options, negative_tolerance: For the ChABC transport.
    """

    def __init__(self, cfg: CSPGConfig, chabc: ChABCConfig, timeline: InflammationConfig,
                 disc: Discretisation, material: Material, dt: fem.Constant,
                 solver_options: Mapping[str, Any] | None, negative_tolerance: float):
        self.cfg, self.chabc_cfg, self.timeline, self.disc = cfg, chabc, timeline, disc
        self.chabc = ChABC(chabc, disc, material, dt, solver_options=solver_options,
                           negative_tolerance=negative_tolerance)
        self.s: fem.Function | None = None
        if not cfg.enabled:
            return
        self.chi = region_indicator(disc, cfg.regions, cfg.interface_band)
        self.s = disc.dg0("cspg", cfg.initial * self.chi)
        #: What the growth cones read: ``s`` as of its last move beyond CUE_TOLERANCE
        #: (their smoothing is solved only when it changes).
        self.cue = disc.dg0("cspg_cue", cfg.initial * self.chi)
        own = disc.n_owned
        vol = disc.cell_volume[:own]
        self._where: dict[str, tuple[np.ndarray, float]] = {}
        for name, sel in (("scar", disc.region == cell_tag("scar")),
                          ("lesion", disc.mask(LESION_REGIONS)),
                          ("deposition", self.chi > 0)):
            v = disc.comm.allreduce(float(vol[sel[:own]].sum()), op=MPI.SUM)
            if v > 0:
                self._where[name] = (sel[:own], v)

    @property
    def enabled(self) -> bool:
        return self.s is not None

    def cells(self) -> np.ndarray:
        """Per-cell level (zeros when off)."""
        if self.s is None:
            return np.zeros(self.disc.n_cells)
        return self.disc.cells_of(self.s)

    def advance(self, t0: float, t1: float, enzymes: Mapping[str, np.ndarray]
                ) -> dict[str, int]:
        """ChABC to ``t1``, then the exact CSPG step with the enzymes (ng/mL per cell, by
        name) and the active ChABC of the new level; iterations by field name."""
        iters = self.chabc.advance(t0, t1)
        if self.s is None:
            return iters
        cfg = self.cfg
        drive = driver_mean(cfg, self.timeline, t0, t1) * self.chi
        lam = clearance_rate(cfg, self.chabc_cfg, enzymes,
                             self.chabc.cells if self.chabc.enabled else None)
        s1 = cspg_step(self.cells(), t1 - t0, drive, cfg.capacity, cfg.deposition_rate, lam)
        d = self.disc
        d.set_cells(self.s, s1)
        moved = float(np.max(np.abs(s1 - d.cells_of(self.cue))[: d.n_owned], initial=0.0))
        if d.comm.allreduce(moved, op=MPI.MAX) > CUE_TOLERANCE:
            d.set_cells(self.cue, s1)
        return iters

    def invalidate(self) -> None:
        """α, D or Δt changed: the ChABC matrices are re-assembled at its next solve."""
        self.chabc.invalidate()

    def means(self) -> dict[str, float]:
        """Volume means of ``s`` over the scar, the lesion and the deposition regions
        (those present; collective, identical on every rank)."""
        if self.s is None:
            return {}
        d = self.disc
        vals = self.cells()[: d.n_owned] * d.cell_volume[: d.n_owned]
        names = list(self._where)
        local = np.array([float(vals[self._where[n][0]].sum()) for n in names])
        tot = d.comm.allreduce(local, op=MPI.SUM) if names else local
        return {n: float(tot[i] / self._where[n][1]) for i, n in enumerate(names)}

    def summary(self) -> dict[str, float]:
        """Time-series columns: mean level per region (``cspg_mean_scar``,
        ``cspg_mean_lesion``, ``cspg_mean_deposition``), and ChABC active and dosed
        (ng) when dosed; empty when off (collective)."""
        out = {f"cspg_mean_{k}": v for k, v in self.means().items()}
        if self.chabc.enabled:
            out["chabc_active_ng"] = self.chabc.active_amount()
            out["chabc_dosed_ng"] = self.chabc.dosed
        return out

    # ------------------------------------------------------------------ part protocol
    def fields(self) -> dict[str, fem.Function]:
        out = self.chabc.fields()
        if self.s is not None:
            out["cspg"] = self.s
        return out

    def state(self) -> ModelState:
        out = self.chabc.state()
        if self.s is not None:
            out.cells["cspg"] = self.cells()  # cells_of: a new array
            out.cells["cspg_cue"] = self.disc.cells_of(self.cue)
        return out

    def restore(self, state: ModelState) -> None:
        self.chabc.restore(state)
        if self.s is not None:
            self.disc.set_cells(self.s, state.cells["cspg"])
            # An older checkpoint without the cue: the level itself.
            self.disc.set_cells(self.cue, state.cells.get("cspg_cue", state.cells["cspg"]))

    def destroy(self) -> None:
        self.chabc.destroy()
