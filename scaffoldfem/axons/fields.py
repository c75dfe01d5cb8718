"""The fields a growth cone senses, prepared once per solver step and sampled per cone.

:class:`CueFields` turns what the coupled model hands the tracer
(:class:`GrowthFields`) into nodal arrays on the :class:`~scaffoldfem.fem.locate.Locator`:

* concentrations ``c_i`` (P1, as given) and their cellwise gradients;
* the CSPG / scar level ``s`` (``GrowthFields.cspg``, else ``scar_cspg`` in ``scar``
  cells) and the saturated log-modulus ``q = ln(E/(1 + E/E_sat))`` of
  ``GrowthFields.stiffness``, both smoothed by the Helmholtz filter of
  :mod:`scaffoldfem.fem.smoothing` over ``axons.cue_smoothing`` (re-smoothed only
  when the input moved by more than a tolerance, solved only once a cone samples
  them: :mod:`scaffoldfem.axons.cues`) with continuous nodal gradients;
* the contact-guidance curvature per cell (by region) and the guidance axis.

:meth:`CueFields.gather` collects the cones' cell data once per step (one gather of
all nodal fields stacked side by side) and :meth:`CueFields.sample` evaluates it at
barycentric coordinates; outside the cell it extrapolates the cell's linear data,
which is what the corrector stage of the integrator uses.
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

import scaffoldfem  # noqa: F401
from dolfinx import fem

from scaffoldfem.axons import guidance as am
from scaffoldfem.axons.cues import SmoothedCues
from scaffoldfem.config.axons import AxonsConfig
from scaffoldfem.fem.cells import barycentric_affine
from scaffoldfem.fem.smoothing import check_resolution
from scaffoldfem.regions import CELL_TAGS, cell_tag

#: Re-smooth the log-modulus when it moved by more than this anywhere (0.1 % in E).
Q_TOLERANCE = 1e-3
#: Re-smooth the CSPG level when it moved by more than this anywhere (as the model's
#: cue, ``model/cspg.py`` CUE_TOLERANCE).
S_TOLERANCE = 1e-3


@dataclass
class GrowthFields:
    """Fields the growth cones see during one :meth:`Tracer.advance` call.

    Attributes:
        concentrations: P1 concentration Function (ng/mL) per growth-factor name.
        stiffness: Young's modulus (kPa), DG0 or P1; None: no durotaxis and no
            stiffness factor in the speed.
        guidance_axis: Optional vector field (DG0 or P1, 3 components) of the
            local channel / fibre axis; default the cord axis z.
        cspg: Optional CSPG level (DG0 or P1, 1 = mature scar); default
            ``axons.scar_cspg`` in ``scar`` cells, 0 elsewhere.
    """

    concentrations: Mapping[str, fem.Function] = field(default_factory=dict)
    stiffness: fem.Function | None = None
    guidance_axis: fem.Function | None = None
    cspg: fem.Function | None = None


def _is_dg0(u: fem.Function) -> bool:
    return np.asarray(u.function_space.dofmap.list).shape[1] == 1


@dataclass
class Local:
    """Data of the cones' cells, gathered once per step and used by both stages."""

    aff: np.ndarray  # (n, 12) affine maps
    v: tuple  # 4 x (n, m): values of the stacked nodal fields at each vertex
    grad_c: np.ndarray  # (n, s, 3) cellwise concentration gradients
    kappa_g: np.ndarray  # (n,)
    axis: np.ndarray | None  # (n, 3) DG0 axis, if given per cell


@dataclass
class Sample:
    """Fields at the cones (arrays over cones)."""

    conc: np.ndarray  # (n, s)
    grad_c: np.ndarray  # (n, s, 3), cellwise
    s: np.ndarray | None  # smoothed CSPG level (n,)
    grad_s: np.ndarray | None  # (n, 3)
    e_s: np.ndarray | None  # sensed modulus exp(q~) (n,)
    grad_q: np.ndarray | None  # (n, 3)
    kappa_g: np.ndarray  # (n,)
    axis: np.ndarray  # (n, 3) unit


class CueFields:
    """Nodal cue fields of one tracer (collective set-up and :meth:`prepare`).

    Args:
        loc: Locator of the mesh.
        region: Region tag per local cell (owned and ghost).
        params: The ``[axons]`` section.
        species: Growth-factor names (order of the concentration columns).
    """

    def __init__(self, loc, region: np.ndarray, params: AxonsConfig, species: Sequence[str]):
        self.loc, self.p, self.comm = loc, params, loc.comm
        self.species = list(species)
        names = {v: k for k, v in CELL_TAGS.items()}
        self.kappa_cell = np.zeros(loc.num_cells)
        for t in np.unique(region):
            name = names.get(int(t))
            if name is not None:
                self.kappa_cell[region == t] = params.guidance_curvature(name)
        scar = region == cell_tag("scar")
        self.scar_cells = scar.astype(np.float64) * params.scar_cspg
        self.has_scar = self.comm.allreduce(int(scar[: loc.num_owned].sum())) > 0
        #: Median cell size where regions meet (the smoothing length must be >= 2 of them).
        self.border_h = check_resolution(loc, region, params.cue_smoothing,
                                         "axons.cue_smoothing", "regions meet")
        #: The smoothed cues s~, q~ (accepted inputs, deferred solves, checkpoint state).
        self.cues = SmoothedCues(loc, params.cue_smoothing)
        self.conc: list[np.ndarray] = []
        self.axis: tuple[str, np.ndarray] | None = None
        self._stacked = False

    @property
    def smooth(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Smoothed nodal fields and their nodal gradients: "s", "q" -> (values, gradient)
        (those solved: see :meth:`ensure`)."""
        return self.cues.smooth

    @property
    def nodal(self) -> np.ndarray:
        """All nodal fields side by side (nodes, m), as :meth:`gather` reads them."""
        return self._nodal

    @property
    def columns(self) -> dict[str, int]:
        """First column in :attr:`nodal` of "s" (s~, then ∇s~), "q" (q~, ∇q~) and
        "axis" (a P1 guidance axis) where present; the concentrations come first."""
        return self._cols

    @property
    def functions(self) -> dict[str, fem.Function]:
        """The smoothed fields as P1 Functions (for output)."""
        return self.cues.functions

    # -- preparation (collective) -------------------------------------------
    def _source(self, u: fem.Function, f, key: str) -> tuple[str, np.ndarray]:
        """Input kind and values ``f(u)`` per local cell (DG0) or per dof of the filter's
        own P1 space (P1)."""
        u.x.scatter_forward()
        if _is_dg0(u):
            return "DG0", f(self.loc.cell_values(u))
        src = self.cues.filter("P1").src
        src.interpolate(u)
        return "P1", f(src.x.array.real.copy())

    def prepare(self, fields: GrowthFields | Mapping) -> None:
        """Collective: read the fields of this solver step and decide which cues are
        re-smoothed; their solves wait for :meth:`ensure`."""
        if isinstance(fields, Mapping):
            fields = GrowthFields(**fields)
        missing = [s for s in self.species if s not in fields.concentrations]
        if missing:
            raise KeyError(f"no concentration field for {missing}")
        self.conc = []
        for s in self.species:
            u = fields.concentrations[s]
            u.x.scatter_forward()
            self.conc.append(self.loc.nodal_values(u))
        if fields.cspg is not None:
            kind, vals = self._source(fields.cspg, lambda a: np.maximum(a, 0.0), "s")
            self.cues.offer("s", kind, vals, S_TOLERANCE)
        elif self.has_scar:
            self.cues.offer("s", "DG0", self.scar_cells, S_TOLERANCE)
        else:
            self.cues.drop("s")
        p = self.p
        if fields.stiffness is not None and (p.cues.durotaxis > 0 or p.stiffness_half_speed > 0
                                             or p.stiffness_half_persistence > 0):
            kind, vals = self._source(
                fields.stiffness, lambda a: am.saturated_log_modulus(a, p.durotaxis_saturation),
                "q")
            self.cues.offer("q", kind, vals, Q_TOLERANCE)
        else:
            self.cues.drop("q")
        ax = fields.guidance_axis
        if ax is not None:
            ax.x.scatter_forward()
            self.axis = (("cell", self.loc.cell_values(ax)) if _is_dg0(ax)
                         else ("node", self.loc.nodal_values(ax)))
        else:
            self.axis = None
        self._stacked = False
        if self.cues.ready:
            self._stack()

    def ensure(self, time: float = float("nan")) -> None:
        """Collective (when a solve is pending, the same on every rank): solve the
        cues accepted by :meth:`prepare` and make the fields ready to sample."""
        if not self.cues.ready:
            self.cues.solve(time)
        if not self._stacked:
            self._stack()

    # -- sampling ------------------------------------------------------------
    def _stack(self) -> None:
        """All nodal fields side by side, so a cone's cell is gathered once per step:
        concentrations, then s~, ∇s~, q~, ∇q~, then a P1 guidance axis."""
        cols, at = list(self.conc), {}
        for key in ("s", "q"):
            if key in self.smooth:
                at[key] = len(cols)
                val, grad = self.smooth[key]
                cols += [val, grad[:, 0], grad[:, 1], grad[:, 2]]
        if self.axis is not None and self.axis[0] == "node":
            at["axis"] = len(cols)
            cols += [self.axis[1][:, k] for k in range(3)]
        self._cols = at
        self._nodal = (np.column_stack(cols) if cols else np.zeros((len(self.loc.x), 0)))
        self._stacked = True

    def gather(self, cells: np.ndarray) -> Local:
        """The cones' cell data: affine map, vertex values, cellwise ∇c, κ_g, DG0 axis."""
        if not self._stacked:
            raise RuntimeError("CueFields.ensure() must follow prepare() before sampling")
        loc = self.loc
        aff = np.take(loc.affine, cells, axis=0)
        nodes = np.take(loc.nodes, cells, axis=0)
        v = tuple(np.take(self._nodal, nodes[:, j], axis=0) for j in range(4))  # 4 x (n, m)
        ns = len(self.species)
        grad_c = np.empty((len(cells), ns, 3))
        for s in range(ns):
            du1, du2, du3 = (v[j][:, s] - v[0][:, s] for j in (1, 2, 3))
            for k in range(3):
                grad_c[:, s, k] = du1 * aff[:, 3 + k] + du2 * aff[:, 6 + k] + du3 * aff[:, 9 + k]
        axis = None
        if self.axis is not None and self.axis[0] == "cell":
            axis = self.axis[1][cells]
        return Local(aff, v, grad_c, self.kappa_cell[cells], axis)

    @staticmethod
    def barycentric(L: Local, x: np.ndarray) -> np.ndarray:
        """Barycentric coordinates of ``x`` in the gathered cells (extrapolating outside)."""
        return barycentric_affine(L.aff, x)

    def sample(self, L: Local, lam: np.ndarray) -> Sample:
        """Fields at the points with barycentrics ``lam`` in the gathered cells."""
        v = L.v
        val = (v[0] * lam[:, 0, None] + v[1] * lam[:, 1, None]
               + v[2] * lam[:, 2, None] + v[3] * lam[:, 3, None])
        n, ns, at = len(lam), len(self.species), self._cols
        s_val = s_grad = q_val = q_grad = None
        if "s" in at:
            s_val, s_grad = val[:, at["s"]], val[:, at["s"] + 1:at["s"] + 4]
        if "q" in at:
            q_val, q_grad = val[:, at["q"]], val[:, at["q"] + 1:at["q"] + 4]
        axis = np.tile([0.0, 0.0, 1.0], (n, 1))
        if L.axis is not None:
            axis = am.unit(L.axis, fallback=axis)
        elif "axis" in at:
            axis = am.unit(val[:, at["axis"]:at["axis"] + 3], fallback=axis)
        return Sample(val[:, :ns], L.grad_c, s_val, s_grad,
                      None if q_val is None else np.exp(q_val), q_grad, L.kappa_g, axis)

    def at(self, cells: np.ndarray, x: np.ndarray) -> Sample:
        """Fields at points ``x`` in their local ``cells``."""
        L = self.gather(cells)
        return self.sample(L, self.barycentric(L, x))

    def destroy(self) -> None:
        """Free the smoothing filters (collective)."""
        self.cues.destroy()

    def smoothed_functions(self) -> dict[str, fem.Function]:
        """Collective: the smoothed fields in use as P1 Functions (for output), by name
        ``cspg_smoothed`` (s~) and ``log_modulus_smoothed`` (q~)."""
        self.ensure()
        names = {"s": "cspg_smoothed", "q": "log_modulus_smoothed"}
        out = {}
        for key, u in self.functions.items():
            if key in self.smooth:
                u.name = names[key]
                out[names[key]] = u
        return out
