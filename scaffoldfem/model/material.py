"""The material: polymer fraction w, porosity φ and the coefficients it sets (α, D, E, ν).

Regions of the coefficients (docs/model.md §10): α is the host ECS fraction in
white/grey matter and scar, the current porosity φ = 1 − (1 − φ0) w in the
scaffold, the lumen tissue's ECS fraction in channel lumens (``tissue.lumen``: the
host-derived tissue that fills them), 1 in the cavity. D/D_free is ``α/λ²`` in host
(axial and transverse λ) and lumen tissue, the scaffold's diffusivity law f(φ), 1 in
the cavity. E is per host region and lumen tissue, Gibson–Ashby in the scaffold, the
cavity's placeholder modulus in the cavity.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.physics import ScaffoldConfig, TissueConfig
from scaffoldfem.fem.compat import compile_form, integrate
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.state import ModelState
from scaffoldfem.physics import degradation as deg
from scaffoldfem.physics.materials import (
    filled_diffusivity,
    filled_modulus,
    filled_volume_fraction,
    flux_diffusivity,
    gibson_ashby,
)
from scaffoldfem.physics.mechanics import deformed_porosity
from scaffoldfem.physics.transport import axial_tensor, host_diffusivity
from scaffoldfem.regions import cell_tag

#: Steps after a refresh during which an old time level of α still differs from the
#: α the transport matrices were assembled with (α_prev next step, α_prev2 after).
HISTORY_STEPS = 3


class Change(enum.Enum):
    """What a coefficient update changed, for the transport solvers."""

    NONE = "none"  # nothing: matrices are current
    REFRESHED = "refreshed"  # α, D, E: every transport matrix is stale
    OLD_LEVELS = "old_levels"  # only α of an old time level: right-hand-side matrices


class Material:
    """Scaffold and host material on the cells of a discretisation.

    Args:
        scaffold: The ``scaffold`` study section.
        tissue: The ``tissue`` study section.
        disc: The shared discretisation.
    """

    def __init__(self, scaffold: ScaffoldConfig, tissue: TissueConfig, disc: Discretisation):
        self.cfg, self.tissue, self.disc = scaffold, tissue, disc
        self.w = np.where(disc.scaffold, 1.0, 0.0)  # polymer mass fraction
        self.alpha = disc.dg0("alpha")
        self.alpha_prev = disc.dg0("alpha_prev")
        self.alpha_prev2 = disc.dg0("alpha_prev2")
        self.d_axial = disc.dg0("d_axial")  # D / D_free along z
        self.d_trans = disc.dg0("d_transverse")
        self.E = disc.dg0("modulus")
        self.nu = disc.dg0("poisson")
        self.phi = disc.dg0("porosity")
        self.wf = disc.dg0("polymer_fraction")
        self.phi_used = np.full(disc.n_cells, np.nan)
        # ε_vol per cell when mechanics.deformed_porosity is on (set by Mechanics).
        self.strain: np.ndarray | None = None
        self.history_steps = 0
        self.lumen = disc.region == cell_tag("channel")  # filled by host-derived tissue
        # Filled fraction of the pore space by ingrown tissue per cell, and the one the
        # coefficients were set with ([ingrowth], model/ingrowth.py sets ``fill``).
        # None: no ingrowth, a degraded matrix is fluid.
        self.fill: np.ndarray | None = None
        self.fill_used: np.ndarray | None = None
        self._size_factors: dict[float, fem.Function] = {}  # by molecular tortuosity
        # ∫_scaffold f per output field f, compiled once (an output must not JIT a form).
        self._scaffold_forms: dict[int, tuple[fem.Function, fem.Form]] = {}
        nu = np.full(disc.n_cells, scaffold.poisson)
        for name, region in self._host_regions(with_cavity=True).items():
            nu[disc.region == cell_tag(name)] = region.poisson
        nu[self.lumen] = tissue.lumen.poisson
        disc.set_cells(self.nu, nu)
        self.apply(self.porosity_cells())
        self.alpha_prev.x.array[:] = self.alpha.x.array

    def _host_regions(self, with_cavity: bool = False) -> dict[str, Any]:
        t = self.tissue
        out = {"white_matter": t.white_matter, "grey_matter": t.grey_matter, "scar": t.scar}
        if with_cavity:
            out["cavity"] = t.cavity
        return out

    # ------------------------------------------------------------------ laws per cell
    def porosity_cells(self) -> np.ndarray:
        """Current porosity per cell (host and lumen tissue: their ECS fraction; 1 in
        the cavity)."""
        d = self.disc
        phi = np.where(d.host, self.tissue.volume_fraction, 1.0)
        phi[self.lumen] = self.tissue.lumen.volume_fraction
        phi[d.scaffold] = deg.porosity(self.w[d.scaffold], self.cfg.porosity)
        if self.strain is not None:  # deformed: φ_def = 1 − (1 − φ)/(1 + ε_vol)
            phi[d.scaffold] = deformed_porosity(phi[d.scaffold], self.strain[d.scaffold])
        return phi

    def modulus_cells(self, phi: np.ndarray) -> np.ndarray:
        """Young's modulus per cell (kPa) at porosity ``phi``."""
        d, t = self.disc, self.tissue
        E = np.full(d.n_cells, t.cavity.modulus)
        for name, region in self._host_regions().items():
            E[d.region == cell_tag(name)] = region.modulus
        E[self.lumen] = t.lumen.modulus
        E[d.scaffold] = self.skeleton_modulus(phi)
        if self.fill_used is not None:  # ingrown tissue carries load beside the skeleton
            E[d.scaffold] = filled_modulus(E[d.scaffold], phi[d.scaffold],
                                           self.fill_used[d.scaffold], t.lumen.modulus)
        # A fully degraded matrix is fluid: never softer than the cavity placeholder.
        return np.maximum(E, t.cavity.modulus)

    def skeleton_modulus(self, phi: np.ndarray) -> np.ndarray:
        """Gibson–Ashby modulus of the polymer skeleton of the scaffold cells (kPa)."""
        s = self.cfg
        return gibson_ashby(s.solid_modulus, phi[self.disc.scaffold], s.modulus_exponent)

    def enable_fill(self) -> None:
        """Let ingrown tissue (``fill``, 0 now) set α, D and E of the scaffold cells."""
        self.fill = np.zeros(self.disc.n_cells)
        self.fill_used = np.zeros(self.disc.n_cells)

    def apply(self, phi: np.ndarray) -> None:
        """Set α, D/D_free and E from the porosity (and any ingrown tissue) per cell."""
        d, s, t = self.disc, self.cfg, self.tissue
        self.phi_used = np.asarray(phi, dtype=float).copy()
        if self.fill is not None:
            self.fill_used = self.fill.copy()
        da = np.ones(d.n_cells)
        dt_ = np.ones(d.n_cells)
        da[d.host] = host_diffusivity(1.0, t.volume_fraction, t.tortuosity_axial)
        dt_[d.host] = host_diffusivity(1.0, t.volume_fraction, t.tortuosity_transverse)
        lu = t.lumen
        da[self.lumen] = dt_[self.lumen] = host_diffusivity(1.0, lu.volume_fraction, lu.tortuosity)
        f = flux_diffusivity(1.0, phi[d.scaffold], s.diffusivity_law, s.archie_exponent)
        alpha = phi.copy()
        if self.fill_used is not None:  # rule of mixtures: polymer, tissue, fluid
            fs = self.fill_used[d.scaffold]
            d_t = host_diffusivity(1.0, lu.volume_fraction, lu.tortuosity)
            f = filled_diffusivity(f, fs, d_t)
            alpha[d.scaffold] = filled_volume_fraction(phi[d.scaffold], fs, lu.volume_fraction)
        da[d.scaffold] = f
        dt_[d.scaffold] = f
        d.set_cells(self.alpha, alpha)
        d.set_cells(self.d_axial, da)
        d.set_cells(self.d_trans, dt_)
        d.set_cells(self.phi, phi)
        d.set_cells(self.wf, self.w)
        d.set_cells(self.E, self.modulus_cells(phi))

    def diffusivity(self, d_free: fem.Constant, tortuosity: float | None = None) -> Any:
        """UFL tensor ``D_free (d_t I + (d_a − d_t) e_z⊗e_z)`` (flux basis, mm²/day).

        Args:
            d_free: Free diffusivity.
            tortuosity: The molecule's own tissue tortuosity λ_s (None: the tissue
                section's, the small-molecule value): in host tissue and channel
                lumens ``D`` is scaled by ``(λ_t/λ_s)²``, ``λ_t`` the tissue's
                transverse tortuosity, so a larger molecule is hindered more in
                every direction; the scaffold's porosity law is unchanged.
        """
        D = d_free * axial_tensor(self.d_axial, self.d_trans)
        if tortuosity is None:
            return D
        key = round(float(tortuosity), 12)
        if key not in self._size_factors:
            f = (self.tissue.tortuosity_transverse / tortuosity) ** 2
            d = self.disc
            vals = np.where(d.host | self.lumen, f, 1.0)
            self._size_factors[key] = d.dg0(f"size_hindrance_{len(self._size_factors)}", vals)
        return self._size_factors[key] * D

    # ------------------------------------------------------------------ stepping
    def degrade(self, dt: float, m_cells: np.ndarray, eps_cells: np.ndarray) -> np.ndarray:
        """Exact update of w over ``dt`` with the enzymes and ε_vol frozen; returns the
        old w (``m_cells``: Σ of the enzymes that cut the matrix, per cell)."""
        s, sc = self.cfg, self.disc.scaffold
        w_old = self.w.copy()
        self.w[sc] = deg.degrade_step(
            w_old[sc],
            dt,
            k_h=s.hydrolysis_rate,
            a_auto=s.autocatalysis,
            k_e=s.enzymatic_rate,
            K_e=s.enzyme_half_saturation,
            m=m_cells[sc],
            beta=s.strain_acceleration,
            eps_vol=eps_cells[sc],
        )
        return w_old

    def refresh(self, tol: float) -> bool:
        """Refresh α, D, E when φ moved by more than ``tol`` since the last refresh.

        Returns:
            True if refreshed (φ and w are shown current either way).
        """
        d = self.disc
        phi = self.porosity_cells()
        moved = np.abs(phi - self.phi_used)
        if self.fill is not None:  # α moves by at most Δfill where tissue grows in
            moved = np.maximum(moved, np.abs(self.fill - self.fill_used))
        local = float(np.max(moved[: d.n_owned], initial=0.0))
        if d.comm.allreduce(local, op=MPI.MAX) <= tol:
            d.set_cells(self.phi, phi)
            d.set_cells(self.wf, self.w)
            return False
        self.apply(phi)
        return True

    def advance(self, tol: float) -> Change:
        """Start a new time level: shift the α history, then :meth:`refresh`."""
        self.alpha_prev2.x.array[:] = self.alpha_prev.x.array
        self.alpha_prev.x.array[:] = self.alpha.x.array
        if self.refresh(tol):
            change, self.history_steps = Change.REFRESHED, HISTORY_STEPS
        else:
            change = Change.OLD_LEVELS if self.history_steps > 0 else Change.NONE
        self.history_steps = max(self.history_steps - 1, 0)
        return change

    # ------------------------------------------------------------------ quantities
    def mass_fraction_remaining(self) -> float:
        """Scaffold polymer mass left (volume-weighted mean of w over the scaffold)."""
        d = self.disc
        vol, own = d.cell_volume, slice(0, d.n_owned)
        num = d.comm.allreduce(float(np.sum((self.w * vol)[own][d.scaffold[own]])), op=MPI.SUM)
        den = d.comm.allreduce(float(np.sum(vol[own][d.scaffold[own]])), op=MPI.SUM)
        return num / den if den > 0 else float("nan")

    def scaffold_mean(self, f: fem.Function) -> float:
        """Mean of ``f`` over the scaffold (NaN without one); the form of each ``f`` is
        compiled at its first call only."""
        d = self.disc
        vol = d.volumes["scaffold"]
        if not vol:
            return float("nan")
        if id(f) not in self._scaffold_forms:  # f is kept with its form: the id stays its own
            self._scaffold_forms[id(f)] = (f, compile_form(f * d.dx(cell_tag("scaffold"))))
        return integrate(self._scaffold_forms[id(f)][1], d.comm) / vol

    # ------------------------------------------------------------------ part protocol
    def fields(self) -> dict[str, fem.Function]:
        return {"polymer_fraction": self.wf, "porosity": self.phi, "modulus": self.E}

    def state(self) -> ModelState:
        return ModelState(
            scalars={"alpha_history_steps": self.history_steps},
            cells={
                "w": self.w.copy(),
                "phi_used": self.phi_used.copy(),
                "alpha_prev": self.disc.cells_of(self.alpha_prev),  # a new array
                **({} if self.fill_used is None else {"fill_used": self.fill_used.copy()}),
            },
        )

    def restore(self, state: ModelState) -> None:
        self.w[:] = state.cells["w"]
        if self.fill is not None:  # the fill the coefficients had (Ingrowth restores fill)
            self.fill = state.cells["fill_used"].copy()
        self.apply(state.cells["phi_used"])  # α from φ_used (and fill_used)
        self.disc.set_cells(self.alpha_prev, state.cells["alpha_prev"])
        self.history_steps = int(state.scalars["alpha_history_steps"])

    def destroy(self) -> None:
        """Nothing to free (no solver)."""
