"""Fast point location on a distributed tetrahedral mesh.

Growth cones move a small distance per step, so the cell that holds a cone
after a step is almost always its previous cell or a face neighbour. The
:class:`Locator` (built on the per-cell arrays of
:class:`~scaffoldfem.fem.cells.LocalCells`) *walks*: from each point's previous
cell it steps across the face with the most negative barycentric coordinate until
all four are non-negative (Lawson's visibility walk). The walk is vectorised over
all unresolved points per iteration; points whose walk fails fall back to a
``dolfinx.geometry`` bounding-box tree whose candidates are checked exactly here
(DOLFINx 0.11 reports a point outside a tetrahedron but inside its bounding box as
a hit, dolfinx issue #4450).

A Locator also evaluates P1/DG0 fields at the points it finds (the methods of
:class:`~scaffoldfem.fem.cell_fields.CellFields`). :func:`alltoallv_rows`, the
exchange that moves walks between ranks, is re-exported from
:mod:`scaffoldfem.fem.exchange`.
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

import scaffoldfem  # noqa: F401
import dolfinx
from dolfinx import mesh as dmesh
from scaffoldfem.fem.cell_fields import CellFields
from scaffoldfem.fem.exchange import alltoallv_rows

__all__ = ["BLOCKED", "EXTERIOR", "FOUND", "LEFT", "LOST", "Locator", "WalkResult",
           "alltoallv_rows"]

#: Walk outcome codes.
FOUND, EXTERIOR, BLOCKED, LEFT, LOST = 0, 1, 2, 3, 4


@dataclass
class WalkResult:
    """Outcome of :meth:`Locator.walk` per point.

    Attributes:
        status: FOUND, EXTERIOR (crossed a face on the domain boundary),
            BLOCKED (next cell is blocked), LEFT (next cell is not on this
            rank; ``cell`` is the last local cell, a ghost) or LOST (no
            convergence within the iteration limit).
        cell: Containing cell (FOUND) or the last cell visited.
        face: Face of ``cell`` through which the walk wanted to leave (-1 if FOUND).
        lam: Barycentric coordinates in ``cell`` (n, 4).
    """

    status: np.ndarray
    cell: np.ndarray
    face: np.ndarray
    lam: np.ndarray


class Locator(CellFields):
    """Point location by barycentric walk on the local part of a tetrahedral mesh.

    Args:
        mesh: Affine (P1-geometry) tetrahedral mesh, ghosted or not. A walk that
            leaves the rank's cells reports the last local cell and face
            (status LEFT); :attr:`remote_rank` / :attr:`remote_facet` (owned cells
            of unghosted meshes) or :attr:`owner` (ghost cells) say where to
            continue it.
        eps: Tolerance on barycentric coordinates for containment.
        max_iter: Walk iterations before a point falls back to the tree.
    """

    def __init__(self, mesh: dmesh.Mesh, eps: float = 1e-10, max_iter: int = 200):
        super().__init__(mesh)
        self.eps, self.max_iter = eps, max_iter
        self._tree = None
        self._owned_tree = None

    @staticmethod
    def _argmin4(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index and value of the smallest of four columns (first on ties)."""
        j = lam.argmin(axis=1)
        return j.astype(np.int8), np.take_along_axis(lam, j[:, None], axis=1)[:, 0]

    # -- walk ----------------------------------------------------------------
    def walk(self, x: np.ndarray, cells: np.ndarray, blocked: np.ndarray | None = None
             ) -> WalkResult:
        """Walk from ``cells`` towards the points ``x`` through face neighbours.

        Args:
            x: Points (n, 3).
            cells: Start cells (n,), local indices.
            blocked: Optional boolean per local cell; a walk does not enter a
                blocked cell (status BLOCKED at the face it wanted to cross).

        Returns:
            A :class:`WalkResult`.
        """
        n = len(x)
        cur = np.asarray(cells, dtype=np.int32).copy()
        status = np.full(n, LOST, dtype=np.int8)
        face = np.full(n, -1, dtype=np.int8)
        lam_out = np.empty((n, 4))
        act = None  # None: all points (saves the gathers in the first iteration)
        for _ in range(self.max_iter):
            if act is None:
                c, lam = cur, self.barycentric(cur, x)
                lam_out[:] = lam
            else:
                if act.size == 0:
                    break
                c = cur[act]
                lam = self.barycentric(c, x[act])
                lam_out[act] = lam
            j, m = self._argmin4(lam)
            out = m < -self.eps
            idx = np.arange(n) if act is None else act
            status[idx[~out]] = FOUND
            act, j, c = idx[out], j[out], c[out]
            face[act] = j
            nb = self.neighbours[c, j]
            edge = nb < 0
            if edge.any():
                ext = self.exterior[c[edge], j[edge]]
                status[act[edge]] = np.where(ext, EXTERIOR, LEFT)
            go = ~edge
            if blocked is not None:
                blk = go.copy()
                blk[go] = blocked[nb[go]]
                status[act[blk]] = BLOCKED
                go &= ~blk
            act, nb = act[go], nb[go]
            cur[act] = nb
        face[status == FOUND] = -1
        return WalkResult(status, cur, face, lam_out)

    # -- tree fallback ------------------------------------------------------
    def _padding(self) -> float:
        """Box padding matching the barycentric tolerance: a point that the exact
        test accepts (λ >= -eps) may lie ~eps·h outside its cell's bounding box."""
        if len(self.nodes) == 0:
            return 0.0
        xc = self.x[self.nodes]
        h = float(np.max(np.linalg.norm(xc - xc[:, :1, :], axis=2)))
        return 4.0 * self.eps * h

    def _trees(self, owned_only: bool):
        pad = self._padding()
        if owned_only:
            if self._owned_tree is None:
                ents = np.arange(self.num_owned, dtype=np.int32)
                self._owned_tree = dolfinx.geometry.bb_tree(self.mesh, 3, entities=ents,
                                                            padding=pad)
            return self._owned_tree
        if self._tree is None:
            ents = np.arange(self.num_cells, dtype=np.int32)
            self._tree = dolfinx.geometry.bb_tree(self.mesh, 3, entities=ents, padding=pad)
        return self._tree

    def locate_tree(self, x: np.ndarray, owned_only: bool = False,
                    blocked: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Locate points with the bounding-box tree and an exact barycentric check.

        Args:
            x: Points (n, 3).
            owned_only: Search owned cells only.
            blocked: Optional boolean per local cell; blocked cells are skipped.

        Returns:
            ``(cells, score)``: for each point the candidate cell with the largest
            minimum barycentric coordinate (-1 where no candidate) and that
            score (-inf where none). A point is inside if ``score >= -eps``.
        """
        n = len(x)
        cells = np.full(n, -1, dtype=np.int32)
        score = np.full(n, -np.inf)
        if n == 0:
            return cells, score
        adj = dolfinx.geometry.compute_collisions_points(self._trees(owned_only),
                                                         np.ascontiguousarray(x))
        cand = np.asarray(adj.array, dtype=np.int32)
        if cand.size == 0:
            return cells, score
        pid = np.repeat(np.arange(n), np.diff(adj.offsets))
        if blocked is not None:
            keep = ~blocked[cand]
            cand, pid = cand[keep], pid[keep]
        lam = self.barycentric(cand, x[pid])
        s = np.minimum(np.minimum(lam[:, 0], lam[:, 1]), np.minimum(lam[:, 2], lam[:, 3]))
        # Best candidate per point: sort by (point, score, -input cell index) and keep the last,
        # so that ties are broken by the input cell index, not by the partition.
        order = np.lexsort((-self.orig_cell[cand], s, pid))
        last = np.r_[pid[order][1:] != pid[order][:-1], True]
        best = order[last]
        cells[pid[best]] = cand[best]
        score[pid[best]] = s[best]
        return cells, score

    def locate(self, x: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
        """Local cell (owned or ghost) containing each point, -1 if none.

        Walks from ``cells`` when given, then falls back to the tree for points
        whose walk failed.
        """
        n = len(x)
        out = np.full(n, -1, dtype=np.int32)
        todo = np.arange(n)
        if cells is not None:
            ok = np.asarray(cells) >= 0
            res = self.walk(x[ok], np.asarray(cells)[ok])
            found = res.status == FOUND
            out[todo[ok][found]] = res.cell[found]
            todo = np.flatnonzero(out < 0)
        if todo.size:
            c, s = self.locate_tree(x[todo])
            hit = s >= -self.eps
            out[todo[hit]] = c[hit]
        return out

    def locate_global(self, x: np.ndarray, blocked: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Collective: owning rank and (on that rank) owned cell of each point.

        Every rank passes the same points. The owner is the rank whose owned
        cell contains the point with the largest minimum barycentric
        coordinate (lowest rank on ties), so the answer does not depend on the
        partition except for points on a face shared between ranks.

        Args:
            x: Points (n, 3).
            blocked: Optional boolean per local cell; blocked cells are skipped.

        Returns:
            ``(owner, cell)``: owner rank per point (-1 if outside the mesh) and
            the local cell on this rank (-1 where this rank is not the owner).
        """
        c, s = self.locate_tree(np.asarray(x, dtype=np.float64), owned_only=True,
                                blocked=blocked)
        s = np.where(s >= -self.eps, s, -np.inf)
        smax = np.empty_like(s)
        self.comm.Allreduce(s, smax, op=MPI.MAX)
        size = self.comm.size
        mine = np.where((s == smax) & np.isfinite(s), self.comm.rank, size).astype(np.int32)
        owner = np.empty_like(mine)
        self.comm.Allreduce(mine, owner, op=MPI.MIN)
        owner[owner == size] = -1
        cell = np.where(owner == self.comm.rank, c, -1).astype(np.int32)
        return owner, cell
