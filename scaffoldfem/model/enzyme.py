"""Matrix metalloproteinases: one transport field per ``[[enzymes]]`` entry.

Each enzyme ``m_j`` obeys ``∂(α m_j)/∂t = ∇·(D_j ∇m_j) − α k_j m_j + A_j p̄_j χ_j`` with
``k_j = ln 2/t½ + k_TIMP``, ``D_j`` the flux-basis diffusivity of its free
diffusivity and its own tissue tortuosity, ``p̄_j`` the presence of its driving
cell population (``[inflammation]``, :mod:`scaffoldfem.physics.inflammation`)
averaged over the step by Simpson's rule (so a one-day peak is not sampled at a
step end only), and ``χ_j`` the indicator of its source regions (``lesion`` =
scaffold ∪ channel ∪ cavity, ``scar``, a band of cells around
``scaffold_interface``). α is lagged over the enzyme step.

Per-cell values ``m_j`` (DG0 interpolant, clipped at 0) feed degradation and
release, where cleavage is first order in each enzyme (Lutolf et al. 2003 PNAS
100:5413): :meth:`Enzymes.total` gives ``Σ_j m_j`` for the matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from dolfinx import fem
from dolfinx import mesh as dmesh

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.inflammation import EnzymeEntry, InflammationConfig
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.model.discretisation import LESION_REGIONS, Discretisation
from scaffoldfem.model.material import Material
from scaffoldfem.model.state import ModelState
from scaffoldfem.model.transport import TransportParams
from scaffoldfem.physics.inflammation import enzyme_decay_rate, enzyme_source_rate
from scaffoldfem.regions import cell_tag, facet_tag


def step_mean(rate, t0: float, t1: float) -> float:
    """Simpson mean of ``rate(t)`` over ``[t0, t1]``."""
    tm = 0.5 * (t0 + t1)
    return float((rate(t0) + 4.0 * rate(tm) + rate(t1)) / 6.0)


def interface_band(disc: Discretisation, halfwidth: float) -> np.ndarray:
    """Cells whose midpoint lies within ``halfwidth`` of a ``scaffold_interface`` facet."""
    from scipy.spatial import cKDTree  # heavy, needed once per set-up

    tdim = disc.mesh.topology.dim
    facets = disc.facet_tags.find(facet_tag("scaffold_interface"))
    mids = dmesh.compute_midpoints(disc.mesh, tdim - 1, facets.astype(np.int32))
    allmids = np.vstack([m for m in disc.comm.allgather(mids) if len(m)] or [np.zeros((0, 3))])
    band = np.zeros(disc.n_cells, dtype=bool)
    if len(allmids):
        cm = dmesh.compute_midpoints(disc.mesh, tdim, np.arange(disc.n_cells, dtype=np.int32))
        # Bounded: only the band matters, and an unbounded nearest-facet search of every
        # cell costs ~15x more (6 s on the medium mesh, serial); cells beyond get inf.
        dist, _ = cKDTree(allmids).query(cm, distance_upper_bound=2.0 * halfwidth)
        band = dist <= halfwidth
    return band


def region_indicator(disc: Discretisation, regions: Sequence[str], band: float) -> np.ndarray:
    """1 in the cells of ``regions`` (``lesion``, ``scar``, ``scaffold_interface``), else 0."""
    out = np.zeros(disc.n_cells)
    for r in regions:
        if r == "lesion":
            out[np.isin(disc.region, [cell_tag(x) for x in LESION_REGIONS])] = 1.0
        elif r == "scaffold_interface":
            out[interface_band(disc, band)] = 1.0
        else:
            out[disc.region == cell_tag(r)] = 1.0
    return out


@dataclass
class EnzymeField:
    """One enzyme: its P1 field, per-cell values, source (shape and this step's) and solver."""

    entry: EnzymeEntry
    m: fem.Function
    m_old: fem.Function
    m_dg: fem.Function
    cells: np.ndarray
    shape: np.ndarray  # 1 where the enzyme is produced (DG0 dof values)
    source: fem.Function  # rate × shape this step (DG0)
    solver: LinearSolver

    @property
    def name(self) -> str:
        return self.entry.name


class Enzymes:
    """The enzymes of a study (a part of the coupled model).

    Args:
        entries: The ``enzymes`` study list (may be empty).
        timeline: The ``inflammation`` section (drives the sources).
        disc: The shared discretisation.
        material: Supplies α and the diffusivity tensors.
        dt: The step Constant shared by the transport solvers.
        solver_options: PETSc options of the transport solvers.
        negative_tolerance: ``time.negative_tolerance``.
    """

    def __init__(
        self,
        entries: Sequence[EnzymeEntry],
        timeline: InflammationConfig,
        disc: Discretisation,
        material: Material,
        dt: fem.Constant,
        *,
        solver_options: Mapping[str, Any] | None,
        negative_tolerance: float,
    ):
        self.timeline, self.disc, self.tolerance = timeline, disc, negative_tolerance
        self.members: list[EnzymeField] = []
        for e in entries:
            shape = disc.dg0(f"source_shape_{e.name}",
                             region_indicator(disc, e.regions, e.interface_band))
            m, src = fem.Function(disc.V, name=e.name), disc.dg0(f"source_{e.name}")
            m_old = fem.Function(disc.V)
            params = TransportParams(
                c_old=m_old, alpha=material.alpha, alpha_old=material.alpha,
                D=material.diffusivity(fem.Constant(disc.mesh, e.diffusivity_free),
                                       tortuosity=e.tortuosity),
                k=fem.Constant(disc.mesh, enzyme_decay_rate(e)), dt=dt,
                sources={"source": src}, dx=disc.dx, ds=disc.ds)
            a, L = params.forms(disc.V)
            # The source's right-hand-side matrix is assembled once and the old level
            # applied in closed form (as for ROS): a step assembles no volume term.
            solver = LinearSolver(a, L, m, field=e.name, preset="transport",
                                  petsc_options=solver_options, rhs_coefficients=[src],
                                  static_rhs=[src], mass_rhs=params.old_level_mass(),
                                  cellwise=params.cellwise())
            self.members.append(EnzymeField(e, m, m_old, fem.Function(disc.Q),
                                            np.zeros(disc.n_cells), shape.x.array.copy(),
                                            src, solver))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.members)

    def rate(self, name: str, t0: float, t1: float) -> float:
        """Mean production rate (ng/mL/day) of enzyme ``name`` over ``[t0, t1]``."""
        f = self.members[self.names.index(name)]
        return step_mean(lambda t: enzyme_source_rate(t, f.entry, self.timeline), t0, t1)

    def advance(self, t0: float, t1: float) -> dict[str, int]:
        """Implicit step of every enzyme to ``t1``; iterations by name."""
        iters = {}
        for f in self.members:
            f.m_old.x.array[:] = f.m.x.array
            f.source.x.array[:] = self.rate(f.name, t0, t1) * f.shape
            iters[f.name] = f.solver.solve(t1)
            self.disc.check_concentration(f.m, f.name, t1, self.tolerance)
            f.m_dg.interpolate(f.m)
            f.cells = np.maximum(self.disc.cells_of(f.m_dg), 0.0)
        return iters

    def cells(self) -> dict[str, np.ndarray]:
        """Per-cell concentration (ng/mL, ≥ 0) of every enzyme."""
        return {f.name: f.cells for f in self.members}

    def total(self) -> np.ndarray:
        """``Σ_j m_j`` per cell: every enzyme cuts the matrix (first order in each)."""
        out = np.zeros(self.disc.n_cells)
        for f in self.members:
            out += f.cells
        return out

    def invalidate(self) -> None:
        """α, D or Δt changed: re-assemble the matrices at the next solve."""
        for f in self.members:
            f.solver.invalidate()

    # ------------------------------------------------------------------ part protocol
    def fields(self) -> dict[str, fem.Function]:
        return {f.name: f.m for f in self.members}

    def state(self) -> ModelState:
        out = ModelState()
        for f in self.members:
            out.nodes[f"enzyme:{f.name}"] = f.m.x.array.copy()
            out.cells[f"enzyme_cells:{f.name}"] = f.cells.copy()
            out.local.update(f.solver.history())
        return out

    def restore(self, state: ModelState) -> None:
        for f in self.members:
            f.m.x.array[:] = state.nodes[f"enzyme:{f.name}"]
            f.cells[:] = state.cells[f"enzyme_cells:{f.name}"]
            f.solver.restore_history(state.local)

    def destroy(self) -> None:
        for f in self.members:
            f.solver.destroy()
        self.members.clear()
