"""Transplanted cell grafts: cohorts placed at their transplant time, dying faster in
inflammation and slower with trophic support, secreting while they live.

Per cohort (``[[cells.cohorts]]``, :mod:`scaffoldfem.config.cells`) a density per cell
(cells/mm³): 0 before its transplant time ``t_T``, ρ0 in its regions at ``t_T``, then
``dρ/dt = −k ρ`` with ``k = k0 (1 + β I)/(1 + γ occ)`` (:mod:`scaffoldfem.physics.grafts`).
Over a step the rate is frozen (I its Simpson mean over the part of the step after
``t_T``, occ from the factor at the start of the step), so survival is exact and the
step's secretion ``Σ_cohorts σ ρ̄ · 1000`` (ng/mL/day, ρ̄ the exact step mean) is what
the cells made; a step straddling ``t_T`` counts only its part after ``t_T``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.cells import CellsConfig, Cohort
from scaffoldfem.config.inflammation import InflammationConfig
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.enzyme import region_indicator
from scaffoldfem.model.state import ModelState
from scaffoldfem.physics.grafts import death_rate, graft_step, occupancy, simpson_mean
from scaffoldfem.physics.inflammation import presence
from scaffoldfem.physics.materials import half_life_to_rate
from scaffoldfem.physics.transport import secretion_source, to_ng


@dataclass
class CohortField:
    """One graft on the mesh: its placed and current density, drivers, output field."""

    cfg: Cohort
    rho0: np.ndarray  # density placed at t_T, per cell (cells/mm³)
    rho: np.ndarray  # density now
    drivers: list[tuple[str, float, np.ndarray]]  # (population, weight, χ per cell)
    density: fem.Function  # DG0 cells_<name>: ρ at the current time
    secreted: dict[str, float] = field(default_factory=dict)  # cumulative ng per species

    @property
    def name(self) -> str:
        return self.cfg.name


class Cells:
    """The graft cohorts of a study (cells/mm³ per cell).

    Args:
        cfg: The ``cells`` study section.
        timeline: The ``inflammation`` section (presence of the driving populations).
        disc: The shared discretisation.
    """

    def __init__(self, cfg: CellsConfig, timeline: InflammationConfig, disc: Discretisation):
        self.disc, self.timeline = disc, timeline
        self.members: list[CohortField] = []
        chi: dict[str, np.ndarray] = {}
        for c in cfg.cohorts if cfg.enabled else []:
            rho0 = np.zeros(disc.n_cells)
            rho0[disc.mask(c.regions)] = c.density
            drivers = []
            for pop, weight in c.inflammation_drivers.items():
                if pop not in chi:
                    chi[pop] = region_indicator(disc, timeline.course(pop).regions,
                                                timeline.interface_band)
                drivers.append((pop, weight, chi[pop]))
            rho = rho0.copy() if c.transplant_time <= 0.0 else np.zeros(disc.n_cells)
            self.members.append(CohortField(c, rho0, rho, drivers,
                                            disc.dg0(f"cells_{c.name}", rho),
                                            {sp: 0.0 for sp in c.secretion}))
        self.total = disc.dg0("cell_density", self._total())

    @property
    def trophic_factors(self) -> tuple[str, ...]:
        """Species whose concentration some cohort's survival reads."""
        return tuple(dict.fromkeys(m.cfg.trophic_factor for m in self.members
                                   if m.cfg.trophic_factor is not None))

    def _total(self) -> np.ndarray:
        return sum((m.rho for m in self.members), np.zeros(self.disc.n_cells))

    def inflammation_index(self, m: CohortField, a: float, b: float) -> np.ndarray:
        """``Σ w p̄_pop χ_pop`` per cell, ``p̄`` the Simpson mean of presence over [a, b]."""
        out = np.zeros(self.disc.n_cells)
        for pop, weight, chi in m.drivers:
            out += weight * simpson_mean(lambda t, p=pop: presence(t, self.timeline, p), a, b) \
                * chi
        return out

    def rate(self, m: CohortField, t0: float, t1: float,
             trophic: Mapping[str, np.ndarray]) -> np.ndarray:
        """Death rate per cell frozen over ``[t0, t1]`` (its part after ``t_T``)."""
        c = m.cfg
        a = max(t0, c.transplant_time)
        occ = 0.0
        if c.trophic_factor is not None:
            occ = occupancy(trophic[c.trophic_factor], c.trophic_half_saturation)
        return death_rate(half_life_to_rate(c.half_life), c.inflammation_sensitivity,
                          self.inflammation_index(m, a, t1), c.trophic_protection, occ)

    def advance(self, t0: float, t1: float,
                trophic: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Survival over ``[t0, t1]``; the step's secretion source (ng/mL/day) per cell.

        Args:
            t0, t1: The step (day).
            trophic: Cell-mean concentration (ng/mL) at ``t0`` of each
                :attr:`trophic_factors` species.

        Returns:
            Secretion per species (only those some cohort secretes), summed over cohorts.
        """
        d, dt = self.disc, t1 - t0
        out: dict[str, np.ndarray] = {}
        vol = d.cell_volume[: d.n_owned]
        local: list[float] = []
        for m in self.members:
            if t1 < m.cfg.transplant_time:  # not placed yet: nothing lives, nothing made
                local.extend(0.0 for _ in m.cfg.secretion)
                continue
            k = self.rate(m, t0, t1, trophic or {})
            m.rho, mean = graft_step(m.rho, m.rho0, t0, t1, m.cfg.transplant_time, k)
            d.set_cells(m.density, m.rho)
            for sp, sigma in m.cfg.secretion.items():
                src = secretion_source(sigma, mean)
                out[sp] = out[sp] + src if sp in out else src
                local.append(dt * float(src[: d.n_owned] @ vol))
        if local:  # the cumulative ng each cohort secreted (as the ledger books it)
            sums = d.comm.allreduce(np.array(local), op=MPI.SUM)
            pairs = [(m, sp) for m in self.members for sp in m.cfg.secretion]
            for (m, sp), v in zip(pairs, sums, strict=True):
                m.secreted[sp] += float(to_ng(v))
        d.set_cells(self.total, self._total())
        return out

    # ------------------------------------------------------------------ outputs
    def _counts(self, attr: str) -> dict[str, float]:
        """∫ (density ``attr``) dV per cohort, identical on every rank (one reduction)."""
        d = self.disc
        vol = d.cell_volume[: d.n_owned]
        local = np.array([float(getattr(m, attr)[: d.n_owned] @ vol) for m in self.members])
        sums = d.comm.allreduce(local, op=MPI.SUM) if len(local) else local
        return {m.name: float(v) for m, v in zip(self.members, sums, strict=True)}

    def surviving(self) -> dict[str, float]:
        """Number of living cells per cohort (∫ ρ dV), identical on every rank."""
        return self._counts("rho")

    def placed(self) -> dict[str, float]:
        """Number of cells each cohort places at its transplant time."""
        return self._counts("rho0")

    def secreted(self) -> dict[str, dict[str, float]]:
        """Cumulative ng each cohort secreted per species since t = 0."""
        return {m.name: dict(m.secreted) for m in self.members}

    def metrics(self) -> dict[str, dict[str, object]]:
        """Per cohort: its type and time, cells placed and left, ng secreted per species."""
        placed, alive = self.placed(), self.surviving()
        return {
            m.name: {
                "cell_type": m.cfg.cell_type,
                "transplant_time_day": m.cfg.transplant_time,
                "placed_cells": placed[m.name],
                "surviving_cells_final": alive[m.name],
                "surviving_fraction_final": alive[m.name] / placed[m.name]
                if placed[m.name] > 0 else 0.0,
                "secreted_ng": dict(m.secreted),
            }
            for m in self.members
        }

    def fields(self) -> dict[str, fem.Function]:
        out = {"cell_density": self.total}
        out.update({f"cells_{m.name}": m.density for m in self.members})
        return out

    def state(self) -> ModelState:
        return ModelState(
            cells={f"cells:{m.name}": m.rho.copy() for m in self.members},
            scalars={f"cells_secreted:{m.name}": dict(m.secreted) for m in self.members},
        )

    def restore(self, state: ModelState) -> None:
        for m in self.members:
            m.rho = state.cells[f"cells:{m.name}"].copy()
            m.secreted = dict(state.scalars[f"cells_secreted:{m.name}"])
            self.disc.set_cells(m.density, m.rho)
        self.disc.set_cells(self.total, self._total())

    def destroy(self) -> None:
        """Nothing to free (no solver)."""
