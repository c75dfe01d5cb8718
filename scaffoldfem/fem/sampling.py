"""Values of DOLFINx functions at fixed physical points, on every rank."""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

from typing import Any

import numpy as np
from mpi4py import MPI

import scaffoldfem  # noqa: F401
from dolfinx import fem, geometry

__all__ = ["PointSampler", "evaluate_at_points"]


class PointSampler:
    """Evaluate functions at fixed points, locating the points once.

    Every rank gets every value (NaN outside the mesh). Containment comes from
    ``compute_colliding_cells`` (exact distance test, unlike the bounding-box hits);
    each point is evaluated on one rank only (owned cells) and summed.

    Args:
        mesh: The mesh.
        points: Array (n, 3), identical on every rank.
    """

    def __init__(self, mesh: Any, points: np.ndarray):
        self.comm = mesh.comm
        self.points = np.ascontiguousarray(points, dtype=np.float64)
        tree = geometry.bb_tree(mesh, mesh.topology.dim)
        cand = geometry.compute_collisions_points(tree, self.points)
        cells = geometry.compute_colliding_cells(mesh, cand, self.points)
        n_owned = mesh.topology.index_map(mesh.topology.dim).size_local
        first = np.full(len(self.points), -1, dtype=np.int32)
        offs = cells.offsets
        arr = cells.array
        for i in range(len(self.points)):  # once per run, a few hundred points
            links = arr[offs[i] : offs[i + 1]]
            links = links[links < n_owned]
            if len(links):
                first[i] = links[0]
        # A point on a partition boundary belongs to the lowest rank that has it.
        have = np.where(first >= 0, self.comm.rank, self.comm.size).astype(np.int64)
        owner = np.empty_like(have)
        self.comm.Allreduce(have, owner, op=MPI.MIN)
        self.mine = np.flatnonzero((owner == self.comm.rank) & (first >= 0))
        self.cells = first[self.mine]
        self.found = owner < self.comm.size

    def __call__(self, f: Any) -> np.ndarray:
        """Values (n, value_size) of ``f`` at the points, on every rank."""
        vs = int(np.prod(f.ufl_shape)) if f.ufl_shape else 1
        local = np.zeros((len(self.points), vs))
        if len(self.mine):
            local[self.mine] = f.eval(self.points[self.mine], self.cells).reshape(-1, vs)
        out = np.empty_like(local)
        self.comm.Allreduce(local, out, op=MPI.SUM)
        out[~self.found] = np.nan
        return out


def evaluate_at_points(u: fem.Function, points: np.ndarray) -> np.ndarray:
    """Evaluate a function at physical points; every rank gets every value.

    A one-off :class:`PointSampler` (which locates the points once and can be kept
    for repeated sampling, as the run writer does).

    Args:
        u: A Function.
        points: Array (n, 3) or (n, 2) (z = 0) of the same points on every rank.

    Returns:
        Array (n, value_size); NaN for points outside the mesh.
    """
    pts = np.ascontiguousarray(np.atleast_2d(points), dtype=np.float64)
    if pts.shape[1] == 2:
        pts = np.c_[pts, np.zeros(len(pts))]
    return PointSampler(u.function_space.mesh, pts)(u)
