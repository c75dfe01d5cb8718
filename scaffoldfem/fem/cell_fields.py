"""P1 and DG0 fields on the local cells, evaluated at (cell, barycentric) points.

:class:`CellFields` reads a DOLFINx function once as a NumPy array per geometry
node (P1) or per cell (DG0) and then evaluates it, and its cellwise gradient, at
points given by their cell and barycentric coordinates (as the walk of
:class:`scaffoldfem.fem.locate.Locator` returns them) with gathers only, no
DOLFINx call per point.
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

import numpy as np

import scaffoldfem  # noqa: F401
from dolfinx import fem, la
from scaffoldfem.fem.cells import LocalCells
from scaffoldfem.fem.exchange import alltoallv_rows

__all__ = ["CellFields"]


class CellFields(LocalCells):
    """:class:`LocalCells` plus reading and evaluating P1/DG0 fields on them."""

    def p1_perm(self, V: fem.FunctionSpace) -> np.ndarray:
        """P1 dof of each geometry node of a P1 space ``V``: ``u.x.array[perm]`` are the
        nodal values and ``u.x.array[perm] = nodal`` sets them.

        Requires the P1 dof layout to follow the cell's geometry node order
        (true for Lagrange P1 on a P1 mesh; checked once per space).
        """
        key = id(V)
        perms = self.__dict__.setdefault("_perms", {})
        if key not in perms:
            dm = np.asarray(V.dofmap.list)[: self.num_cells]
            if dm.shape[1] != 4:
                raise ValueError("nodal_values needs a P1 (vertex) function space")
            X = V.tabulate_dof_coordinates()[:, :3]
            if not np.allclose(X[dm], self.x[self.nodes], rtol=0, atol=1e-12 * self.scale):
                raise ValueError("P1 dof layout does not follow the geometry nodes")
            perm = np.empty(len(self.x), dtype=np.int32)
            perm[self.nodes.ravel()] = dm.ravel()
            perms[key] = (V, perm)  # V kept alive, so its id is not reused
        return perms[key][1]

    def nodal_values(self, u: fem.Function) -> np.ndarray:
        """Values of a P1 function at the geometry nodes, shape (nodes,) or (nodes, bs)
        (see :meth:`p1_perm`)."""
        V = u.function_space
        perm = self.p1_perm(V)
        bs = V.dofmap.bs
        arr = u.x.array.real
        return arr[perm] if bs == 1 else arr.reshape(-1, bs)[perm]

    def cell_values(self, u: fem.Function) -> np.ndarray:
        """Values of a DG0 function per local cell, shape (cells,) or (cells, bs)."""
        V = u.function_space
        dm = np.asarray(V.dofmap.list)
        if dm.shape[1] != 1:
            raise ValueError("cell_values needs a DG0 (one dof per cell) function space")
        bs = V.dofmap.bs
        arr = u.x.array.real
        d = dm[: self.num_cells, 0]
        return arr[d] if bs == 1 else arr.reshape(-1, bs)[d]

    def cell_average_to_nodes(self, cellvals: np.ndarray) -> np.ndarray:
        """Collective: volume-weighted average of cell values at the nodes.

        Each node gets ``sum_c |c| v_c / sum_c |c|`` over the cells around it,
        a continuous P1 field whose cellwise gradient is non-zero where the
        cell values jump. The contributions of a node are summed on its owner
        in the order of the cells' original (input) indices, so the result is
        bit-identical on any number of ranks.
        """
        gmap = self.mesh.geometry.index_map()
        nown = gmap.size_local
        own = np.arange(self.num_owned)
        nodes = self.nodes[own].ravel()
        w = np.repeat(self.volumes[own], 4)
        wv = np.repeat(self.volumes[own] * np.asarray(cellvals, dtype=np.float64)[own], 4)
        key = np.repeat(self.orig_cell[own], 4)
        dest = np.full(len(nodes), self.comm.rank, dtype=np.int32)
        ghost = nodes >= nown
        dest[ghost] = gmap.owners[nodes[ghost] - nown]
        gnode = gmap.local_to_global(nodes.astype(np.int32))
        rows = np.column_stack([gnode.astype(np.float64), key.astype(np.float64), wv, w])
        got = alltoallv_rows(self.comm, dest, rows)
        loc = gmap.global_to_local(got[:, 0].astype(np.int64))
        order = np.lexsort((got[:, 1], loc))
        loc, got = loc[order], got[order]
        starts = np.flatnonzero(np.r_[True, loc[1:] != loc[:-1]]) if len(loc) else np.zeros(0, int)
        out = la.vector(gmap, 1)
        out.array[:] = 0.0
        if len(loc):
            num = np.add.reduceat(got[:, 2], starts)
            den = np.add.reduceat(got[:, 3], starts)
            out.array[loc[starts]] = num / den
        out.scatter_forward()
        return out.array.copy()

    def interpolate(self, nodal: np.ndarray, cells: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """Value of a nodal (P1) field at points given by cells and barycentrics."""
        v = np.take(nodal, np.take(self.nodes, cells, axis=0))
        return v[:, 0] * lam[:, 0] + v[:, 1] * lam[:, 1] + v[:, 2] * lam[:, 2] + v[:, 3] * lam[:, 3]

    def sample_p1(self, nodal: np.ndarray, cells: np.ndarray, lam: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Value (n,) and cellwise gradient (n, 3) of a nodal (P1) field, sharing the gathers."""
        v = np.take(nodal, np.take(self.nodes, cells, axis=0))
        val = v[:, 0] * lam[:, 0] + v[:, 1] * lam[:, 1] + v[:, 2] * lam[:, 2] + v[:, 3] * lam[:, 3]
        return val, self._gradient(v, cells)

    def gradient(self, nodal: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Cellwise-constant gradient (n, 3) of a nodal (P1) field in ``cells``."""
        return self._gradient(np.take(nodal, np.take(self.nodes, cells, axis=0)), cells)

    def _gradient(self, v: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Gradient (n, 3) in ``cells`` of the P1 field with vertex values ``v`` (n, 4)."""
        a = np.take(self.affine, cells, axis=0)
        du1, du2, du3 = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], v[:, 3] - v[:, 0]
        g = np.empty((len(cells), 3))
        for k in range(3):
            g[:, k] = du1 * a[:, 3 + k] + du2 * a[:, 6 + k] + du3 * a[:, 9 + k]
        return g
