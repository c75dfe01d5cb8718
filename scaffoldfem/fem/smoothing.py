"""Smooth cue fields for the growth cones: a Helmholtz filter and nodal gradients.

A growth cone turns by ``gain · Δf`` across a border of a field ``f`` only if
``f`` is a smooth field whose gradient it samples all the way across; a DG0
field (a region indicator, ``ln E`` per cell) has no such gradient. The filter

    (−ℓ² Δ + 1) f̃ = f   in Ω,      ∇f̃·n = 0 on ∂Ω      (P1, weak form)

smooths ``f`` over the length ℓ (its Green's function decays as ``e^{−r/ℓ}``;
a step becomes ``½ e^{−|ξ|/ℓ}`` on either side), keeps the mean, and leaves a
linear field unchanged away from the boundary. The matrix ``ℓ²K + M`` and the
source matrix are assembled once; a new input is one CG + GAMG solve
(:class:`~scaffoldfem.fem.solver.LinearSolver`, started from the projection on the
last results of the same input, :mod:`scaffoldfem.fem.guess`, so one filter serves
several cue fields).
:class:`NodalGradient` recovers a continuous (P1) gradient of a P1 field
(volume-weighted average of the cellwise gradients at each node, one sparse
product for several fields), so the cue drift sampled along a path is continuous.
:func:`check_resolution` refuses an ℓ the mesh cannot represent.
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

import numpy as np
from scipy import sparse

import scaffoldfem  # noqa: F401
import ufl
from dolfinx import fem, la
from scaffoldfem.errors import StudyError
from scaffoldfem.fem.solver import LinearSolver

__all__ = ["HelmholtzFilter", "NodalGradient", "border_cell_size", "cell_sizes",
           "check_resolution"]

#: ℓ must be at least this many local cell sizes where the smoothed field changes.
MIN_CELLS_PER_LENGTH = 2.0
#: The filter's own Krylov tolerance (over the ``transport`` preset, whose tolerance is
#: chosen for transport): the cones' paths on 1 and N ranks agree to ~1e-7 mm only if
#: the cues do to ~1e-8 (measured: rtol 1e-8 in the preconditioned norm gives 2e-7 mm).
FILTER_OPTIONS = {"ksp_rtol": 1.0e-10, "ksp_atol": 1.0e-30,
                  "ksp_norm_type": "unpreconditioned"}


class HelmholtzFilter:
    """``(−ℓ²Δ + 1) f̃ = f`` on P1 with natural boundary conditions.

    Args:
        mesh: The mesh (any partition).
        length: Smoothing length ℓ (mesh units, mm).
        name: Field name (solver options prefix ``sfem_smooth_<name>_<n>_``, messages).
        source: ``"DG0"`` (per-cell input) or ``"P1"`` (nodal input).
        petsc_options: Options merged over :data:`FILTER_OPTIONS` and the ``transport``
            preset (CG + GAMG).
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
        user = dict(petsc_options or {})
        opts = user if user.get("ksp_type") == "preonly" else {**FILTER_OPTIONS, **user}
        # Each input is solved into its own Function (``smooth(guess=...)``), so the
        # projected guess keeps one history per input (keyed by that Function).
        self.solver = LinearSolver(a, L, self.out, field=f"smooth_{name}", preset="transport",
                                   petsc_options=opts, rhs_coefficients=[self.src],
                                   static_rhs=[self.src])

    def set_cells(self, values: np.ndarray) -> None:
        """Set a DG0 input from one value per local cell (owned and ghost)."""
        dm = np.asarray(self.src.function_space.dofmap.list)[:, 0]
        self.src.x.array[dm[: len(values)]] = values
        self.src.x.scatter_forward()

    def smooth(self, values: np.ndarray | None = None, time: float = float("nan"),
               guess: fem.Function | None = None) -> fem.Function:
        """Collective: the smoothed field of ``values`` (per local cell for DG0, or the
        source's local dof array for P1; None: the current :attr:`src`).

        Args:
            values: The input (see above).
            time: Simulated time, for an error message.
            guess: A P1 Function on :attr:`V` holding this input's previous result:
                solved into and returned (one filter then serves several inputs, each
                with its own warm start and projected-guess history). None: :attr:`out`.
        """
        if values is not None:
            if self.source == "DG0":
                self.set_cells(values)
            else:
                self.src.x.array[:] = values
                self.src.x.scatter_forward()
        self.solver.solve(time, u=guess)
        return self.out if guess is None else guess

    def history(self, u: fem.Function) -> list[np.ndarray]:
        """The projected guess's stored results of the input solved into ``u`` (newest
        first, owned dof entries), for a checkpoint."""
        return self.solver.guess.get(id(u))

    def set_history(self, u: fem.Function, arrays: list[np.ndarray]) -> None:
        """Restore a :meth:`history` of ``u`` (none: its guess starts afresh)."""
        self.solver.guess.put(id(u), arrays, like=self.solver.b)

    def destroy(self) -> None:
        self.solver.destroy()


class NodalGradient:
    """Continuous gradient of P1 fields: at each node the volume-weighted mean of the
    cellwise gradients of the cells around it (a lumped L2 projection).

    The map from nodal values to the (unnormalised) node sums is linear and fixed by
    the mesh, so it is assembled once as a sparse matrix ``G`` (3 blocks of rows, one
    per component; rows = local nodes, columns = local nodes) over the owned cells:
    a call is one sparse product for all the fields given, one ghost accumulation and
    one ghost update (previously a gather of the affine maps, three ``bincount`` and a
    scatter per field: 47 ms per field on the medium mesh, 2 ranks, now a few ms).

    Args:
        loc: A :class:`~scaffoldfem.fem.locate.Locator` (cells, nodes, affine maps).
    """

    def __init__(self, loc):
        self.loc = loc
        self.gmap = loc.mesh.geometry.index_map()
        self.nn = len(loc.x)
        own = np.arange(loc.num_owned)
        nodes = loc.nodes[own].astype(np.int64)
        w = loc.volumes[own]
        n = len(own)
        # ∂λ_j/∂x_k per cell: rows 1..3 of J^{-1} (affine), λ_0 = 1 − λ_1 − λ_2 − λ_3.
        dl = np.empty((n, 4, 3))
        dl[:, 1:] = loc.affine[own, 3:12].reshape(n, 3, 3)
        dl[:, 0] = -dl[:, 1:].sum(axis=1)
        # G_k = P D_k: D_k (cells x nodes) the cellwise gradient, P (nodes x cells) the
        # volume-weighted sum over the cells around each node (a sparse product, ~0.1 s).
        ptr = np.arange(0, 4 * n + 1, 4)
        P = sparse.csc_matrix((np.repeat(w, 4), nodes.ravel(), ptr),
                              shape=(self.nn, n)).tocsr()
        self.G = sparse.vstack([P @ sparse.csr_matrix((dl[:, :, k].ravel(), nodes.ravel(), ptr),
                                                      shape=(n, self.nn))
                                for k in range(3)], format="csr")
        self._vec: dict[int, la.Vector] = {}
        den = np.bincount(nodes.ravel(), weights=np.repeat(w, 4), minlength=self.nn)
        den = self._accumulate(den[:, None])[:, 0]
        self.inv = np.where(den > 0, 1.0 / np.where(den > 0, den, 1.0), 0.0)

    def _accumulate(self, rows: np.ndarray) -> np.ndarray:
        """Node sums ``rows`` (local nodes, bs) of this rank's cells summed over all
        ranks (owner accumulates, ghosts updated)."""
        bs = rows.shape[1]
        if bs not in self._vec:
            self._vec[bs] = la.vector(self.gmap, bs)
        vec = self._vec[bs]
        arr = vec.array.reshape(-1, bs)
        arr[: self.nn] = rows
        arr[self.nn:] = 0.0
        vec.scatter_reverse(la.InsertMode.add)
        vec.scatter_forward()
        return arr[: self.nn].copy()

    def __call__(self, nodal: np.ndarray) -> np.ndarray:
        """Collective: nodal gradient (nodes, 3) of the nodal (P1) field ``nodal``
        (nodes,), or (nodes, m, 3) of m fields given as (nodes, m)."""
        v = np.asarray(nodal, dtype=np.float64)
        one = v.ndim == 1
        v = v.reshape(self.nn, -1)
        m = v.shape[1]
        s = np.asarray(self.G @ v).reshape(3, self.nn, m).transpose(1, 2, 0)
        g = self._accumulate(s.reshape(self.nn, 3 * m)) * self.inv[:, None]
        return g.reshape(self.nn, 3) if one else g.reshape(self.nn, m, 3)


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

