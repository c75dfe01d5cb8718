"""The coupled model: growth factors, enzymes, degradation, carriers, cells and mechanics.

A composition of parts on one :class:`~scaffoldfem.model.discretisation.Discretisation`
(docs/architecture: "The model"). One :meth:`CoupledModel.step` advances every
field over ``[t, t + Δt]`` by operator splitting, in this order (docs/model.md,
"Coupling and time stepping"):

1. cells: graft cohorts (placed at their transplant time), exact survival with the
   death rate frozen over the step, time-averaged density for secretion;
2. ROS (with scavengers) and enzymes ``m_j`` (MMP-9, MMP-2, ...): implicit
   transport with sources driven by the prescribed injury timeline (``[inflammation]``);
   then chondroitinase ABC (transport, exact first-order loss of activity) and the
   scar's CSPG level (exact per-cell update with ``m_j``, ChABC at the new level);
3. degradation ``w``: exact update with ``Σ_j m_j^{n+1}`` and ``ε_vol^n`` frozen
   (first order in the enzymes);
4. carriers of each factor: exact release with the same frozen ``m_j``, ``w``; the
   amount released becomes the source ``R_i`` of step 6 (mass exact); affinity
   carriers set their binding sink and unbinding source; secretion, doses;
4b. tissue ingrowth (``[ingrowth]``, off by default): the filled pore fraction ``f``
   advances one semi-implicit Fisher–KPP step with ``w^{n+1}``; its cell means enter
   α, D, E in step 5; the cavitated volume is booked;
5. porosity → α, D, E (transport matrices refreshed only when φ moved by more than
   ``time.coefficient_tolerance``);
6. each growth factor ``c_i``: implicit transport (BE or BDF2) with R, S, doses,
   and its balance terms booked from the same forms; affinity carriers then take
   their exchange with the new ``c_i``;
7. mechanics, when E changed by more than ``mechanics.update_tolerance`` or on its
   schedule; ε_vol feeds back into step 3 of the next step.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

from dolfinx import fem
from dolfinx import mesh as dmesh

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.dorsal_horn import dorsal_cut
from scaffoldfem.config.study import Study
from scaffoldfem.model.balance import BalanceLedger
from scaffoldfem.model.cells import Cells
from scaffoldfem.model.cspg import CSPG
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.enzyme import Enzymes
from scaffoldfem.model.exposure import RegionMeans
from scaffoldfem.model.ingrowth import Ingrowth
from scaffoldfem.model.material import Change, Material
from scaffoldfem.model.mechanics import Mechanics
from scaffoldfem.model.ros import ROS
from scaffoldfem.model.species import SpeciesTransport, cell_concentrations
from scaffoldfem.model.state import ModelState, Part

P = TypeVar("P", bound=Part)


class CoupledModel:
    """All fields of one run on a distributed mesh; a context manager that frees its
    PETSc objects on exit.

    Args:
        study: Validated study (each part gets its own sections).
        mesh: Tetrahedral mesh in mm (cord axis z).
        cell_tags, facet_tags: Region tags (``scaffoldfem.regions``).
    """

    def __init__(
        self, study: Study, mesh: dmesh.Mesh, cell_tags: dmesh.MeshTags, facet_tags: dmesh.MeshTags
    ):
        self.time_cfg = study.time
        self.t = 0.0
        self.nstep = 0
        self.dt_last: float | None = None
        d = self.disc = Discretisation(mesh, cell_tags, facet_tags)
        self.dt = fem.Constant(mesh, study.time.dt)
        transport = study.solver.get("transport")
        neg = study.time.negative_tolerance
        #: The parts in construction order (a part may read those before it).
        self.parts: list[Part] = []
        try:  # a failed set-up frees what it had built
            self.material = self._add(Material(study.scaffold, study.tissue, d))
            self.ingrowth = self._add(Ingrowth(study.ingrowth, study.scaffold, d, self.material,
                                               self.dt, solver_options=transport))
            self.cells = self._add(Cells(study.cells, study.inflammation, d))
            self.ros = self._add(
                ROS(study.ros, study.inflammation, study.scavengers, d, self.material,
                    self.dt, solver_options=transport, negative_tolerance=neg)
            )
            self.enzymes = self._add(
                Enzymes(
                    study.enzymes,
                    study.inflammation,
                    d,
                    self.material,
                    self.dt,
                    solver_options=transport,
                    negative_tolerance=neg,
                )
            )
            self.cspg = self._add(CSPG(study.cspg, study.chabc, study.inflammation, d,  # + ChABC
                                       self.material, self.dt, transport, neg))
            self.species = self._add(
                SpeciesTransport(
                    study.species,
                    study.time.scheme,
                    d,
                    self.material,
                    self.dt,
                    enzyme_masses={e.name: e.molar_mass for e in study.enzymes},
                    solver_options=transport,
                    negative_tolerance=neg,
                )
            )
            self.ledger = self._add(BalanceLedger(d, self.material, self.species.members))
            self.mechanics = self._add(
                Mechanics(
                    study.mechanics,
                    study.geometry.cord.length,
                    d,
                    self.material,
                    solver_options=study.solver.get("mechanics", {}),
                )
            )
        except BaseException:
            self.destroy()
            raise
        dh = study.exposure.dorsal_horn
        self.regions = RegionMeans(d, study.geometry.lesion_z(), study.exposure.host_band,
                                   dorsal_y=dorsal_cut(study.geometry.grey_matter, dh.depth),
                                   dorsal_band=dh.band)
        self._kd = {sp.name: study.axons.kd(sp.name) for sp in study.species}

    def _add(self, part: P) -> P:
        self.parts.append(part)
        return part

    # ------------------------------------------------------------------ lifetime
    def __enter__(self) -> CoupledModel:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def destroy(self) -> None:
        """Free PETSc objects (collective; safe to call twice)."""
        for part in self.parts:
            part.destroy()

    # ------------------------------------------------------------------ stepping
    def step(self, dt: float) -> dict[str, int]:
        """Advance every field from ``t`` to ``t + dt`` (see the module docstring).

        Returns:
            Iterations per solved field.

        Raises:
            SolverError: a solve failed (the caller restores and cuts the step).
            SimulationFailed: NaN/Inf or a negative concentration beyond tolerance.
        """
        t0, t1 = self.t, self.t + dt
        self._set_dt(dt)
        secreted = self.cells.advance(  # 1
            t0, t1, cell_concentrations(self.species, self.cells.trophic_factors))
        iters = self.ros.advance(t0, t1)  # 2
        iters |= self.enzymes.advance(t0, t1)
        iters |= self.cspg.advance(t0, t1, self.enzymes.cells())  # 2b: ChABC, then CSPG
        w_old = self.material.degrade(dt, self.enzymes.total(), self.mechanics.eps_cells)  # 3
        self.species.set_sources(t0, t1, dt, w_old, self.enzymes.cells(), secreted,  # 4
                                 ros=self.ros.cells)
        iters |= self.ingrowth.advance(t0, t1)  # 4b: tissue ingrowth (after w, before α)
        self._update_coefficients()  # 5
        scheme = self._scheme()  # 6
        omega = dt / self.dt_last if scheme == "bdf2" else 1.0
        iters |= self.species.solve(t1, scheme, omega)
        self.species.bind(dt, t1)
        self.ledger.account(scheme, dt)
        iters |= self.mechanics.advance(t1)  # 7
        self.t, self.dt_last = t1, dt
        self.nstep += 1
        return iters

    def _scheme(self) -> str:
        return "bdf2" if (self.time_cfg.scheme == "bdf2" and self.nstep > 0) else "be"

    def _set_dt(self, dt: float) -> None:
        if self.dt_last is None or abs(dt - float(self.dt.value)) > 1e-14 * dt:
            self.dt.value = dt
            self._invalidate_transport()

    def _update_coefficients(self) -> None:
        change = self.material.advance(self.time_cfg.coefficient_tolerance)
        self.ledger.shift_weights(refreshed=change is Change.REFRESHED)
        if change is Change.REFRESHED:
            self._invalidate_transport()
        elif change is Change.OLD_LEVELS:
            # α of this step becomes α_prev next step and α_prev2 the step after: the
            # right-hand-side matrices (assembled with A) hold them.
            self.species.reassemble_old_levels()

    def _invalidate_transport(self) -> None:
        self.ros.invalidate()
        self.enzymes.invalidate()
        self.cspg.invalidate()
        self.species.invalidate()

    def ensure_mechanics(self) -> bool:
        """Solve the mechanics now if it is on and was never solved; True if solved."""
        if not self.mechanics.enabled or self.mechanics.solves > 0:
            return False
        self.mechanics.advance(self.t, force=True)
        return True

    # ------------------------------------------------------------------ state
    def state(self) -> ModelState:
        """A copy of the whole evolving state (snapshot before a step, checkpoint)."""
        own = ModelState(scalars={"t": self.t, "nstep": self.nstep, "dt_last": self.dt_last})
        return own.merged(*(part.state() for part in self.parts))

    def restore(self, state: ModelState) -> None:
        """Return to ``state`` (undo a failed step, or resume from a checkpoint)."""
        s = state.scalars
        self.t, self.nstep, self.dt_last = s["t"], s["nstep"], s["dt_last"]
        for part in self.parts:  # material first: the others read α and E
            part.restore(state)
        self._invalidate_transport()

    # ------------------------------------------------------------------ outputs
    @property
    def species_names(self) -> tuple[str, ...]:
        return self.species.names

    def fields(self) -> dict[str, fem.Function]:
        """Output fields by name (P1 concentrations, DG0 material, P1/P2 displacement)."""
        out = self.species.fields()
        for part in (self.ros, self.enzymes, self.cspg, self.material, self.ingrowth, self.cells,
                     self.mechanics):
            out.update(part.fields())
        return out

    def balance(self) -> dict[str, dict[str, float]]:
        """Cumulative balance terms (ng) of every species since t = 0."""
        return {name: self.ledger.totals(name) for name in self.species_names}

    def masses(self) -> dict[str, tuple[float, float]]:
        """Free content ∫αc and scaffold-bound reservoir ∫b (ng) of every species."""
        return {
            sp.name: (self.ledger.content(sp.name), self.species.bound(sp))
            for sp in self.species.members
        }

    def lesion_means(self) -> dict[str, tuple[float, float]]:
        """Mean concentration (ng/mL) over the lesion and over grey matter, per species."""
        return self.regions.lesion_and_grey({sp.name: sp.c for sp in self.species.members})

    def exposure_means(self) -> dict[str, dict[str, float]]:
        """Per species: mean concentration and receptor occupancy over the lesion and
        the near host; per enzyme and ROS: the lesion mean (:class:`RegionMeans`)."""
        others = {f.name: f.m for f in self.enzymes.members}
        if self.ros.enabled:
            others["ROS"] = self.ros.r
        return self.regions.exposure({sp.name: sp.c for sp in self.species.members},
                                     self._kd, others)

    def scaffold_summary(self) -> dict[str, float]:
        """Polymer mass left, mean porosity and mean modulus (kPa) of the scaffold."""
        mat = self.material
        return {
            "mass_fraction": mat.mass_fraction_remaining(),
            "porosity": mat.scaffold_mean(mat.phi),
            "modulus_kPa": mat.scaffold_mean(mat.E),
        }

    def metrics(self) -> dict[str, Any]:
        """The model's part of metrics.json (identical on every rank)."""
        masses = self.masses()
        scaffold = self.scaffold_summary()
        mesh, mc = self.disc.mesh, self.mechanics
        return {
            "species": {
                name: {
                    "mass_balance_rel_error": self.ledger.error(name),
                    "final_mass_ng": masses[name][0],
                    "bound_ng": masses[name][1],
                }
                for name in self.species_names
            },
            "scaffold": {
                "mass_remaining_fraction": scaffold["mass_fraction"],
                "porosity_mean_final": scaffold["porosity"],
                "modulus_mean_final_kPa": scaffold["modulus_kPa"],
                # [ingrowth]: filled fraction, cavitated volume and lesion fraction.
                **({"ingrowth": self.ingrowth.metrics()} if self.ingrowth.enabled else {}),
            },
            **({"cspg": self.cspg.summary()} if self.cspg.enabled else {}),  # CSPG, ChABC
            # Graft cohorts: cells placed and left, ng secreted per species.
            "cells": self.cells.metrics(),
            # max_* do not settle under refinement (singular corner); the means/p95 converge.
            "mechanics": mc.metrics(),
            "mesh": {
                "cells": mesh.topology.index_map(mesh.topology.dim).size_global,
                "vertices": mesh.topology.index_map(0).size_global,
            },
        }
