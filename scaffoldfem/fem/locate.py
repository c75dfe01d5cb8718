"""Fast point location and field sampling on a distributed tetrahedral mesh.

Growth cones move a small distance per step, so the cell that holds a cone
after a step is almost always its previous cell or a face neighbour. The
:class:`Locator` precomputes, per local cell (owned and ghost), the inverse
affine map to barycentric coordinates and the neighbour across each face, and
then *walks*: from each point's previous cell it steps across the face with
the most negative barycentric coordinate until all four are non-negative
(Lawson's visibility walk). The walk is vectorised over all unresolved points
per iteration; points whose walk fails fall back to a ``dolfinx.geometry``
bounding-box tree whose candidates are checked exactly here (DOLFINx 0.11
reports a point outside a tetrahedron but inside its bounding box as a hit,
dolfinx issue #4450).

Every arithmetic step is elementwise (no reductions whose order could depend
on array length) so that the same point in the same global cell gives
bit-identical results whatever the partition.

Face ``j`` of a cell is the face opposite its local vertex ``j``; barycentric
coordinate ``j`` vanishes on it.
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

import scaffoldfem  # noqa: F401
import dolfinx
from dolfinx import fem, la
from dolfinx import mesh as dmesh
from scaffoldfem.fem.compat import geometry_dofmap

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


class Locator:
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
        if mesh.topology.cell_type != dmesh.CellType.tetrahedron:
            raise ValueError("Locator needs a tetrahedral mesh")
        cmaps = getattr(mesh.geometry, "cmaps", None)
        cmap = cmaps[0] if isinstance(cmaps, list | tuple) else mesh.geometry.cmap
        if cmap.degree != 1:
            raise ValueError("Locator needs an affine (degree-1) geometry")
        self.mesh, self.comm = mesh, mesh.comm
        self.eps, self.max_iter = eps, max_iter
        imap = mesh.topology.index_map(3)
        self.num_owned = imap.size_local
        self.num_cells = imap.size_local + imap.num_ghosts
        self.nodes = geometry_dofmap(mesh)[: self.num_cells].astype(np.int32)
        self.x = np.ascontiguousarray(mesh.geometry.x[:, :3], dtype=np.float64)
        self._build_affine()
        self._build_neighbours()
        self.owner = np.full(self.num_cells, self.comm.rank, dtype=np.int32)
        self.owner[self.num_owned:] = imap.owners
        self.global_cell = imap.local_to_global(np.arange(self.num_cells, dtype=np.int32))
        # Input index of each cell: the same on any number of ranks (tie-breaks).
        self.orig_cell = np.asarray(mesh.topology.original_cell_index, dtype=np.int64)[
            : self.num_cells]
        self._imap = imap
        self._tree = None
        self._owned_tree = None
        self._volume = None

    # -- construction -----------------------------------------------------
    def _build_affine(self) -> None:
        """Per cell: origin x0 and J^{-1} (rows = gradients of lambda_1..3)."""
        p = self.x[self.nodes]  # (nc, 4, 3)
        x0 = p[:, 0]
        a, b, c = (p[:, 1] - x0), (p[:, 2] - x0), (p[:, 3] - x0)  # columns of J
        # Inverse by cofactors: rows of J^{-1} are (b x c, c x a, a x b) / det.
        r0, r1, r2 = np.cross(b, c), np.cross(c, a), np.cross(a, b)
        det = a[:, 0] * r0[:, 0] + a[:, 1] * r0[:, 1] + a[:, 2] * r0[:, 2]
        if np.any(det == 0.0):
            raise ValueError("degenerate tetrahedra in mesh")
        inv = 1.0 / det
        aff = np.empty((len(p), 12))
        aff[:, 0:3] = x0
        aff[:, 3:6] = r0 * inv[:, None]
        aff[:, 6:9] = r1 * inv[:, None]
        aff[:, 9:12] = r2 * inv[:, None]
        self.affine = aff
        self.abs_det = np.abs(det)

    def _build_neighbours(self) -> None:
        """Neighbour across each face by matching sorted node triples; exterior flags."""
        nc = self.num_cells
        faces = np.empty((nc, 4, 3), dtype=np.int64)
        for j in range(4):
            faces[:, j] = self.nodes[:, [k for k in range(4) if k != j]]
        faces = np.sort(faces.reshape(-1, 3), axis=1)
        order = np.lexsort((faces[:, 2], faces[:, 1], faces[:, 0]))
        fs = faces[order]
        same = np.all(fs[1:] == fs[:-1], axis=1)
        i = np.flatnonzero(same)
        nb = np.full(4 * nc, -1, dtype=np.int32)
        a, b = order[i], order[i + 1]
        nb[a], nb[b] = b // 4, a // 4
        self.neighbours = nb.reshape(nc, 4)
        # A face without a local neighbour is on the domain boundary if it is
        # an exterior facet; otherwise it borders another rank's cells.
        top = self.mesh.topology
        top.create_connectivity(3, 2)
        top.create_connectivity(2, 3)
        fmap = top.index_map(2)
        ext = la.vector(fmap, 1, dtype=np.int32)
        ext.array[:] = 0
        ext.array[dmesh.exterior_facet_indices(top)] = 1
        ext.scatter_forward()
        c2f = top.connectivity(3, 2).array.reshape(-1, 4)[:nc]
        self.exterior = (self.neighbours < 0) & (ext.array[c2f] == 1)
        # Without a ghost layer an owned cell's face can border another rank's cell:
        # record that rank and the facet's global index, so that a walk leaving
        # through it can be continued there (from the cell across that facet).
        self.remote_rank = np.full((nc, 4), -1, dtype=np.int32)
        self.remote_facet = np.full((nc, 4), -1, dtype=np.int64)
        iface = (self.neighbours < 0) & ~self.exterior
        iface[self.num_owned:] = False  # a ghost cell's walk goes to the ghost's owner
        other = la.vector(fmap, 1, dtype=np.int32)
        other.array[:] = 0
        other.array[fmap.size_local:] = self.comm.rank + 1
        other.scatter_reverse(la.InsertMode.add)
        f = c2f[iface]
        nown = fmap.size_local
        rank = np.where(f < nown, other.array[f] - 1,
                        fmap.owners[np.maximum(f - nown, 0)] if fmap.num_ghosts else -1)
        if np.any((rank < 0) | (rank >= self.comm.size) | (rank == self.comm.rank)):
            raise RuntimeError("could not find the rank across an interprocess facet")
        self.remote_rank[iface] = rank
        self.remote_facet[iface] = fmap.local_to_global(f.astype(np.int32))
        self._fmap = fmap
        self._f2c = top.connectivity(2, 3)

    # -- barycentric coordinates -----------------------------------------
    def barycentric(self, cells: npt.ArrayLike, x: np.ndarray) -> np.ndarray:
        """Barycentric coordinates (n, 4) of points ``x`` (n, 3) in ``cells`` (n,)."""
        a = np.take(self.affine, cells, axis=0)  # np.take: ~5x faster than fancy indexing
        d0, d1, d2 = x[:, 0] - a[:, 0], x[:, 1] - a[:, 1], x[:, 2] - a[:, 2]
        lam = np.empty((len(a), 4))
        lam[:, 1] = a[:, 3] * d0 + a[:, 4] * d1 + a[:, 5] * d2
        lam[:, 2] = a[:, 6] * d0 + a[:, 7] * d1 + a[:, 8] * d2
        lam[:, 3] = a[:, 9] * d0 + a[:, 10] * d1 + a[:, 11] * d2
        lam[:, 0] = 1.0 - lam[:, 1] - lam[:, 2] - lam[:, 3]
        return lam

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
        from mpi4py import MPI

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

    # -- geometry helpers -----------------------------------------------
    def face_normal(self, cells: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Outward unit normals (n, 3) of face ``faces`` of ``cells``."""
        a = np.take(self.affine, cells, axis=0)
        g = np.empty((len(a), 3))
        j = np.asarray(faces)
        rows = (a[:, 3:6], a[:, 6:9], a[:, 9:12])
        g0 = -(rows[0] + rows[1] + rows[2])
        g[:] = g0
        for k in (1, 2, 3):
            sel = j == k
            g[sel] = rows[k - 1][sel]
        # lambda_j decreases outwards through face j.
        g = -g
        return g / np.sqrt(g[:, 0] ** 2 + g[:, 1] ** 2 + g[:, 2] ** 2)[:, None]

    def midpoints(self, cells: np.ndarray | None = None) -> np.ndarray:
        """Cell centroids (of all local cells by default)."""
        nodes = self.nodes if cells is None else self.nodes[cells]
        p = self.x[nodes]
        return 0.25 * (p[:, 0] + p[:, 1] + p[:, 2] + p[:, 3])

    @property
    def volumes(self) -> np.ndarray:
        """Volume of each local cell."""
        if self._volume is None:
            self._volume = self.abs_det / 6.0
        return self._volume

    def owned_from_input_index(self, orig: np.ndarray) -> np.ndarray:
        """Owned local cell with each input (original) cell index, -1 if not owned here."""
        own = self.orig_cell[: self.num_owned]
        order = np.argsort(own)
        orig = np.asarray(orig, dtype=np.int64)
        pos = np.clip(np.searchsorted(own, orig, sorter=order), 0, max(len(own) - 1, 0))
        out = np.full(len(orig), -1, dtype=np.int32)
        if len(own):
            hit = own[order[pos]] == orig
            out[hit] = order[pos[hit]]
        return out

    def cell_across(self, gfacets: np.ndarray) -> np.ndarray:
        """Owned cell attached to each interprocess facet (global facet indices)."""
        lf = self._fmap.global_to_local(np.asarray(gfacets, dtype=np.int64))
        off, arr = self._f2c.offsets, self._f2c.array
        cells = arr[off[lf]]
        if np.any(lf < 0) or np.any(off[lf + 1] - off[lf] != 1) or np.any(cells >= self.num_owned):
            raise RuntimeError("interprocess facet without a single owned cell on this rank")
        return cells.astype(np.int32)

    def global_to_local(self, gcells: np.ndarray) -> np.ndarray:
        """Local index of global cell numbers (-1 if not on this rank)."""
        return self._imap.global_to_local(np.asarray(gcells, dtype=np.int64))

    # -- fields ------------------------------------------------------------
    def nodal_values(self, u: fem.Function) -> np.ndarray:
        """Values of a P1 function at the geometry nodes, shape (nodes,) or (nodes, bs).

        Requires the P1 dof layout to follow the cell's geometry node order
        (true for Lagrange P1 on a P1 mesh; checked once per space).
        """
        V = u.function_space
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
            perms[key] = (V, perm)
        perm = perms[key][1]
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

    @property
    def scale(self) -> float:
        """A length scale of the local mesh (bounding-box diagonal)."""
        return float(np.linalg.norm(self.x.max(0) - self.x.min(0))) if len(self.x) else 1.0

    def interpolate(self, nodal: np.ndarray, cells: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """Value of a nodal (P1) field at points given by cells and barycentrics."""
        v = np.take(nodal, np.take(self.nodes, cells, axis=0))
        return v[:, 0] * lam[:, 0] + v[:, 1] * lam[:, 1] + v[:, 2] * lam[:, 2] + v[:, 3] * lam[:, 3]

    def sample_p1(self, nodal: np.ndarray, cells: np.ndarray, lam: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Value (n,) and cellwise gradient (n, 3) of a nodal (P1) field, sharing the gathers."""
        v = np.take(nodal, np.take(self.nodes, cells, axis=0))
        a = np.take(self.affine, cells, axis=0)
        val = v[:, 0] * lam[:, 0] + v[:, 1] * lam[:, 1] + v[:, 2] * lam[:, 2] + v[:, 3] * lam[:, 3]
        du1, du2, du3 = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], v[:, 3] - v[:, 0]
        g = np.empty((len(cells), 3))
        for k in range(3):
            g[:, k] = du1 * a[:, 3 + k] + du2 * a[:, 6 + k] + du3 * a[:, 9 + k]
        return val, g

    def gradient(self, nodal: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Cellwise-constant gradient (n, 3) of a nodal (P1) field in ``cells``."""
        v = np.take(nodal, np.take(self.nodes, cells, axis=0))
        a = np.take(self.affine, cells, axis=0)
        du1, du2, du3 = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], v[:, 3] - v[:, 0]
        g = np.empty((len(cells), 3))
        for k in range(3):
            g[:, k] = du1 * a[:, 3 + k] + du2 * a[:, 6 + k] + du3 * a[:, 9 + k]
        return g


def alltoallv_rows(comm, dest: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Send row ``i`` of a float64 table to rank ``dest[i]``; return the rows received.

    One ``Alltoall`` of counts and one ``Alltoallv`` of data; received rows are
    ordered by source rank, then by their order on the source.
    """
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    ncol = rows.shape[1]
    if comm.size == 1:
        return rows.copy()
    order = np.argsort(dest, kind="stable")
    rows = np.ascontiguousarray(rows[order])
    send = np.bincount(np.asarray(dest)[order], minlength=comm.size).astype(np.int64)
    recv = np.empty_like(send)
    comm.Alltoall(send, recv)
    out = np.empty((int(recv.sum()), ncol))
    sdispl = np.r_[0, np.cumsum(send)[:-1]] * ncol
    rdispl = np.r_[0, np.cumsum(recv)[:-1]] * ncol
    from mpi4py import MPI

    comm.Alltoallv([rows, send * ncol, sdispl, MPI.DOUBLE], [out, recv * ncol, rdispl, MPI.DOUBLE])
    return out
