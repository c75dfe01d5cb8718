"""Smooth cue fields for the growth cones: a Helmholtz filter and nodal gradients.

A growth cone turns by ``gain · Δf`` across a border of a field ``f`` only if
``f`` is a smooth field whose gradient it samples all the way across; a DG0
field (a region indicator, ``ln E`` per cell) has no such gradient. The filter

    (−ℓ² Δ + 1) f̃ = f   in Ω,      ∇f̃·n = 0 on ∂Ω      (P1, weak form)

smooths ``f`` over the length ℓ (its Green's function decays as ``e^{−r/ℓ}``;
a step becomes ``½ e^{−|ξ|/ℓ}`` on either side), keeps the mean, and leaves a
linear field unchanged away from the boundary. The matrix ``ℓ²K + M`` and the
source matrix are assembled once; a new input is one CG + GAMG solve
(:class:`~scaffoldfem.fem.solver.LinearSolver`, warm-started from the last
result). :class:`NodalGradient` recovers a continuous (P1) gradient of a P1
field (volume-weighted average of the cellwise gradients at each node), so the
cue drift sampled along a path is continuous. :func:`check_resolution` refuses
an ℓ the mesh cannot represent.
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

import numpy as np

import scaffoldfem  # noqa: F401
import ufl
from dolfinx import fem, la
from scaffoldfem.errors import StudyError
from scaffoldfem.fem.solver import LinearSolver

__all__ = ["HelmholtzFilter", "NodalGradient", "border_cell_size", "cell_sizes",
           "check_resolution"]

#: ℓ must be at least this many local cell sizes where the smoothed field changes.
MIN_CELLS_PER_LENGTH = 2.0


class HelmholtzFilter:
    """``(−ℓ²Δ + 1) f̃ = f`` on P1 with natural boundary conditions.

    Args:
        mesh: The mesh (any partition).
        length: Smoothing length ℓ (mesh units, mm).
        name: Field name (solver options prefix ``sfem_smooth_<name>_<n>_``, messages).
        source: ``"DG0"`` (per-cell input) or ``"P1"`` (nodal input).
        petsc_options: Options merged over the ``transport`` preset (CG + GAMG).
    """

    def __init__(self, mesh, length: float, name: str, source: str = "DG0",
                 petsc_options: dict | None = None):
        if length <= 0:
            raise ValueError("smoothing length must be > 0")
        self.length = float(length)
        self.V = fem.functionspace(mesh, ("Lagrange", 1))
        W = fem.functionspace(mesh, ("DG", 0)) if source == "DG0" else self.V
        self.source = source
        self.src = fem.Function(W, name=f"{name}_raw")
        self.out = fem.Function(self.V, name=f"{name}_smoothed")
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        l2 = fem.Constant(mesh, self.length**2)
        a = (l2 * ufl.inner(ufl.grad(u), ufl.grad(v)) + u * v) * ufl.dx
        L = self.src * v * ufl.dx
        self.solver = LinearSolver(a, L, self.out, field=f"smooth_{name}", preset="transport",
                                   petsc_options=petsc_options, rhs_coefficients=[self.src],
                                   static_rhs=[self.src])
        #: Number of solves so far.
        self.solves = 0

    def set_cells(self, values: np.ndarray) -> None:
        """Set a DG0 input from one value per local cell (owned and ghost)."""
        dm = np.asarray(self.src.function_space.dofmap.list)[:, 0]
        self.src.x.array[dm[: len(values)]] = values
        self.src.x.scatter_forward()

    def smooth(self, values: np.ndarray | None = None, time: float = float("nan")
               ) -> fem.Function:
        """Collective: the smoothed field of ``values`` (per local cell for DG0, or the
        source's local dof array for P1; None: the current :attr:`src`)."""
        if values is not None:
            if self.source == "DG0":
                self.set_cells(values)
            else:
                self.src.x.array[:] = values
                self.src.x.scatter_forward()
        self.solver.solve(time)
        self.solves += 1
        return self.out

    def destroy(self) -> None:
        self.solver.destroy()


class NodalGradient:
    """Continuous gradient of P1 fields: at each node the volume-weighted mean of the
    cellwise gradients of the cells around it (a lumped L2 projection).

    Args:
        loc: A :class:`~scaffoldfem.fem.locate.Locator` (cells, nodes, affine maps).
    """

    def __init__(self, loc):
        self.loc = loc
        self.gmap = loc.mesh.geometry.index_map()
        self.nn = len(loc.x)
        own = np.arange(loc.num_owned)
        self.cells = own
        self.nodes = loc.nodes[own].ravel()
        self.w = np.repeat(loc.volumes[own], 4)
        den = self._sum(self.w[:, None])[:, 0]
        self.inv = np.where(den > 0, 1.0 / np.where(den > 0, den, 1.0), 0.0)

    def _sum(self, rows: np.ndarray) -> np.ndarray:
        """Sum ``rows`` (one per cell-node pair, (4 n_owned, bs)) at the nodes, over
        all ranks (owner accumulates, ghosts updated)."""
        bs = rows.shape[1]
        vec = la.vector(self.gmap, bs)
        arr = vec.array.reshape(-1, bs)
        arr[:] = 0.0
        for k in range(bs):
            arr[:, k] = np.bincount(self.nodes, weights=rows[:, k], minlength=len(arr))
        vec.scatter_reverse(la.InsertMode.add)
        vec.scatter_forward()
        return vec.array.reshape(-1, bs)[: self.nn].copy()

    def __call__(self, nodal: np.ndarray) -> np.ndarray:
        """Collective: nodal gradient (nodes, 3) of the nodal (P1) field ``nodal``."""
        g = self.loc.gradient(nodal, self.cells)
        s = self._sum(np.repeat(g, 4, axis=0) * self.w[:, None])
        return s * self.inv[:, None]


def cell_sizes(loc) -> np.ndarray:
    """Size of each local cell: the edge of the regular tetrahedron of equal volume,
    ``(6√2 |K|)^{1/3}`` (so a cube split into 6 tetrahedra of edge a gives 1.12 a)."""
    return np.cbrt(6.0 * np.sqrt(2.0) * loc.volumes)


def border_cell_size(loc, values: np.ndarray) -> tuple[float, int]:
    """Collective: median size of the owned cells where ``values`` (per local cell)
    differs from a face neighbour's, and their number (nan, 0 if there is none)."""
    v = np.asarray(values)
    nb = loc.neighbours[: loc.num_owned]
    own = v[: loc.num_owned]
    border = np.zeros(loc.num_owned, dtype=bool)
    for j in range(4):
        ok = nb[:, j] >= 0
        border[ok] |= v[nb[ok, j]] != own[ok]
    h = cell_sizes(loc)[: loc.num_owned][border]
    allh = np.concatenate(loc.comm.allgather(h))
    if allh.size == 0:
        return float("nan"), 0
    return float(np.median(allh)), int(allh.size)


def check_resolution(loc, values: np.ndarray, length: float, key: str, what: str) -> float:
    """Collective: refuse (StudyError, one line) a smoothing length under
    :data:`MIN_CELLS_PER_LENGTH` cell sizes where ``values`` changes (``what``, e.g.
    "regions meet"); returns that size."""
    h, n = border_cell_size(loc, values)
    if n and length < MIN_CELLS_PER_LENGTH * h * (1.0 - 1e-9):
        raise StudyError([
            f"{key}: {length:g} mm is under {MIN_CELLS_PER_LENGTH:g} cell sizes of this mesh "
            f"where {what} (median cell size there {h:.3g} mm): refine the mesh "
            f"or set {key} >= \"{MIN_CELLS_PER_LENGTH * h:.3g} mm\""])
    return h

