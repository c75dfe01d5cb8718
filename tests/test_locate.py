"""Point location and sampling (scaffoldfem.fem.locate, .cells, .cell_fields, .exchange)
against brute force."""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

import numpy as np
import pytest

import scaffoldfem  # noqa: F401
import dolfinx
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from scaffoldfem.fem.exchange import alltoallv_rows
from scaffoldfem.fem.locate import EXTERIOR, FOUND, LEFT, Locator


def _box(comm, n=6, rotate=False, ghost=dmesh.GhostMode.shared_facet):
    msh = dmesh.create_box(comm, [[0, 0, 0], [1, 1, 1]], [n, n, n], dmesh.CellType.tetrahedron,
                           ghost_mode=ghost)
    if rotate:  # tilted box: cell bounding boxes stick out of the domain
        a = np.pi / 7
        R = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        msh.geometry.x[:] = msh.geometry.x @ R.T
    return msh


def _brute(loc: Locator, x: np.ndarray) -> np.ndarray:
    """Minimum barycentric coordinate of every point in every local cell (n, cells)."""
    out = np.empty((len(x), loc.num_cells))
    for i, p in enumerate(x):
        lam = loc.barycentric(np.arange(loc.num_cells), np.tile(p, (loc.num_cells, 1)))
        out[i] = lam.min(axis=1)
    return out


def _points_in_cells(loc, cells, rng):
    lam = rng.dirichlet(np.ones(4), len(cells))
    return np.einsum("ni,nij->nj", lam, loc.x[loc.nodes[cells]])


@pytest.mark.parametrize("ghost", [dmesh.GhostMode.shared_facet, dmesh.GhostMode.none])
def test_walk_finds_random_points(comm, ghost):
    """Points in random owned cells, walks from far-away owned start cells."""
    loc = Locator(_box(comm, ghost=ghost))
    rng = np.random.default_rng(3 + comm.rank)
    cells = rng.integers(0, loc.num_owned, 300)
    x = _points_in_cells(loc, cells, rng)
    start = rng.integers(0, loc.num_owned, 300).astype(np.int32)
    res = loc.walk(x, start)
    brute = _brute(loc, x)
    found = res.status == FOUND
    # Serially every walk succeeds; in parallel a walk may leave the rank's cells.
    assert np.all(found | (res.status == LEFT))
    if comm.size == 1:
        assert found.all()
    assert np.all(brute[np.flatnonzero(found), res.cell[found]] >= -loc.eps)
    # The located cell is the unique containing cell for generic points.
    assert np.array_equal(res.cell[found], cells[found])
    lam = res.lam[found]
    assert np.allclose(lam.sum(axis=1), 1.0) and lam.min() >= -loc.eps
    # locate() falls back to the tree for the walks that left
    c = loc.locate(x, start)
    assert np.array_equal(c, cells)
    # a walk that left did so through a face with a known continuation
    left = np.flatnonzero(res.status == LEFT)
    lc, lf = res.cell[left], res.face[left]
    ghost_cell = lc >= loc.num_owned
    assert np.all(loc.remote_rank[lc[~ghost_cell], lf[~ghost_cell]] >= 0)
    if ghost == dmesh.GhostMode.none:
        assert loc.num_cells == loc.num_owned
    # the owned cell across each interprocess facet is found from its global index
    cc, ff = np.nonzero(loc.remote_facet[: loc.num_owned] >= 0)
    inp = np.asarray(loc.mesh.geometry.input_global_indices)
    face_nodes = np.sort(inp[loc.nodes[cc][np.arange(4) != ff[:, None]].reshape(-1, 3)], axis=1)
    rows = np.column_stack([loc.remote_facet[cc, ff], face_nodes]).astype(float)
    got = alltoallv_rows(comm, loc.remote_rank[cc, ff], rows)
    across = loc.cell_across(got[:, 0].astype(np.int64))
    # the cell across the facet has the facet's three nodes (by input node index)
    mine = inp[loc.nodes[across]]
    assert all(set(g[1:].astype(np.int64)) <= set(m) for g, m in zip(got, mine, strict=True))
    assert comm.allreduce(len(got)) == (0 if comm.size == 1 or ghost != dmesh.GhostMode.none
                                        else comm.allreduce(len(cc)))


def test_points_near_faces_and_vertices(comm):
    """Points on faces / at vertices, nudged by +-1e-13 and +-1e-7 of a cell size."""
    loc = Locator(_box(comm, 5))
    rng = np.random.default_rng(11)
    cells = rng.integers(0, loc.num_owned, 200)
    p = loc.x[loc.nodes[cells]]
    lam = rng.dirichlet(np.ones(4), len(cells))
    lam[np.arange(100), rng.integers(0, 4, 100)] = 0.0  # on a face
    lam[:100] /= lam[:100].sum(axis=1, keepdims=True)
    lam[100:150] = np.eye(4)[rng.integers(0, 4, 50)]  # at a vertex
    x = np.einsum("ni,nij->nj", lam, p)
    for scale in (0.0, 1e-13, 1e-7):
        y = np.clip(x + scale * 0.2 * rng.normal(size=x.shape), 0.0, 1.0)
        c = loc.locate(y, rng.integers(0, loc.num_owned, len(y)).astype(np.int32))
        brute = _brute(loc, y).max(axis=1)
        inside_local = brute >= -loc.eps
        # every point inside some local cell is found, and the cell really contains it
        assert np.all(c[inside_local] >= 0)
        got = loc.barycentric(c[c >= 0], y[c >= 0]).min(axis=1)
        assert got.min() >= -loc.eps


def test_outside_points_and_bbox_false_hits(comm):
    """Points outside a tilted box: no cell, though bounding boxes contain them (#4450)."""
    msh = _box(comm, 4, rotate=True)
    loc = Locator(msh)
    a = np.pi / 7
    R = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rng = np.random.default_rng(5)
    # just outside the face x'=0 of the unrotated box, mapped into the tilted frame
    ref = np.column_stack([-rng.uniform(0.005, 0.05, 200), rng.uniform(0.05, 0.95, (200, 2))])
    x = ref @ R.T
    _cells, score = loc.locate_tree(x)
    assert np.all(score < -loc.eps)
    assert np.all(loc.locate(x) == -1)
    owner, cell = loc.locate_global(x)
    assert np.all(owner == -1) and np.all(cell == -1)
    # the bounding-box tree alone reports candidates for many of these points
    tree = dolfinx.geometry.bb_tree(msh, 3)
    cand = dolfinx.geometry.compute_collisions_points(tree, x)
    n_cand = comm.allreduce(int(np.sum(np.diff(cand.offsets) > 0)))
    assert n_cand > 0
    # a walk from an owned boundary cell towards them ends at the exterior
    bcells = np.flatnonzero(loc.exterior[: loc.num_owned].any(axis=1)).astype(np.int32)
    if bcells.size:
        res = loc.walk(x, np.resize(bcells, len(x)))
        assert np.all(np.isin(res.status, (EXTERIOR, LEFT)))
        if comm.size == 1:
            assert np.all(res.status == EXTERIOR)


def test_global_ownership_unique(comm):
    loc = Locator(_box(comm, 6))
    rng = np.random.default_rng(2)
    x = rng.uniform(-0.1, 1.1, (500, 3))
    owner, cell = loc.locate_global(x)
    inside = np.all((x >= 0) & (x <= 1), axis=1)
    assert np.array_equal(owner >= 0, inside)
    mine = (cell >= 0).astype(np.int32)
    count = np.zeros_like(mine)
    comm.Allreduce(mine, count)
    assert np.array_equal(count, inside.astype(np.int32))
    assert np.all(cell[cell >= 0] < loc.num_owned)
    assert loc.barycentric(cell[cell >= 0], x[cell >= 0]).min() >= -loc.eps


def test_sampling_p1_dg0_exact(comm):
    msh = _box(comm, 5)
    loc = Locator(msh)
    V = fem.functionspace(msh, ("Lagrange", 1))
    u = fem.Function(V)
    u.interpolate(lambda x: 2.0 + 3.0 * x[0] - 1.5 * x[1] + 0.25 * x[2])
    W = fem.functionspace(msh, ("DG", 0))
    e = fem.Function(W)
    e.interpolate(lambda x: 1.0 + x[0] + 10 * x[2])
    rng = np.random.default_rng(7)
    cells = rng.integers(0, loc.num_cells, 400).astype(np.int32)
    x = _points_in_cells(loc, cells, rng)
    lam = loc.barycentric(cells, x)
    nod = loc.nodal_values(u)
    val, grad = loc.sample_p1(nod, cells, lam)
    exact = 2.0 + 3.0 * x[:, 0] - 1.5 * x[:, 1] + 0.25 * x[:, 2]
    assert np.allclose(val, exact, atol=1e-12)
    assert np.allclose(loc.interpolate(nod, cells, lam), exact, atol=1e-12)
    assert np.allclose(grad, [3.0, -1.5, 0.25], atol=1e-10)
    mid = loc.midpoints(cells)
    assert np.allclose(loc.cell_values(e)[cells], 1.0 + mid[:, 0] + 10 * mid[:, 2])


def test_face_normals_point_outwards(comm):
    loc = Locator(_box(comm, 3))
    cells = np.repeat(np.arange(loc.num_cells), 4)
    faces = np.tile(np.arange(4), loc.num_cells)
    nrm = loc.face_normal(cells, faces)
    opp = loc.x[loc.nodes[cells, faces]]
    face_pt = loc.midpoints(cells) * 4 / 3 - opp / 3  # centroid of the face
    assert np.allclose(np.linalg.norm(nrm, axis=1), 1.0)
    assert np.all(np.einsum("ij,ij->i", nrm, face_pt - opp) > 0)
    ext = loc.exterior[cells, faces]  # exterior normals of the unit box are axis vectors
    assert np.allclose(np.abs(nrm[ext]).max(axis=1), 1.0)


@pytest.mark.parametrize("n", [4, 7])
def test_nodal_average_partition_independent(comm, n):
    """The DG0 -> nodes average is bit-identical on 1 and N ranks."""
    vals = []
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, (200, 3))
    for c in (MPI.COMM_SELF, comm):
        msh = _box(c, n)
        loc = Locator(msh)
        W = fem.functionspace(msh, ("DG", 0))
        e = fem.Function(W)
        e.interpolate(lambda x: np.where(x[0] < 0.5, 1.0, 0.1) + 0.37 * x[2] ** 2)
        nod = loc.cell_average_to_nodes(loc.cell_values(e))
        _owner, cell = loc.locate_global(pts)
        v = np.zeros(len(pts))
        ok = cell >= 0
        v[ok] = loc.interpolate(nod, cell[ok], loc.barycentric(cell[ok], pts[ok]))
        tot = np.zeros_like(v)
        c.Allreduce(v, tot)
        vals.append(tot)
        assert 0.1 <= nod.min() and nod.max() <= 1.0 + 0.37 + 1e-12
    assert np.array_equal(vals[0], vals[1])
