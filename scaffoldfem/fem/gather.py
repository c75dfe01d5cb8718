"""Rank-0 views of a distributed mesh, keyed by input (file) indices.

Nodes are identified by ``geometry.input_global_indices`` and cells by
``topology.original_cell_index``: both come from the mesh file, so they are the
same whatever the number of ranks. That makes gathered pictures and checkpoints
independent of the partition (a run checkpointed on 2 ranks resumes on 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dolfinx import fem

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.fem.compat import geometry_dofmap

__all__ = ["MeshGather", "node_to_dof_map"]


def node_to_dof_map(mesh: Any, V: fem.FunctionSpace) -> np.ndarray:
    """P1 dof of every local geometry node (P1 geometry; same reference order per cell)."""
    gmap = geometry_dofmap(mesh)
    out = np.empty(len(mesh.geometry.x), dtype=np.int64)
    out[gmap.ravel()] = V.dofmap.list.ravel()
    return out


class MeshGather:
    """Gather P1/DG0 data of a mesh to rank 0 as one deduplicated grid.

    Args:
        mesh: Distributed tetrahedral mesh (P1 geometry).
        V: The scalar P1 space whose functions will be gathered.
        Q: The DG0 space whose functions will be gathered.
    """

    def __init__(self, mesh: Any, V: fem.FunctionSpace, Q: fem.FunctionSpace):
        self.comm = mesh.comm
        tdim = mesh.topology.dim
        self.n_owned = mesh.topology.index_map(tdim).size_local
        geo = mesh.geometry
        gdofs = geometry_dofmap(mesh)[: self.n_owned]
        self.node_to_dof = node_to_dof_map(mesh, V)
        self.qdof = Q.dofmap.list[: self.n_owned, 0]
        self.gid = np.asarray(geo.input_global_indices, dtype=np.int64)
        self.cell_gid = np.asarray(
            mesh.topology.original_cell_index[: self.n_owned], dtype=np.int64
        )
        parts = self.comm.gather((self.gid, geo.x, self.gid[gdofs], self.cell_gid), root=0)
        if self.comm.rank == 0:
            gids = np.concatenate([p[0] for p in parts])
            self.uniq, self.first = np.unique(gids, return_index=True)
            self.points = np.concatenate([p[1] for p in parts])[self.first]
            cells = np.concatenate([p[2] for p in parts])
            self.cells = np.searchsorted(self.uniq, cells)
            self.cell_ids = np.concatenate([p[3] for p in parts])

    def point_values(self, f: fem.Function) -> np.ndarray | None:
        """Values of scalar P1 ``f`` at the gathered points (rank 0; None elsewhere)."""
        vals = self.comm.gather(f.x.array[self.node_to_dof], root=0)
        return np.concatenate(vals)[self.first] if self.comm.rank == 0 else None

    def cell_values(self, f: fem.Function) -> np.ndarray | None:
        """Values of DG0 ``f`` on the gathered cells (rank 0; None elsewhere)."""
        vals = self.comm.gather(f.x.array[self.qdof], root=0)
        return np.concatenate(vals) if self.comm.rank == 0 else None

    def cell_array(self, a: np.ndarray) -> np.ndarray | None:
        """Per-local-cell NumPy values (owned first) gathered like :meth:`cell_values`."""
        vals = self.comm.gather(np.asarray(a)[: self.n_owned], root=0)
        return np.concatenate(vals) if self.comm.rank == 0 else None

    def grid(self, point_data: dict[str, np.ndarray], cell_data: dict[str, np.ndarray]):
        """A PyVista grid of the gathered mesh (call on rank 0)."""
        import pyvista as pv

        g = pv.UnstructuredGrid({pv.CellType.TETRA: self.cells}, self.points)
        for k, v in point_data.items():
            g.point_data[k] = np.asarray(v, dtype=np.float32)
        for k, v in cell_data.items():
            g.cell_data[k] = v.astype(np.int32) if v.dtype.kind in "iu" else v.astype(np.float32)
        return g
