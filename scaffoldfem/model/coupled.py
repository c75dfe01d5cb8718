"""The coupled model: growth factors, MMP, degradation, release, cells and mechanics.

One :meth:`CoupledModel.step` advances every field over ``[t, t + Δt]`` by
operator splitting, in this order (docs/model.md, "Coupling and time stepping"):

1. cells: exact survival, time-averaged density for secretion;
2. MMP ``m``: implicit transport with its time-dependent source;
3. degradation ``w``: exact update with ``m^{n+1}`` and ``ε_vol^n`` frozen;
4. reservoirs ``b_i``: exact release with the same frozen ``m``, ``w``; the amount
   released becomes the source ``R_i`` of step 6 (mass exact);
5. porosity → α, D, E (transport matrices refreshed only when φ moved by more than
   ``time.coefficient_tolerance``);
6. each growth factor ``c_i``: implicit transport (BE or BDF2) with R, S, doses;
7. mechanics, when E changed by more than ``mechanics.update_tolerance`` or on its
   schedule; ε_vol feeds back into step 3 of the next step.

Every balance term of every species is accumulated from the same forms the solver
assembles, so ``Δcontent = released + secreted + dosed − decayed − uptake − efflux``
holds to solver tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ufl
from dolfinx import fem, la
from dolfinx import mesh as dmesh
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.study import Study
from scaffoldfem.errors import SimulationFailed
from scaffoldfem.fem.compat import compile_form, integrate, interpolate_expression
from scaffoldfem.fem.solver import LinearSolver, NonlinearSolver
from scaffoldfem.physics import degradation as deg
from scaffoldfem.physics import mechanics as mech
from scaffoldfem.physics.materials import flux_diffusivity, gibson_ashby
from scaffoldfem.physics.transport import (
    Robin,
    Uptake,
    balance_forms,
    dirichlet_efflux,
    mass_rate_to_source,
    secretion_source,
    to_ng,
    transport_forms,
    transport_residual,
)
from scaffoldfem.regions import CELL_TAGS, cell_tag, facet_tag

#: Balance terms reported per species (timeseries.csv columns ``<term>_<name>``).
BALANCE_TERMS = ("released", "secreted", "dosed", "decayed", "uptake", "efflux")


def gamma_profile(t: float, peak: float, shape: float) -> float:
    """Gamma-shaped time course normalised to 1 at ``peak`` (MMP-9 after injury)."""
    if t <= 0.0:
        return 0.0
    x = t / peak
    return float(x ** (shape - 1.0) * math.exp(-(shape - 1.0) * (x - 1.0)))


def window_amount(t0: float, t1: float, start: float, end: float) -> float:
    """Length of the overlap of ``[t0, t1]`` with ``[start, end]``."""
    return max(0.0, min(t1, end) - max(t0, start))


@dataclass
class SpeciesState:
    """Per-species functions, solvers and cumulative balance (ng)."""

    name: str
    c: fem.Function
    c_old: fem.Function
    c_old2: fem.Function
    b: np.ndarray  # bound reservoir per cell (ng/mL of scaffold)
    release: fem.Function  # DG0 source R (ng/mL/day)
    secretion: fem.Function  # DG0 source S
    dose: fem.Function  # DG0 source from the schedule
    k: fem.Constant
    solvers: dict[str, Any] = field(default_factory=dict)
    balance: dict[str, dict[str, fem.Form]] = field(default_factory=dict)
    residuals: dict[str, fem.Form] = field(default_factory=dict)
    dirichlet_dofs: np.ndarray | None = None
    robin_weights: list[tuple[str, np.ndarray, float]] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BALANCE_TERMS, 0.0))
    content0: float = 0.0
    max_step_error: float = 0.0


class CoupledModel:
    """All fields of one run on a distributed mesh.

    Args:
        study: Validated study.
        mesh: Tetrahedral mesh in mm (cord axis z).
        cell_tags, facet_tags: Region tags (``scaffoldfem.regions``).
    """

    def __init__(
        self, study: Study, mesh: dmesh.Mesh, cell_tags: dmesh.MeshTags, facet_tags: dmesh.MeshTags
    ):
        self.study, self.mesh, self.comm = study, mesh, mesh.comm
        self.cell_tags, self.facet_tags = cell_tags, facet_tags
        self.t = 0.0
        self.nstep = 0
        self._alpha_history_steps = 0
        self.dt_last: float | None = None
        tdim = mesh.topology.dim
        mesh.topology.create_connectivity(tdim - 1, tdim)
        self.n_cells = (
            mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts
        )
        self.n_owned = mesh.topology.index_map(tdim).size_local
        self.V = fem.functionspace(mesh, ("Lagrange", 1))
        self.Q = fem.functionspace(mesh, ("DG", 0))
        self.qdof = self.Q.dofmap.list[:, 0]  # cell -> DG0 dof
        self.dx = ufl.Measure("dx", domain=mesh, subdomain_data=cell_tags)
        self.ds = ufl.Measure("ds", domain=mesh, subdomain_data=facet_tags)
        self.region = np.zeros(self.n_cells, dtype=np.int32)
        self.region[cell_tags.indices] = cell_tags.values
        self.volumes = {
            name: integrate(1.0 * self.dx(tag), self.comm) for name, tag in CELL_TAGS.items()
        }
        self.has = {name: v > 0 for name, v in self.volumes.items()}
        self.scaffold = self.region == cell_tag("scaffold")
        self.host = np.isin(
            self.region, [cell_tag(r) for r in ("white_matter", "grey_matter", "scar")]
        )
        self._init_material()
        self._init_cells()
        self._init_enzyme()
        self._init_species()
        self._init_mechanics()
        self._new_coefficients(force=True)
        self.alpha_prev.x.array[:] = self.alpha.x.array
        self.refresh_weights()
        for sp in self.species:
            sp.content0 = self.content(sp)

    # ---------------------------------------------------------------- helpers
    def dg0(self, name: str, values: np.ndarray | float = 0.0) -> fem.Function:
        """A DG0 function set cell by cell (values indexed by local cell)."""
        f = fem.Function(self.Q, name=name)
        self.set_cells(f, values)
        return f

    def set_cells(self, f: fem.Function, values: np.ndarray | float) -> None:
        """Set a DG0 function from per-cell values (owned and ghost cells)."""
        f.x.array[self.qdof] = values
        f.x.scatter_forward()

    def cells_of(self, f: fem.Function) -> np.ndarray:
        """Per-cell values of a DG0 function."""
        return f.x.array[self.qdof]

    def _mask(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        return np.isin(self.region, [cell_tag(n) for n in names])

    # ---------------------------------------------------------------- set-up
    def _init_material(self) -> None:
        s = self.study.scaffold
        self.w = np.where(self.scaffold, 1.0, 0.0)  # polymer mass fraction
        self.eps_cells = np.zeros(self.n_cells)
        self.alpha = self.dg0("alpha")
        self.alpha_prev = self.dg0("alpha_prev")
        self.d_axial = self.dg0("d_axial")  # D / D_free along z
        self.d_trans = self.dg0("d_transverse")
        self.E = self.dg0("modulus")
        self.nu = self.dg0("poisson")
        self.phi = self.dg0("porosity")
        self.wf = self.dg0("polymer_fraction")
        self.phi_used = np.full(self.n_cells, np.nan)
        t = self.study.tissue
        nu = np.full(self.n_cells, s.poisson)
        for name in ("white_matter", "grey_matter", "scar", "cavity"):
            nu[self.region == cell_tag(name)] = getattr(t, name).poisson
        # Channel lumens are fluid-filled like the cavity.
        nu[self.region == cell_tag("channel")] = t.cavity.poisson
        self.set_cells(self.nu, nu)

    def porosity_cells(self) -> np.ndarray:
        """Current porosity per cell (1 in lumens/cavity, α in host: its ECS fraction)."""
        s, t = self.study.scaffold, self.study.tissue
        phi = np.where(self.host, t.volume_fraction, 1.0)
        phi[self.scaffold] = deg.porosity(self.w[self.scaffold], s.porosity)
        return phi

    def modulus_cells(self, phi: np.ndarray) -> np.ndarray:
        s, t = self.study.scaffold, self.study.tissue
        E = np.full(self.n_cells, t.cavity.modulus)
        for name in ("white_matter", "grey_matter", "scar"):
            E[self.region == cell_tag(name)] = getattr(t, name).modulus
        E[self.scaffold] = gibson_ashby(s.solid_modulus, phi[self.scaffold], s.modulus_exponent)
        # A fully degraded matrix is fluid: never softer than the cavity placeholder.
        return np.maximum(E, t.cavity.modulus)

    def _new_coefficients(self, force: bool = False) -> bool:
        """Refresh α, D, E from the porosity when it moved enough; True if refreshed."""
        phi = self.porosity_cells()
        moved = np.abs(phi - self.phi_used)
        local = float(np.max(moved[: self.n_owned], initial=0.0)) if not force else np.inf
        if (
            not force
            and self.comm.allreduce(local, op=MPI.MAX) <= self.study.time.coefficient_tolerance
        ):
            self.set_cells(self.phi, phi)
            self.set_cells(self.wf, self.w)
            return False
        self.apply_coefficients(phi)
        self.invalidate_transport()
        return True

    def transport_solvers(self) -> list[LinearSolver]:
        """Every linear transport solver (species and MMP; Newton ones assemble anyway)."""
        out = [s for sp in getattr(self, "species", []) for s in sp.solvers.values()]
        out += list(getattr(self, "m_solvers", {}).values())
        return [s for s in out if isinstance(s, LinearSolver)]

    def invalidate_transport(self) -> None:
        """Transport matrices must be re-assembled (α, D, Δt or restored state changed)."""
        for solver in self.transport_solvers():
            solver.invalidate()

    def apply_coefficients(self, phi: np.ndarray) -> None:
        """Set α, D/D_free and E from the porosity per cell (no matrix invalidation)."""
        s, t = self.study.scaffold, self.study.tissue
        self.phi_used = np.asarray(phi, dtype=float).copy()
        alpha = phi.copy()
        da = np.ones(self.n_cells)
        dt_ = np.ones(self.n_cells)
        da[self.host] = t.volume_fraction / t.tortuosity_axial**2
        dt_[self.host] = t.volume_fraction / t.tortuosity_transverse**2
        f = flux_diffusivity(1.0, phi[self.scaffold], s.diffusivity_law, s.archie_exponent)
        da[self.scaffold] = f
        dt_[self.scaffold] = f
        self.set_cells(self.alpha, alpha)
        self.set_cells(self.d_axial, da)
        self.set_cells(self.d_trans, dt_)
        self.set_cells(self.phi, phi)
        self.set_cells(self.wf, self.w)
        self.set_cells(self.E, self.modulus_cells(phi))

    def diffusivity(self, d_free: fem.Constant) -> Any:
        """UFL tensor ``D_free (d_t I + (d_a − d_t) e_z⊗e_z)`` (flux basis, mm²/day)."""
        ez = ufl.as_vector([0.0, 0.0, 1.0])
        return d_free * (
            self.d_trans * ufl.Identity(3) + (self.d_axial - self.d_trans) * ufl.outer(ez, ez)
        )

    def _init_cells(self) -> None:
        c = self.study.cells
        rho = np.zeros(self.n_cells)
        if c.enabled:
            rho[self._mask(c.regions)] = c.density
        self.rho = rho
        self.rho_mean = self.dg0("cell_density", rho)

    def _interface_band(self, halfwidth: float) -> np.ndarray:
        """Cells whose midpoint lies within ``halfwidth`` of a scaffold_interface facet."""
        from scipy.spatial import cKDTree

        tdim = self.mesh.topology.dim
        facets = self.facet_tags.find(facet_tag("scaffold_interface"))
        mids = dmesh.compute_midpoints(self.mesh, tdim - 1, facets.astype(np.int32))
        allmids = np.vstack([m for m in self.comm.allgather(mids) if len(m)] or [np.zeros((0, 3))])
        band = np.zeros(self.n_cells, dtype=bool)
        if len(allmids):
            cells = np.arange(self.n_cells, dtype=np.int32)
            cm = dmesh.compute_midpoints(self.mesh, tdim, cells)
            dist, _ = cKDTree(allmids).query(cm)
            band = dist <= halfwidth
        return band

    def _init_enzyme(self) -> None:
        e = self.study.enzyme
        self.m = fem.Function(self.V, name="MMP")
        self.m_old = fem.Function(self.V)
        self.m_cells = np.zeros(self.n_cells)
        self.m_dg = fem.Function(self.Q)
        src = np.zeros(self.n_cells)
        if "scar" in e.source.regions:
            src[self.region == cell_tag("scar")] = 1.0
        if "scaffold_interface" in e.source.regions:
            src[self._interface_band(e.source.interface_band)] = 1.0
        self.m_src_shape = self.dg0("mmp_source_shape", src)
        self.m_amp = fem.Constant(self.mesh, 0.0)
        self.m_k = fem.Constant(self.mesh, math.log(2.0) / e.half_life)
        self.m_D = fem.Constant(self.mesh, e.diffusivity_free)
        self.dt_c = fem.Constant(self.mesh, self.study.time.dt)
        self.m_solvers: dict[str, LinearSolver] = {}
        if not e.enabled:
            return
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        # α is lagged over the MMP step (same α in both storage levels).
        a, L = transport_forms(
            u,
            v,
            self.m_old,
            self.alpha,
            self.alpha,
            self.diffusivity(self.m_D),
            self.m_k,
            self.dt_c,
            {"source": self.m_amp * self.m_src_shape},
            dx=self.dx,
            ds=self.ds,
        )
        self.m_solvers["be"] = LinearSolver(
            a,
            L,
            self.m,
            field="MMP",
            preset="transport",
            petsc_options=self.study.solver.get("transport"),
        )

    def enzyme_rate(self, t: float) -> float:
        """MMP production rate (ng/mL/day) at time ``t``."""
        src = self.study.enzyme.source
        if src.profile == "table":
            days, rates = zip(*src.table, strict=True)
            return float(np.interp(t, days, rates, left=0.0, right=rates[-1]))
        return src.amplitude * gamma_profile(t, src.peak_day, src.shape)

    def _init_species(self) -> None:
        self.species: list[SpeciesState] = []
        scheme = self.study.time.scheme
        self.omega = fem.Constant(self.mesh, 1.0)
        opts = self.study.solver.get("transport")
        for cfg in self.study.species:
            c = fem.Function(self.V, name=cfg.name)
            sp = SpeciesState(
                name=cfg.name,
                c=c,
                c_old=fem.Function(self.V),
                c_old2=fem.Function(self.V),
                b=np.where(self.scaffold, cfg.release.loading, 0.0),
                release=self.dg0(f"release_{cfg.name}"),
                secretion=self.dg0(f"secretion_{cfg.name}"),
                dose=self.dg0(f"dose_{cfg.name}"),
                k=fem.Constant(self.mesh, math.log(2.0) / cfg.half_life),
            )
            D = self.diffusivity(fem.Constant(self.mesh, cfg.diffusivity_free))
            robin, bcs, dofs = [], [], []
            for end in ("rostral_end", "caudal_end"):
                bc = getattr(cfg, end)
                if bc.kind == "robin":
                    robin.append(
                        Robin(
                            end,
                            fem.Constant(self.mesh, bc.transfer),
                            fem.Constant(self.mesh, bc.value),
                        )
                    )
                elif bc.kind == "dirichlet":
                    d = fem.locate_dofs_topological(self.V, 2, self.facet_tags.find(facet_tag(end)))
                    bcs.append(fem.dirichletbc(bc.value, d, self.V))
                    dofs.append(d)
            sp.dirichlet_dofs = np.unique(np.concatenate(dofs)) if dofs else None
            v1 = ufl.TestFunction(self.V)
            sp.robin_weights = [
                (
                    r.name,
                    self._owned_vector(r.h * v1 * self.ds(facet_tag(r.name))),
                    float(r.c_ext.value),
                )
                for r in robin
            ]
            uptake = None
            if cfg.uptake.enabled:
                vmax = self.dg0(f"vmax_{cfg.name}", np.where(self.host, cfg.uptake.vmax, 0.0))
                uptake = Uptake(vmax, fem.Constant(self.mesh, cfg.uptake.kd), mode="newton")
            sources = {"released": sp.release, "secreted": sp.secretion, "dosed": sp.dose}
            common = dict(robin=robin, dx=self.dx, ds=self.ds, uptake=uptake)
            schemes = ["be"] + (["bdf2"] if scheme == "bdf2" else [])
            for sch in schemes:
                extra = (
                    {
                        "scheme": "bdf2",
                        "c_old2": sp.c_old2,
                        "alpha_old2": self.alpha_prev2,
                        "omega": self.omega,
                    }
                    if sch == "bdf2"
                    else {"scheme": "be"}
                )
                args = (sp.c_old, self.alpha, self.alpha_prev, D, sp.k, self.dt_c, sources)
                F = transport_residual(sp.c, ufl.TestFunction(self.V), *args, **common, **extra)
                if uptake is None:
                    a, L = transport_forms(
                        ufl.TrialFunction(self.V),
                        ufl.TestFunction(self.V),
                        *args,
                        **common,
                        **extra,
                    )
                    # The right-hand side as Σ B_j f_j from matrices assembled with A:
                    # a step costs a few mat-vecs instead of a volume assembly.
                    rhs = [sp.c_old, sp.release, sp.secretion, sp.dose]
                    if sch == "bdf2":
                        rhs.append(sp.c_old2)
                    sp.solvers[sch] = LinearSolver(
                        a,
                        L,
                        sp.c,
                        bcs,
                        field=cfg.name,
                        preset="transport",
                        petsc_options=opts,
                        rhs_coefficients=rhs,
                        static_rhs=[sp.release, sp.secretion, sp.dose],
                    )
                else:
                    sp.solvers[sch] = NonlinearSolver(
                        F, sp.c, bcs, field=cfg.name, preset="transport", petsc_options=opts
                    )
                sp.residuals[sch] = compile_form(F)
                sp.balance[sch] = {
                    k: compile_form(f)
                    for k, f in balance_forms(
                        sp.c,
                        sp.c_old,
                        self.alpha,
                        self.alpha_prev,
                        sp.k,
                        self.dt_c,
                        sources,
                        **common,
                        **extra,
                    ).items()
                }
            self.species.append(sp)

    @property
    def alpha_prev2(self) -> fem.Function:
        if not hasattr(self, "_alpha_prev2"):
            self._alpha_prev2 = self.dg0("alpha_prev2")
        return self._alpha_prev2

    def _init_mechanics(self) -> None:
        mc = self.study.mechanics
        self.Vu = fem.functionspace(self.mesh, ("Lagrange", mc.degree, (3,)))
        self.u = fem.Function(self.Vu, name="displacement")
        self.von_mises = self.dg0("von_mises")
        self.eps_vol = self.dg0("volumetric_strain")
        self.E_mech = np.full(self.n_cells, np.nan)
        self.t_mech = -np.inf
        self.mech_solves = 0
        self.max_strain_jump = 0.0
        self.max_von_mises = 0.0
        if not mc.enabled:
            self.mech_solver = None
            return
        fdim = 2
        L = self.study.geometry.cord.length
        rostral = self.facet_tags.find(facet_tag("rostral_end"))
        caudal = self.facet_tags.find(facet_tag("caudal_end"))
        bc0 = fem.dirichletbc(
            np.zeros(3), fem.locate_dofs_topological(self.Vu, fdim, rostral), self.Vu
        )
        Vz = self.Vu.sub(2)
        self.u_end = fem.Constant(self.mesh, mc.axial_strain * L)
        bc1 = fem.dirichletbc(self.u_end, fem.locate_dofs_topological(Vz, fdim, caudal), Vz)
        p = {"pia": fem.Constant(self.mesh, mc.pia_pressure)} if mc.pia_pressure > 0 else None
        a, Lf = mech.elasticity_forms(
            ufl.TrialFunction(self.Vu),
            ufl.TestFunction(self.Vu),
            self.E,
            self.nu,
            pressure=p,
            ds=self.ds,
            dx=self.dx,
        )
        # E changes slowly and smoothly as the scaffold degrades: GAMG keeps its
        # aggregation/interpolation and only redoes the Galerkin products on re-solves.
        opts = {"pc_gamg_reuse_interpolation": True, **self.study.solver.get("mechanics", {})}
        self.mech_solver = LinearSolver(
            a,
            Lf,
            self.u,
            [bc0, bc1],
            field="mechanics",
            preset="elasticity",
            near_nullspace=True,
            petsc_options=opts,
        )
        self._vm_expr = mech.von_mises(mech.sigma(self.u, self.E, self.nu))
        self._ev_expr = mech.volumetric_strain(self.u)
        self.eps_t = fem.Function(fem.functionspace(self.mesh, ("DG", 0, (3, 3))))
        self._eps_expr = mech.epsilon(self.u)
        self._interface = self._interface_pairs()

    def _interface_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Owned scaffold_interface facets: their two cells and unit normals."""
        tdim = 3
        facets = self.facet_tags.find(facet_tag("scaffold_interface"))
        fmap = self.mesh.topology.index_map(tdim - 1)
        facets = facets[facets < fmap.size_local]
        f2c = self.mesh.topology.connectivity(tdim - 1, tdim)
        x = self.mesh.geometry.x
        nodes = dmesh.entities_to_geometry(self.mesh, tdim - 1, facets.astype(np.int32))
        pairs, normals = [], []
        for f, vs in zip(facets, nodes, strict=True):
            cells = f2c.links(f)
            if len(cells) != 2:
                continue
            n = np.cross(x[vs[1]] - x[vs[0]], x[vs[2]] - x[vs[0]])
            pairs.append(cells)
            normals.append(n / np.linalg.norm(n))
        if not pairs:
            return np.zeros((0, 2), np.int32), np.zeros((0, 3)), facets
        return np.array(pairs, dtype=np.int32), np.array(normals), facets

    # ---------------------------------------------------------------- quantities
    def content(self, sp: SpeciesState) -> float:
        """Free content ∫αc dV in ng (``∫αc = Σ_i c_i ∫α φ_i``, the weights vector)."""
        return to_ng(self.comm.allreduce(self._dot(self._w_alpha, sp.c), op=MPI.SUM))

    def bound(self, sp: SpeciesState) -> float:
        """Scaffold-bound reservoir ∫b dV in ng (DG0 values × cell volumes)."""
        return to_ng(
            self.comm.allreduce(
                float(np.sum(sp.b[: self.n_owned] * self.cell_volume()[: self.n_owned])), op=MPI.SUM
            )
        )

    def cell_volume(self) -> np.ndarray:
        if not hasattr(self, "_cell_volume"):
            f = fem.Function(self.Q)
            v = ufl.TestFunction(self.Q)
            vec = fem.assemble_vector(fem.form(v * ufl.dx(domain=self.mesh)))
            f.x.array[:] = vec.array
            f.x.scatter_forward()
            self._cell_volume = self.cells_of(f).copy()
        return self._cell_volume

    def mass_fraction_remaining(self) -> float:
        vol = self.cell_volume()
        own = slice(0, self.n_owned)
        num = self.comm.allreduce(
            float(np.sum((self.w * vol)[own][self.scaffold[own]])), op=MPI.SUM
        )
        den = self.comm.allreduce(float(np.sum(vol[own][self.scaffold[own]])), op=MPI.SUM)
        return num / den if den > 0 else float("nan")

    # ---------------------------------------------------------------- state
    def snapshot(self) -> dict[str, Any]:
        """Copy of the whole evolving state (restored when a step fails)."""
        snap = {
            "t": self.t,
            "w": self.w.copy(),
            "rho": self.rho.copy(),
            "m": self.m.x.array.copy(),
            "eps": self.eps_cells.copy(),
            "nstep": self.nstep,
            "dt_last": self.dt_last,
            "alpha": self.alpha.x.array.copy(),
            "alpha_prev": self.alpha_prev.x.array.copy(),
            "phi_used": self.phi_used.copy(),
            "u": self.u.x.array.copy(),
        }
        for sp in self.species:
            snap[f"c:{sp.name}"] = sp.c.x.array.copy()
            snap[f"c_old:{sp.name}"] = sp.c_old.x.array.copy()
            snap[f"b:{sp.name}"] = sp.b.copy()
            snap[f"totals:{sp.name}"] = dict(sp.totals)
        return snap

    def restore(self, snap: dict[str, Any]) -> None:
        """Undo a failed step."""
        self.t, self.nstep, self.dt_last = snap["t"], snap["nstep"], snap["dt_last"]
        self.w[:], self.rho[:], self.eps_cells[:] = snap["w"], snap["rho"], snap["eps"]
        self.m.x.array[:] = snap["m"]
        self.apply_coefficients(snap["phi_used"])
        self.alpha.x.array[:] = snap["alpha"]
        self.alpha_prev.x.array[:] = snap["alpha_prev"]
        self.refresh_weights()
        self.u.x.array[:] = snap["u"]
        for sp in self.species:
            sp.c.x.array[:] = snap[f"c:{sp.name}"]
            sp.c_old.x.array[:] = snap[f"c_old:{sp.name}"]
            sp.b[:] = snap[f"b:{sp.name}"]
            sp.totals = dict(snap[f"totals:{sp.name}"])
        self.invalidate_transport()

    # ---------------------------------------------------------------- stepping
    def step(self, dt: float) -> dict[str, int]:
        """Advance every field from ``t`` to ``t + dt`` (see the module docstring).

        Returns:
            Iterations per solved field.

        Raises:
            SolverError: a solve failed (the caller restores and cuts the step).
            SimulationFailed: NaN/Inf or a negative concentration beyond tolerance.
        """
        t0, t1 = self.t, self.t + dt
        iters: dict[str, int] = {}
        if self.dt_last is None or abs(dt - float(self.dt_c.value)) > 1e-14 * dt:
            self._set_dt(dt)
        # 1. cells
        c = self.study.cells
        k_death = math.log(2.0) / c.half_life
        self.rho, rho_mean = deg.cell_survival_step(self.rho, dt, k_death)
        self.set_cells(self.rho_mean, rho_mean)
        # 2. MMP
        if self.m_solvers:
            self.m_old.x.array[:] = self.m.x.array
            self.m_amp.value = self.enzyme_rate(t1)
            iters["MMP"] = self.m_solvers["be"].solve(t1)
            self._check_sign(self.m, "MMP", t1)
            self.m_dg.interpolate(self.m)
            self.m_cells = np.maximum(self.cells_of(self.m_dg), 0.0)
        # 3. degradation (scaffold cells only)
        s = self.study.scaffold
        w_old = self.w.copy()
        sc = self.scaffold
        self.w[sc] = deg.degrade_step(
            w_old[sc],
            dt,
            k_h=s.hydrolysis_rate,
            a_auto=s.autocatalysis,
            k_e=s.enzymatic_rate,
            K_e=s.enzyme_half_saturation,
            m=self.m_cells[sc],
            beta=s.strain_acceleration,
            eps_vol=self.eps_cells[sc],
        )
        # 4. reservoirs → release sources; secretion; doses
        for sp, cfg in zip(self.species, self.study.species, strict=True):
            r = cfg.release
            b_new, released = deg.release_step(
                sp.b[sc],
                w_old[sc],
                self.w[sc],
                dt,
                k0=r.first_order_rate,
                k_mmp=r.mmp_rate,
                K_m=r.mmp_half_saturation,
                m=self.m_cells[sc],
                rho_rel=r.degradation_coupling,
            )
            sp.b[sc] = b_new
            rel = np.zeros(self.n_cells)
            rel[sc] = released / dt
            self.set_cells(sp.release, rel)
            self.set_cells(sp.secretion, secretion_source(cfg.secretion, rho_mean))
            self.set_cells(sp.dose, self._dose_source(cfg, t0, t1, dt))
        # 5. coefficients
        self.alpha_prev2.x.array[:] = self.alpha_prev.x.array
        self.alpha_prev.x.array[:] = self.alpha.x.array
        self._w_alpha_prev = self._w_alpha
        if self._new_coefficients():
            self._w_alpha = self._owned_vector(self.alpha * ufl.TestFunction(self.V) * self.dx)
            # α of this step becomes α_prev next step and α_prev2 the step after: the
            # right-hand-side matrices (assembled with A) hold them, so they are rebuilt
            # on those steps too, not only on this one.
            self._alpha_history_steps = 3
        elif self._alpha_history_steps > 0:
            # A is current; only the old-level matrices (α_prev c_old, α_prev2 c_old2).
            for sp in self.species:
                for solver in sp.solvers.values():
                    if isinstance(solver, LinearSolver):
                        solver.reassemble_rhs_matrix(sp.c_old)
                        solver.reassemble_rhs_matrix(sp.c_old2)
        self._alpha_history_steps = max(self._alpha_history_steps - 1, 0)
        # 6. growth factors
        scheme = "bdf2" if (self.study.time.scheme == "bdf2" and self.nstep > 0) else "be"
        if scheme == "bdf2":
            omega = dt / self.dt_last
            if omega != float(self.omega.value):  # the BDF2 matrix depends on ω
                self.omega.value = omega
                for sp in self.species:
                    sp.solvers["bdf2"].invalidate()
        for sp in self.species:
            sp.c_old2.x.array[:] = sp.c_old.x.array
            sp.c_old.x.array[:] = sp.c.x.array
            solver = sp.solvers[scheme]
            iters[sp.name] = solver.solve(t1)
            self._check_sign(sp.c, sp.name, t1)
            self._account(sp, scheme, dt)
        # 7. mechanics
        if self.mech_solver is not None:
            iters["mechanics"] = self.solve_mechanics(t1)
        self.t = t1
        self.dt_last = dt
        self.nstep += 1
        return iters

    def _set_dt(self, dt: float) -> None:
        self.dt_c.value = dt
        self.invalidate_transport()

    def _dose_source(self, cfg: Any, t0: float, t1: float, dt: float) -> np.ndarray:
        out = np.zeros(self.n_cells)
        for d in cfg.doses:
            vol = self.volumes.get(d.region, 0.0)
            if vol <= 0:
                continue
            if d.kind == "bolus":
                amount = d.amount if (t0 < d.start <= t1 or (d.start == 0.0 and t0 == 0.0)) else 0.0
            else:
                amount = d.rate * window_amount(t0, t1, d.start, d.end)
            if amount:
                out[self.region == cell_tag(d.region)] += mass_rate_to_source(amount / dt, vol)
        return out

    def _check_sign(self, f: fem.Function, name: str, t: float) -> None:
        n = self.V.dofmap.index_map.size_local
        a = f.x.array[:n]
        lo = self.comm.allreduce(float(a.min(initial=np.inf)), op=MPI.MIN)
        hi = self.comm.allreduce(float(np.abs(a).max(initial=0.0)), op=MPI.MAX)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise SimulationFailed(name, t, "NaN/Inf in the solution")
        if lo < -self.study.time.negative_tolerance * max(hi, 1e-30) and hi > 1e-12:
            raise SimulationFailed(
                name,
                t,
                f"negative concentration {lo:.3g} ng/mL "
                f"(max {hi:.3g}); reduce time.dt or refine the mesh",
            )

    def _owned_vector(self, form: Any) -> np.ndarray:
        """Assemble a linear form, add ghost contributions to owners, return owned part."""
        vec = fem.assemble_vector(compile_form(form))
        vec.scatter_reverse(la.InsertMode.add)
        return vec.array[: self.V.dofmap.index_map.size_local].copy()

    def refresh_weights(self) -> None:
        """Vectors ``∫α φ_i`` for the current and previous α (balance bookkeeping)."""
        v = ufl.TestFunction(self.V)
        self._w_alpha = self._owned_vector(self.alpha * v * self.dx)
        self._w_alpha_prev = self._owned_vector(self.alpha_prev * v * self.dx)

    def _dot(self, w: np.ndarray, f: fem.Function) -> float:
        return float(w @ f.x.array[: len(w)])

    def _account(self, sp: SpeciesState, scheme: str, dt: float) -> None:
        """Add this step's balance terms. For backward Euler every term except uptake is
        a dot product with a vector assembled only when α changes (``Σ_i ∫ f φ_i =
        ∫ f`` since the P1 basis sums to one), so bookkeeping costs no volume assembly
        per step; BDF2 and uptake use the balance forms."""
        if scheme == "be":
            n_own = self.n_owned
            vol = self.cell_volume()[:n_own]
            local = {
                "storage": self._dot(self._w_alpha, sp.c) - self._dot(self._w_alpha_prev, sp.c_old),
                "decayed": dt * float(sp.k.value) * self._dot(self._w_alpha, sp.c),
            }
            for name, f in (
                ("released", sp.release),
                ("secreted", sp.secretion),
                ("dosed", sp.dose),
            ):
                local[f"source:{name}"] = dt * float(self.cells_of(f)[:n_own] @ vol)
            for name, wr, c_ext in sp.robin_weights:
                local[f"efflux:{name}"] = dt * (self._dot(wr, sp.c) - c_ext * float(wr.sum()))
            keys = list(local)
            sums = self.comm.allreduce(np.array([local[k] for k in keys]), op=MPI.SUM)
            amounts = {k: to_ng(float(v)) for k, v in zip(keys, sums, strict=True)}
            if "taken_up" in sp.balance[scheme]:
                f = sp.balance[scheme]["taken_up"]
                amounts["taken_up"] = to_ng(self.comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM))
        else:
            amounts = {
                k: to_ng(self.comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM))
                for k, f in sp.balance[scheme].items()
                if k != "content"
            }
        dirichlet = 0.0
        if sp.dirichlet_dofs is not None:
            dirichlet = to_ng(dirichlet_efflux(sp.residuals[scheme], sp.dirichlet_dofs, dt))
        add = sp.totals
        add["storage"] = add.get("storage", 0.0) + amounts["storage"]
        add["released"] += amounts.get("source:released", 0.0)
        add["secreted"] += amounts.get("source:secreted", 0.0)
        add["dosed"] += amounts.get("source:dosed", 0.0)
        add["decayed"] += amounts.get("decayed", 0.0)
        add["uptake"] += amounts.get("taken_up", 0.0)
        add["efflux"] += sum(v for k, v in amounts.items() if k.startswith("efflux:")) + dirichlet

    def balance_error(self, sp: SpeciesState) -> float:
        """Relative error of the cumulative balance of ``sp`` since t = 0.

        The change is the sum of the scheme's storage increments: for backward Euler
        that is exactly the change of ∫αc; for BDF2 its increments differ from it by
        ½[(Cᴺ−Cᴺ⁻¹) − (C¹−C⁰)], so the identity is checked on the increments.
        """
        tot = sp.totals
        gain = tot["released"] + tot["secreted"] + tot["dosed"]
        loss = tot["decayed"] + tot["uptake"] + tot["efflux"]
        change = tot.get("storage", 0.0)
        scale = max(abs(gain), abs(loss), abs(change), 1e-300)
        return abs(change - (gain - loss)) / scale

    def solve_mechanics(self, t: float, force: bool = False) -> int:
        """Re-solve the elasticity problem if E changed enough or on schedule."""
        mc = self.study.mechanics
        E = self.cells_of(self.E)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(E - self.E_mech) / np.maximum(np.abs(self.E_mech), 1e-300)
        rel = np.where(np.isnan(rel), np.inf, rel)
        changed = self.comm.allreduce(float(np.max(rel[: self.n_owned], initial=0.0)), op=MPI.MAX)
        if not force and changed <= mc.update_tolerance and t - self.t_mech < mc.update_interval:
            return 0
        self.mech_solver.invalidate()
        its = self.mech_solver.solve(t)
        self.E_mech = E.copy()
        self.t_mech = t
        self.mech_solves += 1
        self.post_mechanics()
        return its

    def post_mechanics(self) -> None:
        """Derived mechanics fields and running maxima from the displacement."""
        interpolate_expression(self.von_mises, self._vm_expr)
        interpolate_expression(self.eps_vol, self._ev_expr)
        self.eps_cells = self.cells_of(self.eps_vol).copy()
        own = slice(0, self.n_owned)
        self.max_von_mises = max(
            self.max_von_mises,
            self.comm.allreduce(
                float(np.max(self.cells_of(self.von_mises)[own], initial=0.0)), op=MPI.MAX
            ),
        )
        self.max_strain_jump = max(self.max_strain_jump, self.interface_strain_jump())

    def interface_strain_jump(self) -> float:
        """Max over scaffold_interface facets of |n·ε n| jump between the two cells."""
        pairs, normals, _ = self._interface
        interpolate_expression(self.eps_t, self._eps_expr)
        dofs = self.eps_t.function_space.dofmap.list[:, 0]
        local = 0.0
        if len(pairs):
            eps = self.eps_t.x.array.reshape(-1, 9)[dofs].reshape(-1, 3, 3)
            e0, e1 = eps[pairs[:, 0]], eps[pairs[:, 1]]
            nn0 = np.einsum("fi,fij,fj->f", normals, e0, normals)
            nn1 = np.einsum("fi,fij,fj->f", normals, e1, normals)
            local = float(np.max(np.abs(nn0 - nn1)))
        return self.comm.allreduce(local, op=MPI.MAX)

    def fields(self) -> dict[str, fem.Function]:
        """Output fields by name (P1 concentrations, DG0 material, P1/P2 displacement)."""
        out = {sp.name: sp.c for sp in self.species}
        if self.m_solvers:
            out["MMP"] = self.m
        out.update(
            {
                "polymer_fraction": self.wf,
                "porosity": self.phi,
                "modulus": self.E,
                "cell_density": self.rho_mean,
            }
        )
        if self.mech_solver is not None:
            out.update(
                {
                    "displacement": self.u,
                    "von_mises": self.von_mises,
                    "volumetric_strain": self.eps_vol,
                }
            )
        return out

    def destroy(self) -> None:
        """Free PETSc objects (collective)."""
        for s in self.transport_solvers():
            s.destroy()
        if self.mech_solver is not None:
            self.mech_solver.destroy()
