"""Quasi-static elasticity of the segment, re-solved when E changed enough or on schedule.

Rostral end clamped, caudal end displaced axially by ``axial_strain × length``,
optional pia pressure. Derived per solve: von Mises stress, volumetric strain
(fed back into degradation and, with ``mechanics.deformed_porosity``, into the
scaffold porosity that sets α, D and E), the jump of the normal strain ``n·ε n``
between the two cells of each ``scaffold_interface`` facet (DG0 strain), and
their summaries (``model/mechanics_metrics.py``): the mesh-convergent area/volume
weighted means and 95th percentiles, and the mesh-dependent maxima.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.physics import MechanicsConfig
from scaffoldfem.fem.ball_average import BallAverage
from scaffoldfem.fem.cell_operator import Lame, is_cellwise
from scaffoldfem.fem.compat import compile_expression, compile_form, interpolate_expression
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.material import Material
from scaffoldfem.model.mechanics_metrics import Peaks, summary
from scaffoldfem.model.state import ModelState
from scaffoldfem.physics import mechanics as mech
from scaffoldfem.regions import facet_tag

#: Factor of LinearSolver's ``stale_preconditioner`` for the elasticity re-solves
#: (None: a fresh GAMG set-up at every stiffness update). Off because it does not pay:
#: with the interpolation reused (the ``elasticity`` preset) a fresh set-up only
#: recomputes the Galerkin coarse operators, and the kept hierarchy's extra
#: iterations cost as much (coarse baseline, 2 ranks, 10 re-solves: 16.8 s with it,
#: 15.8 s without; 294 vs 125 iterations). Its kept solves converge 100x tighter
#: (``KeptPreconditioner.tighten``), which removed the history dependence that had
#: moved von Mises p95 by 6e-6 between 1 and 2 ranks and after a resume (test_run
#: passes with it on).
KEPT_PRECONDITIONER: float | None = None


class Mechanics:
    """Displacement ``u`` and the quantities derived from it.

    Args:
        cfg: The ``mechanics`` study section.
        cord_length: ``geometry.cord.length`` (mm): the caudal end moves by
            ``axial_strain × cord_length``.
        disc: The shared discretisation.
        material: Supplies E and ν.
        solver_options: PETSc options of the elasticity solver.
    """

    def __init__(
        self,
        cfg: MechanicsConfig,
        cord_length: float,
        disc: Discretisation,
        material: Material,
        *,
        solver_options: Mapping[str, Any],
    ):
        self.cfg, self.disc, self.material = cfg, disc, material
        self.Vu = fem.functionspace(disc.mesh, ("Lagrange", cfg.degree, (3,)))
        self.u = fem.Function(self.Vu, name="displacement")
        self.von_mises = disc.dg0("von_mises")
        self.eps_vol = disc.dg0("volumetric_strain")
        self.eps_cells = np.zeros(disc.n_cells)  # ε_vol per cell, fed to degradation
        self.E_mech = np.full(disc.n_cells, np.nan)  # E of the last solve
        self.t_mech = -math.inf
        self.solves = 0
        self.max_strain_jump = 0.0
        self.max_von_mises = 0.0
        self.peaks = Peaks()  # convergent summaries, largest over the solves
        self.last: dict[str, float] = {}  # the summaries of the latest solve
        self.solver: LinearSolver | None = None
        if cfg.enabled:
            self.solver = self._solver(cord_length, solver_options)
            self._derived_forms()

    @property
    def enabled(self) -> bool:
        return self.cfg.enabled

    def _solver(self, cord_length: float, options: Mapping[str, Any]) -> LinearSolver:
        d, mc, fdim = self.disc, self.cfg, 2
        rostral = d.facet_tags.find(facet_tag("rostral_end"))
        caudal = d.facet_tags.find(facet_tag("caudal_end"))
        bc0 = fem.dirichletbc(
            np.zeros(3), fem.locate_dofs_topological(self.Vu, fdim, rostral), self.Vu
        )
        Vz = self.Vu.sub(2)
        self.u_end = fem.Constant(d.mesh, mc.axial_strain * cord_length)
        bc1 = fem.dirichletbc(self.u_end, fem.locate_dofs_topological(Vz, fdim, caudal), Vz)
        p = {"pia": fem.Constant(d.mesh, mc.pia_pressure)} if mc.pia_pressure > 0 else None
        E, nu = self.material.E, self.material.nu
        a, L = mech.elasticity_forms(
            ufl.TrialFunction(self.Vu),
            ufl.TestFunction(self.Vu),
            E,
            nu,
            pressure=p,
            ds=d.ds,
            dx=d.dx,
        )
        # E changes slowly and smoothly as the scaffold degrades: GAMG keeps its
        # aggregation/interpolation and only redoes the Galerkin products on re-solves.
        opts = {"pc_gamg_reuse_interpolation": True, **options}
        return LinearSolver(
            a,
            L,
            self.u,
            [bc0, bc1],
            field="mechanics",
            preset="elasticity",
            near_nullspace=True,
            petsc_options=opts,
            stale_preconditioner=KEPT_PRECONDITIONER,
            # E a DG0 field: the matrix in closed form (fem/cell_operator.py, checked).
            cellwise=Lame(*mech.lame(E, nu)) if is_cellwise(E, nu) else None,
        )

    def _derived_forms(self) -> None:
        d = self.disc
        E, nu = self.material.E, self.material.nu
        # Compiled once: an Expression is an FFCx JIT call (not one per solve).
        self._vm_expr = compile_expression(mech.von_mises(mech.sigma(self.u, E, nu)),
                                           self.von_mises.function_space)
        self._ev_expr = compile_expression(mech.volumetric_strain(self.u),
                                           self.eps_vol.function_space)
        # Jump per interface facet: with CR test functions (∫_F φ_j = δ_ij |F|) the
        # vector ∫ [n·εn]² avg(φ_i) dS over the facets is |F_i| [n·εn]²_i (the two
        # cells' values for P1; the facet RMS of the traces' jump for P2).
        tdim = d.mesh.topology.dim
        cr = fem.functionspace(d.mesh, ("CR", 1))
        facets = d.facet_tags.find(facet_tag("scaffold_interface"))
        f2c = d.mesh.topology.connectivity(tdim - 1, tdim)
        interior = np.diff(f2c.offsets)[facets] == 2
        dofs = fem.locate_dofs_topological(cr, tdim - 1, facets[interior])
        self._jump_dofs = dofs[dofs < cr.dofmap.index_map.size_local]
        v, n = ufl.TestFunction(cr), ufl.FacetNormal(d.mesh)
        dS = d.dS(facet_tag("scaffold_interface"))
        jump = mech.normal_strain_jump(mech.epsilon(self.u), n)
        self._jump_form = compile_form(jump**2 * ufl.avg(v) * dS)
        area = d.owned_vector(ufl.avg(v) * dS)[self._jump_dofs]
        self._jump_dofs, self._facet_area = self._jump_dofs[area > 0], area[area > 0]
        mid = cr.tabulate_dof_coordinates()[self._jump_dofs]  # facet midpoints
        self._smooth = BallAverage(mid, self._facet_area, self.cfg.interface_averaging_length,
                                   d.comm)

    # ------------------------------------------------------------------ solving
    def advance(self, t: float, force: bool = False) -> dict[str, int]:
        """Re-solve at ``t`` if E changed by more than ``update_tolerance`` since the last
        solve, ``update_interval`` has passed, or ``force``; iterations (0: not solved)."""
        if self.solver is None:
            return {}
        d, mc = self.disc, self.cfg
        E = d.cells_of(self.material.E)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(E - self.E_mech) / np.maximum(np.abs(self.E_mech), 1e-300)
        rel = np.where(np.isnan(rel), np.inf, rel)
        changed = d.comm.allreduce(float(np.max(rel[: d.n_owned], initial=0.0)), op=MPI.MAX)
        if not force and changed <= mc.update_tolerance and t - self.t_mech < mc.update_interval:
            return {"mechanics": 0}
        self.solver.invalidate()
        its = self.solver.solve(t)
        self.E_mech = E.copy()
        self.t_mech = t
        self.solves += 1
        self.derive()
        return {"mechanics": its}

    def derive(self) -> None:
        """Derived fields, summaries and running maxima from the displacement."""
        d = self.disc
        interpolate_expression(self.von_mises, self._vm_expr)
        interpolate_expression(self.eps_vol, self._ev_expr)
        self.eps_cells = d.cells_of(self.eps_vol).copy()
        if self.cfg.deformed_porosity:  # read by Material.porosity_cells at its next refresh
            self.material.strain = self.eps_cells
        vm_cells = d.cells_of(self.von_mises)
        vm = float(np.max(vm_cells[: d.n_owned], initial=0.0))
        self.max_von_mises = max(self.max_von_mises, d.comm.allreduce(vm, op=MPI.MAX))
        jump = self.interface_jumps()
        local = float(np.max(jump, initial=0.0))
        self.max_strain_jump = max(self.max_strain_jump, d.comm.allreduce(local, op=MPI.MAX))
        self.last = summary(d, vm_cells, jump, self._smooth(jump), self._facet_area)
        self.peaks.update(self.last)

    def interface_jumps(self) -> np.ndarray:
        """``|[n·ε n]|`` per owned ``scaffold_interface`` facet (areas: ``_facet_area``)."""
        vec = self.disc.owned_vector(self._jump_form)[self._jump_dofs]
        return np.sqrt(np.maximum(vec / self._facet_area, 0.0))

    def interface_strain_jump(self) -> float:
        """Max over scaffold_interface facets of |n·ε n| jump between the two cells
        (mesh-dependent: the corner with the pia is singular)."""
        local = float(np.max(self.interface_jumps(), initial=0.0))
        return self.disc.comm.allreduce(local, op=MPI.MAX)

    def metrics(self) -> dict[str, Any]:
        """The ``mechanics`` block of metrics.json (the same on every rank).

        ``interface_strain_jump`` {mean, p95} and ``von_mises_kPa`` {region: {mean,
        p95}} converge under refinement; ``max_*`` are cell maxima at the singular
        interface/pia corner and do not settle under refinement. Each is the largest over the
        run's solves.
        """
        return {
            "max_von_mises_kPa": self.max_von_mises,
            "max_interface_strain_jump": self.max_strain_jump,
            "solves": self.solves,
            **self.peaks.metrics(),
        }

    # ------------------------------------------------------------------ part protocol
    def fields(self) -> dict[str, fem.Function]:
        if not self.enabled:
            return {}
        return {
            "displacement": self.u,
            "von_mises": self.von_mises,
            "volumetric_strain": self.eps_vol,
        }

    def state(self) -> ModelState:
        out = ModelState(
            scalars={
                "t_mech": self.t_mech if math.isfinite(self.t_mech) else None,
                "mech_solves": self.solves,
                "max_strain_jump": self.max_strain_jump,
                "max_von_mises": self.max_von_mises,
                "mech_peaks": self.peaks.state(),
            },
            cells={"eps": self.eps_cells.copy(), "E_mech": self.E_mech.copy()},
        )
        if self.enabled:
            u = self.u.x.array.copy()
            if self.cfg.degree == 1:  # P1 nodes: checkpointed by mesh-file node
                out.nodes["u"] = u.reshape(-1, 3)
            else:
                out.local["u"] = u
        if self.solver is not None:
            out.local.update(self.solver.history())
        return out

    def restore(self, state: ModelState) -> None:
        """Restore; without a displacement (a P2 checkpoint) re-solve at the state's time."""
        s = state.scalars
        self.t_mech = -math.inf if s["t_mech"] is None else s["t_mech"]
        self.solves = s["mech_solves"]
        self.max_strain_jump, self.max_von_mises = s["max_strain_jump"], s["max_von_mises"]
        self.peaks.restore(s.get("mech_peaks"))
        self.eps_cells = state.cells["eps"].copy()
        self.E_mech = state.cells["E_mech"].copy()
        if not self.enabled:
            return
        if self.solver is not None:
            self.solver.restore_history(state.local)
        u = state.nodes.get("u", state.local.get("u"))
        if u is None:
            self.advance(s["t"], force=True)
            return
        self.u.x.array[:] = np.asarray(u).ravel()
        self.derive()

    def destroy(self) -> None:
        if self.solver is not None:
            self.solver.destroy()
            self.solver = None
