"""Transplanted cells: density ρ0 in ``cells.regions`` at t = 0 and exact survival
``ρ(t) = ρ0 e^{−k t}``; a step's secretion uses the exact time-mean of ρ over it."""

from __future__ import annotations

import numpy as np
from dolfinx import fem

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.physics import CellsConfig
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.state import ModelState
from scaffoldfem.physics.degradation import cell_survival_step
from scaffoldfem.physics.materials import half_life_to_rate


class Cells:
    """Cell density per cell (cells/mm³).

    Args:
        cfg: The ``cells`` study section.
        disc: The shared discretisation.
    """

    def __init__(self, cfg: CellsConfig, disc: Discretisation):
        self.disc = disc
        self.k_death = half_life_to_rate(cfg.half_life)
        self.rho = np.zeros(disc.n_cells)
        if cfg.enabled:
            self.rho[disc.mask(cfg.regions)] = cfg.density
        self.rho_mean = disc.dg0("cell_density", self.rho)

    def advance(self, dt: float) -> np.ndarray:
        """Survival over ``dt``; returns the time-mean density over the step per cell."""
        self.rho, rho_mean = cell_survival_step(self.rho, dt, self.k_death)
        self.disc.set_cells(self.rho_mean, rho_mean)
        return rho_mean

    def fields(self) -> dict[str, fem.Function]:
        return {"cell_density": self.rho_mean}

    def state(self) -> ModelState:
        return ModelState(cells={"rho": self.rho.copy()})

    def restore(self, state: ModelState) -> None:
        self.rho = state.cells["rho"].copy()

    def destroy(self) -> None:
        """Nothing to free (no solver)."""
