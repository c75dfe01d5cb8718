"""A P1 transport matrix with cellwise-constant coefficients, assembled in closed form.

Every transport step's matrix in scaffoldfem is, on linear tetrahedra,

    a(u, v) = ∫ w u v + (D ∇u)·∇v dx + ∫ σ u v dx_vertex

with ``w`` (mass weight, e.g. α/Δt + αk), ``D`` (scalar or 3×3 diffusivity) and
``σ`` (a lumped sink) constant on each cell. Its element matrix is exactly

    A_c = |c| (w_c (1 + δ_ij)/20 + ∇λ_iᵀ D_c ∇λ_j) + σ_c |c|/4 δ_ij,

so a refresh is one pass over the cells adding 16 numbers each at positions into
the CSR found once, instead of DOLFINx's generated kernel and its sparse
insertion. Measured on the medium cord mesh (2 ranks, ~200k cells per rank): see
docs/model.md §8.

:class:`CellwiseMatrix` takes the form and the three coefficients, refuses any
coefficient that is not a Constant or DG0 Function (then ``w``, ``D``, ``σ`` are
exact at the cell midpoint), and compares its matrix with DOLFINx's assembly of the
form at set-up: a term the closed form does not describe (advection, a facet term,
another quadrature) is a ValueError, not an approximation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI
from petsc4py import PETSc
from ufl.algorithms import extract_coefficients
from ufl.algorithms.analysis import extract_constants

from scaffoldfem.fem.compat import geometry_degree, geometry_dofmap
from scaffoldfem.fem.matrix import NativeMatrix

__all__ = ["CellCoefficients", "CellwiseMatrix", "is_cellwise", "operator_matrix"]

#: ``(w, D, σ)``: the mass weight, the diffusivity (scalar or 3×3) and the lumped
#: sink (None: none), UFL expressions of Constants and DG0 Functions.
CellCoefficients = tuple[Any, Any, Any]

#: Largest relative difference from DOLFINx's assembly accepted at set-up.
CHECK_RTOL = 1.0e-10


@numba.njit(cache=True, nogil=True)
def _assemble(pos, grad, vol, w, D, s, data):  # pragma: no cover (compiled)
    for c in range(pos.shape[0]):
        v = vol[c]
        m = w[c] * v / 20.0
        g = grad[c]
        Dc = D[c]
        # K = G D Gᵀ (4x4), G the barycentric gradients (4x3).
        gd = np.empty((4, 3))
        for i in range(4):
            for k in range(3):
                gd[i, k] = g[i, 0] * Dc[0, k] + g[i, 1] * Dc[1, k] + g[i, 2] * Dc[2, k]
        for i in range(4):
            for j in range(4):
                a = v * (gd[i, 0] * g[j, 0] + gd[i, 1] * g[j, 1] + gd[i, 2] * g[j, 2]) + m
                if i == j:
                    a += m + s[c] * v / 4.0
                data[pos[c, 4 * i + j]] += a


def _cell_geometry(msh: dmesh.Mesh, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Volumes and barycentric gradients (n, 4, 3) of the first ``n`` cells."""
    p = msh.geometry.x[geometry_dofmap(msh)[:n]]
    J = np.stack([p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]], axis=2)
    vol = np.abs(np.linalg.det(J)) / 6.0
    grad = np.empty((n, 4, 3))
    grad[:, 1:] = np.linalg.inv(J)  # rows: ∇λ_1..3 (λ_k = (J⁻¹(x − p_0))_k)
    grad[:, 0] = -grad[:, 1:].sum(axis=1)
    return vol, grad


def _positions(csr, dofs: np.ndarray) -> np.ndarray:
    """Index into ``csr.data`` of every (row, column) pair of each cell's 4 dofs."""
    ptr = np.asarray(csr.indptr, dtype=np.int64)
    cols = np.asarray(csr.indices, dtype=np.int64)
    ncol = int(cols.max(initial=0)) + 1
    ncol = max(ncol, int(dofs.max(initial=0)) + 1)
    rows = np.repeat(np.arange(len(ptr) - 1, dtype=np.int64), np.diff(ptr))
    keys = rows * ncol + cols[: len(rows)]
    # DOLFINx sorts each row's columns: then the keys are sorted already.
    order = (np.arange(len(keys)) if np.all(keys[1:] > keys[:-1])
             else np.argsort(keys, kind="stable"))
    want = (dofs[:, :, None].astype(np.int64) * ncol + dofs[:, None, :]).reshape(len(dofs), 16)
    at = np.searchsorted(keys[order], want)
    at = np.minimum(at, len(order) - 1)
    pos = order[at]
    if not np.array_equal(keys[pos], want):
        raise ValueError("the matrix's sparsity lacks a cell's dof pair")
    return np.ascontiguousarray(pos)


class CellwiseMatrix(NativeMatrix):
    """A :class:`~scaffoldfem.fem.matrix.NativeMatrix` whose :meth:`assemble` is the
    closed form above (same CSR, same PETSc matrix, same Dirichlet rows).

    Args:
        form: The compiled bilinear form: the reference it is checked against.
        V: Its (trial and test) space: scalar P1 on affine tetrahedra.
        coefficients: ``(w, D, σ)`` (:data:`CellCoefficients`).
        bcs: The Dirichlet conditions of the check (those of later calls may differ
            only as the form's would).

    Raises:
        ValueError: For another space or cell, a coefficient that varies in a cell, or
            a form that differs from the closed form at set-up.
    """

    def __init__(self, form: fem.Form, V: fem.FunctionSpace, coefficients: CellCoefficients,
                 bcs: Sequence[fem.DirichletBC] = ()):
        super().__init__(form)
        msh = V.mesh
        if (msh.topology.cell_type
                != dmesh.CellType.tetrahedron or geometry_degree(msh) != 1
                or V.dofmap.index_map_bs != 1 or V.dofmap.dof_layout.num_dofs != 4):
            raise ValueError("the closed-form matrix needs scalar P1 on affine tetrahedra")
        w, D, s = coefficients
        if not is_cellwise(w, D, s):
            raise ValueError("the closed-form matrix needs coefficients that are constant "
                             "on each cell (Constants and DG0 Functions)")
        n = msh.topology.index_map(msh.topology.dim).size_local
        dofs = np.ascontiguousarray(V.dofmap.list[:n], dtype=np.int32)
        self._vol, self._grad = _cell_geometry(msh, n)
        self._pos = _positions(self.csr, dofs)
        self._ncells = n
        self._bc_key: tuple = ()
        self._bc_zero = self._bc_diag = np.zeros(0, dtype=np.int64)
        Dm = D if len(ufl.shape(D)) == 2 else D * ufl.Identity(3)
        self._items = [w, *(Dm[i, j] for i in range(3) for j in range(3)),
                       s if s is not None else 0.0]
        self._funcs = [f for e in self._items for f in extract_coefficients(ufl.as_ufl(e))]
        self._consts = [c for e in self._items for c in extract_constants(ufl.as_ufl(e))]
        self._cells = {id(f): np.asarray(f.function_space.dofmap.list[:n, 0]) for f in self._funcs}
        self._check(bcs)

    def _values(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """w, D (n, 3, 3) and σ of the owned cells, evaluated now: UFL's own point
        evaluation with each DG0 Function's cell values as an array (the coefficients
        are constant on each cell, so the midpoint is any point)."""
        at = {f: f.x.array[self._cells[id(f)]] for f in self._funcs}
        at.update({c: (float(c.value) if np.ndim(c.value) == 0 else np.asarray(c.value))
                   for c in self._consts})
        n = self._ncells
        v = np.empty((11, n))
        for k, e in enumerate(self._items):
            v[k] = ufl.as_ufl(e)((0.0, 0.0, 0.0), at)
        return v[0], np.ascontiguousarray(v[1:10].T.reshape(n, 3, 3)), v[10]

    def assemble(self, bcs: Sequence[fem.DirichletBC] = ()):
        """Collective: assemble in closed form (Dirichlet rows and columns zeroed, unit
        diagonal) into :attr:`mat` and return it."""
        data = self.csr.data
        data[:] = 0.0
        w, D, s = self._values()
        _assemble(self._pos, self._grad, self._vol, w, D, s, data)
        if bcs:
            self._apply_bcs(bcs, data)
        self.csr.scatter_reverse()
        self.mat.setValuesCOO(self.csr.data[: self._n], addv=PETSc.InsertMode.INSERT_VALUES)
        return self.mat

    def _apply_bcs(self, bcs: Sequence[fem.DirichletBC], data: np.ndarray) -> None:
        """Zero the rows and columns of the constrained dofs; unit owned diagonals (as
        DOLFINx's ``assemble_matrix`` and ``insert_diagonal``)."""
        key = tuple(id(bc) for bc in bcs)
        if key != self._bc_key:  # the entries to zero and the diagonals, found once
            ptr = np.asarray(self.csr.indptr, dtype=np.int64)
            cols = np.asarray(self.csr.indices)
            nloc = len(ptr) - 1
            # Columns: the rows' local dofs first, then the extra ghost columns.
            fixed = np.zeros(max(nloc, int(cols.max(initial=0)) + 1), dtype=bool)
            owned = []
            for bc in bcs:
                dofs, n_owned = bc.dof_indices()
                fixed[dofs] = True
                owned.append(dofs[:n_owned])
            rows = np.repeat(np.arange(nloc), np.diff(ptr))
            self._bc_zero = np.flatnonzero(fixed[rows] | fixed[cols[: len(rows)]])
            r = np.unique(np.concatenate(owned)).astype(np.int32)
            self._bc_diag = _positions(self.csr, np.repeat(r[:, None], 4, axis=1))[:, 0]
            self._bc_key = key
        data[self._bc_zero] = 0.0
        data[self._bc_diag] = 1.0

    def _check(self, bcs: Sequence[fem.DirichletBC]) -> None:
        ref = NativeMatrix.assemble(self, bcs).copy()
        mine = self.assemble(bcs)
        comm = self.form.mesh.comm
        scale = ref.norm(2)  # PETSc NORM_INFINITY = 3; Frobenius is fine for a ratio
        mine.axpy(-1.0, ref)
        err = mine.norm(2)
        ref.destroy()
        rel = err / max(scale, 1e-300)
        rel = comm.allreduce(rel, op=MPI.MAX)
        self.assemble(bcs)
        if not rel <= CHECK_RTOL:
            raise ValueError("the bilinear form is not the closed-form P1 transport "
                             f"operator given for it (relative difference {rel:.1e})")


def operator_matrix(form: fem.Form, V: fem.FunctionSpace, coefficients: CellCoefficients | None,
                    bcs: Sequence[fem.DirichletBC] = ()) -> NativeMatrix:
    """The matrix of ``form``: in closed form when its ``coefficients`` are given
    (:class:`CellwiseMatrix`, checked), else DOLFINx's assembly."""
    if coefficients is None:
        return NativeMatrix(form)
    return CellwiseMatrix(form, V, coefficients, bcs)


def is_cellwise(*exprs: Any) -> bool:
    """True if every expression (None: skipped) is built from Constants and DG0
    Functions only (then it is constant on each cell)."""
    for e in exprs:
        if e is None:
            continue
        for f in extract_coefficients(ufl.as_ufl(e)):
            if f.ufl_element().embedded_superdegree != 0:
                return False
    return True
