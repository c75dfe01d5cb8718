"""Weighted averages over a physical radius of values at points spread over ranks.

Used on surface samples (one point per facet, weight its area): the average of a
facet value over the facets whose midpoints lie within ``radius`` of each facet's
midpoint. The points are few (a surface), so every rank holds all of them once
(an allgather at set-up), and each call allgathers only the values.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI
from scipy.sparse import csr_matrix
from scipy.spatial import cKDTree

__all__ = ["BallAverage"]


class BallAverage:
    """``a_i = Σ_{|x_j − x_i| ≤ r} w_j v_j / Σ_{|x_j − x_i| ≤ r} w_j`` for this rank's points.

    Collective (construction and calls).

    Args:
        points: This rank's points, shape (n, 3) (each point on one rank only).
        weights: Their weights (> 0), shape (n,).
        radius: Averaging radius (same length unit as ``points``); 0 returns the
            values unchanged.
        comm: The communicator the points are spread over.
    """

    def __init__(self, points: np.ndarray, weights: np.ndarray, radius: float, comm: MPI.Comm):
        self.comm, self.radius = comm, float(radius)
        self.n = len(points)
        self.matrix: csr_matrix | None = None
        if self.radius <= 0:
            return
        pts = np.asarray(points, dtype=float).reshape(-1, 3)
        all_pts = np.concatenate(comm.allgather(pts)).reshape(-1, 3)
        all_w = np.concatenate(comm.allgather(np.asarray(weights, dtype=float)))
        if len(all_pts) == 0:
            return
        near = cKDTree(all_pts).query_ball_point(pts, self.radius)
        rows = np.repeat(np.arange(self.n), [len(j) for j in near])
        cols = np.concatenate([np.asarray(j, dtype=np.int64) for j in near] or [np.zeros(0, int)])
        vals = all_w[cols]
        sums = np.bincount(rows, weights=vals, minlength=self.n)
        self.matrix = csr_matrix(
            (vals / sums[rows], (rows, cols)), shape=(self.n, len(all_pts))
        )

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """The averages at this rank's points of ``values`` (this rank's entries)."""
        values = np.asarray(values, dtype=float)
        if self.radius <= 0:
            return values.copy()
        all_v = np.concatenate(self.comm.allgather(values))
        if self.matrix is None:
            return values.copy()
        return self.matrix @ all_v
