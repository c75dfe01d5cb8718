"""P1 matrices with cellwise-constant coefficients, assembled in closed form.

Every transport step's matrix in scaffoldfem is, on linear tetrahedra,

    a(u, v) = ∫ w u v + (D ∇u)·∇v dx + ∫ σ u v dx_vertex

with ``w`` (mass weight, e.g. α/Δt + αk), ``D`` (scalar or 3×3 diffusivity) and
``σ`` (a lumped sink) constant on each cell; its element matrix is exactly

    A_c = |c| (w_c (1 + δ_ij)/20 + ∇λ_iᵀ D_c ∇λ_j) + σ_c |c|/4 δ_ij.

Linear elasticity, ``∫ σ(u) : ε(v) dx`` with Lamé parameters μ, λ constant on each
cell, has the 3×3 block of nodes ``a`` (test), ``b`` (trial)

    K_ab,ij = |c| (μ (g_a·g_b) δ_ij + μ g_a,j g_b,i + λ g_a,i g_b,j),   g = ∇λ.

So a refresh is one pass over the owned cells adding their entries at CSR positions
found once, instead of DOLFINx's generated kernel and its sparse insertion; the
coefficients are evaluated per cell by UFL's own evaluation on the DG0 arrays.
Measured on the medium cord mesh: docs/model.md §8.

:class:`CellwiseMatrix` and :class:`CellwiseElasticity` refuse any coefficient that
is not built from Constants and DG0 Functions (then it is exact at any point of the
cell) and compare their matrix with DOLFINx's assembly of the form at set-up: a
term the closed form does not describe (advection, a facet term, another
quadrature, a wrong weight) is a ValueError, not an approximation.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from petsc4py import PETSc
from ufl.algorithms import expand_derivatives, extract_coefficients
from ufl.algorithms.analysis import extract_constants
from ufl.corealg.traversal import unique_pre_traversal
from ufl.utils.stacks import StackDict

from scaffoldfem.fem.cells import inverse_jacobians
from scaffoldfem.fem.closed_form_check import check_closed_form
from scaffoldfem.fem.compat import geometry_degree, geometry_dofmap
from scaffoldfem.fem.matrix import NativeMatrix

__all__ = ["CellCoefficients", "CellwiseElasticity", "CellwiseMatrix", "Coefficients", "Lame",
           "is_cellwise", "operator_matrix"]

#: ``(w, D, σ)``: the mass weight, the diffusivity (scalar or 3×3) and the lumped
#: sink (None: none), UFL expressions of Constants and DG0 Functions.
CellCoefficients = tuple[Any, Any, Any]

@dataclass(frozen=True)
class Lame:
    """Lamé parameters (kPa) of an isotropic elasticity matrix, UFL expressions."""

    mu: Any
    lmbda: Any


#: What :func:`operator_matrix` takes: transport's ``(w, D, σ)`` or elasticity's Lamé.
Coefficients = CellCoefficients | Lame


@numba.njit(cache=True, nogil=True)
def _assemble(pos, grad, vol, w, D, s, data):  # pragma: no cover (compiled)
    for c in range(pos.shape[0]):
        v = vol[c]
        m = w[c] * v / 20.0
        g = grad[c]
        Dc = D[c]
        gd = np.empty((4, 3))  # G D, G the barycentric gradients (4x3)
        for i in range(4):
            for k in range(3):
                gd[i, k] = g[i, 0] * Dc[0, k] + g[i, 1] * Dc[1, k] + g[i, 2] * Dc[2, k]
        for i in range(4):
            for j in range(4):
                a = v * (gd[i, 0] * g[j, 0] + gd[i, 1] * g[j, 1] + gd[i, 2] * g[j, 2]) + m
                if i == j:
                    a += m + s[c] * v / 4.0
                data[pos[c, 4 * i + j]] += a


@numba.njit(cache=True, nogil=True)
def _assemble_elastic(pos, grad, vol, mu, lam, data):  # pragma: no cover (compiled)
    for c in range(pos.shape[0]):
        g = grad[c]
        m, lv = mu[c] * vol[c], lam[c] * vol[c]
        for a in range(4):
            for b in range(4):
                gg = m * (g[a, 0] * g[b, 0] + g[a, 1] * g[b, 1] + g[a, 2] * g[b, 2])
                base = 9 * pos[c, 4 * a + b]
                for i in range(3):
                    for j in range(3):
                        e = m * g[a, j] * g[b, i] + lv * g[a, i] * g[b, j]
                        data[base + 3 * i + j] += e + gg if i == j else e


@numba.njit(cache=True, nogil=True)
def _find(ptr, idx, rows, cols, out):  # pragma: no cover (compiled)
    missing = 0
    for k in range(rows.size):
        r, c, at = rows[k], cols[k], -1
        for q in range(ptr[r], ptr[r + 1]):
            if idx[q] == c:
                at = q
                break
        out[k] = at
        missing += at < 0
    return missing


def _cell_geometry(msh: dmesh.Mesh, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Volumes and barycentric gradients (n, 4, 3) of the first ``n`` cells."""
    rows, det = inverse_jacobians(msh.geometry.x[geometry_dofmap(msh)[:n]])
    grad = np.empty((n, 4, 3))
    grad[:, 1:] = rows  # ∇λ_1..3
    grad[:, 0] = -rows.sum(axis=1)
    return np.abs(det) / 6.0, grad


def _positions(csr, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Index of each (row, column) block pair into the CSR's blocks (raises if absent)."""
    out = np.empty(rows.size, dtype=np.int32 if csr.data.size < 2**31 else np.int64)
    missing = _find(np.asarray(csr.indptr, dtype=np.int64), np.asarray(csr.indices),
                    rows.ravel().astype(np.int64), cols.ravel().astype(np.int64), out)
    if missing:
        raise ValueError("the matrix's sparsity lacks a cell's dof pair")
    return out.reshape(rows.shape)


#: Per space: (weak reference, digest of the CSR pattern, volumes, gradients,
#: positions), so the fields on one space share them (memory, and ~0.5 s of set-up
#: a field on medium).
_SHARED: dict[int, tuple] = {}


def _cells_of(V: fem.FunctionSpace, csr, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Volumes, barycentric gradients and CSR positions of the owned cells of ``V``
    (shared by the matrices of ``V`` with the same sparsity)."""
    pattern = hashlib.blake2b(np.asarray(csr.indptr).tobytes())
    pattern.update(np.asarray(csr.indices).tobytes())
    hit = _SHARED.get(id(V))
    if hit is not None and hit[0]() is V and hit[1] == pattern.digest():
        return hit[2:]
    for key in [k for k, v in _SHARED.items() if v[0]() is None]:
        del _SHARED[key]
    dofs = np.asarray(V.dofmap.list[:n], dtype=np.int64)
    vol, grad = _cell_geometry(V.mesh, n)
    pos = _positions(csr, np.repeat(dofs, 4, axis=1), np.tile(dofs, (1, 4)))
    _SHARED[id(V)] = (weakref.ref(V), pattern.digest(), vol, grad, pos)
    return vol, grad, pos


#: Operators UFL evaluates elementwise on arrays (others, e.g. conditionals, min/max
#: or exp, evaluate only on numbers; geometric quantities not at all).
_ARRAY_SAFE = (ufl.algebra.Sum, ufl.algebra.Product, ufl.algebra.Division,
               ufl.algebra.Power, ufl.algebra.Abs, ufl.constantvalue.ConstantValue,
               ufl.indexed.Indexed, ufl.tensors.ComponentTensor, ufl.tensors.ListTensor,
               ufl.indexsum.IndexSum, ufl.core.multiindex.MultiIndex,
               ufl.tensoralgebra.Outer, ufl.tensoralgebra.Inner, ufl.tensoralgebra.Dot,
               ufl.Coefficient, ufl.Constant)


def is_cellwise(*exprs: Any) -> bool:
    """True if every expression (None: skipped) is built from Constants and scalar DG0
    Functions with arithmetic only (then it is constant on each cell and evaluates on
    arrays of cell values)."""
    for e in exprs:
        if e is None:
            continue
        for node in unique_pre_traversal(ufl.as_ufl(e)):
            if not isinstance(node, _ARRAY_SAFE):
                return False
            if isinstance(node, ufl.Coefficient) and (
                    node.ufl_element().embedded_superdegree != 0 or node.ufl_shape != ()):
                return False
    return True


def _eligible(V: fem.FunctionSpace, bs: int) -> bool:
    """P1 of block size ``bs`` on affine tetrahedra: the spaces the closed forms cover."""
    msh = V.mesh
    return (msh.topology.cell_type == dmesh.CellType.tetrahedron and geometry_degree(msh) == 1
            and V.dofmap.index_map_bs == bs and V.dofmap.dof_layout.num_dofs == 4)


class _ClosedForm(NativeMatrix):
    """What the closed forms share: cell geometry, CSR positions, per-cell values of
    scalar expressions, Dirichlet rows and the set-up check (subclasses: ``_kernel``)."""

    bs = 1

    def __init__(self, form: fem.Form, V: fem.FunctionSpace, items: list[Any],
                 bcs: Sequence[fem.DirichletBC], source: ufl.Form | None = None):
        if any(W is not V._cpp_object for W in form.function_spaces):
            raise ValueError("the closed-form matrix's space is not its form's")
        if not _eligible(V, self.bs):
            raise ValueError(f"the closed-form matrix needs P1 (block size {self.bs}) "
                             "on affine tetrahedra")
        if not is_cellwise(*items):
            raise ValueError("the closed-form matrix needs coefficients that are constant "
                             "on each cell (Constants and DG0 Functions)")
        super().__init__(form, (V, V))
        msh = V.mesh
        n = msh.topology.index_map(msh.topology.dim).size_local
        self._vol, self._grad, self._pos = _cells_of(V, self.csr, n)
        self._ncells = n
        #: The scalar coefficient expressions, and the Functions and Constants they read.
        self.items = [ufl.as_ufl(e) for e in items]
        # Lowered once: ``Expr.__call__`` would expand derivatives and lower the
        # algebra again at every assembly (most of the evaluation's time).
        self._lowered = [expand_derivatives(e) for e in self.items]
        self.functions = list(
            {id(f): f for e in self.items for f in extract_coefficients(e)}.values())
        self.constants = list(
            {id(c): c for e in self.items for c in extract_constants(e)}.values())
        self._cells = {id(f): np.asarray(f.function_space.dofmap.list[:n, 0])
                       for f in self.functions}
        self._bc_key: tuple = ()
        self._bc_zero = self._bc_diag = np.zeros(0, dtype=np.int64)
        #: The UFL form compiled into ``form`` (None: not known; the check then is
        #: never skipped).
        self.source = source if isinstance(source, ufl.Form) else None
        check_closed_form(self, bcs)

    def _values(self) -> np.ndarray:
        """The scalar items per owned cell (items, cells), evaluated now: UFL's own
        point evaluation on the DG0 cell arrays (any point of a cell will do)."""
        at = {f: f.x.array[self._cells[id(f)]] for f in self.functions}
        at.update({c: (float(c.value) if np.ndim(c.value) == 0 else np.asarray(c.value))
                   for c in self.constants})
        v = np.empty((len(self.items), self._ncells))
        for k, e in enumerate(self._lowered):
            v[k] = e.evaluate((0.0, 0.0, 0.0), at, (), StackDict())
        return v

    def _kernel(self, values: np.ndarray, data: np.ndarray) -> None:
        raise NotImplementedError

    def assemble(self, bcs: Sequence[fem.DirichletBC] = ()) -> PETSc.Mat:
        """Collective: assemble in closed form (Dirichlet rows and columns zeroed, unit
        diagonal) into :attr:`mat` and return it."""
        data = self.csr.data
        data[:] = 0.0
        self._kernel(self._values(), data)
        # As DOLFINx: only the conditions on the form's space (or a sub-space of it).
        V = self.form.function_spaces[0]
        bcs = [bc for bc in bcs if V.contains(bc.function_space)]
        if bcs:
            self._apply_bcs(bcs, data)
        self.csr.scatter_reverse()
        self.mat.setValuesCOO(data[: self._n], addv=PETSc.InsertMode.INSERT_VALUES)
        return self.mat

    def _apply_bcs(self, bcs: Sequence[fem.DirichletBC], data: np.ndarray) -> None:
        """Zero the rows and columns of the constrained dofs; unit owned diagonals (as
        DOLFINx's ``assemble_matrix`` and ``insert_diagonal``; dofs unrolled)."""
        key = tuple(bcs)  # the objects themselves (an id could be reused)
        same = len(key) == len(self._bc_key) and all(
            a is b for a, b in zip(key, self._bc_key, strict=True))
        if not same:  # the entries to zero and the diagonals, found once
            bs = self.bs
            ptr = np.asarray(self.csr.indptr, dtype=np.int64)
            cols = np.asarray(self.csr.indices, dtype=np.int64)
            nrow = len(ptr) - 1
            rows = np.repeat(np.arange(nrow), np.diff(ptr))
            cols = cols[: len(rows)]
            # Columns: the rows' local dofs first, then the extra ghost columns.
            fixed = np.zeros(bs * (max(nrow, int(cols.max(initial=0)) + 1)), dtype=bool)
            owned = []
            for bc in bcs:
                dofs, n_owned = bc.dof_indices()
                fixed[dofs] = True
                owned.append(dofs[:n_owned])
            k = np.arange(bs)
            hit = (fixed[rows[:, None] * bs + k][:, :, None]
                   | fixed[cols[:, None] * bs + k][:, None, :])
            self._bc_zero = np.flatnonzero(hit.ravel())
            d = np.unique(np.concatenate(owned)).astype(np.int64)
            blk = _positions(self.csr, d // bs, d // bs)
            self._bc_diag = blk * bs * bs + (d % bs) * (bs + 1)
            self._bc_key = key
        data[self._bc_zero] = 0.0
        data[self._bc_diag] = 1.0

    def reference_assembly(self, bcs: Sequence[fem.DirichletBC] = ()) -> PETSc.Mat:
        """Collective: DOLFINx's assembly of the form into :attr:`mat` (the check's
        reference)."""
        return NativeMatrix.assemble(self, bcs)


class CellwiseMatrix(_ClosedForm):
    """The transport matrix ``∫ w u v + (D∇u)·∇v dx + ∫ σ u v dx_vertex`` in closed
    form (same CSR, PETSc matrix and Dirichlet rows as :class:`NativeMatrix`).

    Args:
        form: The compiled bilinear form: the reference it is checked against.
        V: Its (trial and test) space: scalar P1 on affine tetrahedra.
        coefficients: ``(w, D, σ)`` (:data:`CellCoefficients`).
        bcs: The Dirichlet conditions of the check.
        source: The UFL form compiled into ``form``, if known: then a structure that
            passed the check in this process is not checked again
            (:mod:`scaffoldfem.fem.closed_form_check`).

    Raises:
        ValueError: For another space or cell, a coefficient that varies in a cell, or
            a form that differs from the closed form at set-up.
    """

    def __init__(self, form: fem.Form, V: fem.FunctionSpace, coefficients: CellCoefficients,
                 bcs: Sequence[fem.DirichletBC] = (), source: ufl.Form | None = None):
        w, D, s = coefficients
        Dm = D if len(ufl.shape(D)) == 2 else D * ufl.Identity(3)
        items = [w, *(Dm[i, j] for i in range(3) for j in range(3)),
                 s if s is not None else 0.0]
        super().__init__(form, V, items, bcs, source)

    def _kernel(self, values: np.ndarray, data: np.ndarray) -> None:
        D = np.ascontiguousarray(values[1:10].T.reshape(-1, 3, 3))
        _assemble(self._pos, self._grad, self._vol, values[0], D, values[10], data)


class CellwiseElasticity(_ClosedForm):
    """The isotropic elasticity matrix ``∫ σ(u):ε(v) dx`` in closed form (vector P1).

    Args:
        form, bcs, source: As for :class:`CellwiseMatrix`.
        V: Vector P1 (block size 3) on affine tetrahedra.
        lame: μ and λ, built from Constants and DG0 Functions.
    """

    bs = 3

    def __init__(self, form: fem.Form, V: fem.FunctionSpace, lame: Lame,
                 bcs: Sequence[fem.DirichletBC] = (), source: ufl.Form | None = None):
        super().__init__(form, V, [lame.mu, lame.lmbda], bcs, source)

    def _kernel(self, values: np.ndarray, data: np.ndarray) -> None:
        _assemble_elastic(self._pos, self._grad, self._vol, values[0], values[1], data)


def operator_matrix(form: fem.Form, V: fem.FunctionSpace,
                    coefficients: Coefficients | None,
                    bcs: Sequence[fem.DirichletBC] = (),
                    source: ufl.Form | None = None) -> NativeMatrix:
    """The matrix of ``form``: in closed form when its coefficients are given (a
    :class:`Lame`: elasticity; a :data:`CellCoefficients`: transport; checked), else
    DOLFINx's assembly. ``source``: the UFL form compiled into ``form``, if known."""
    elastic = isinstance(coefficients, Lame)
    if coefficients is None or not _eligible(V, 3 if elastic else 1):
        return NativeMatrix(form, (V, V))  # (e.g. P2 elasticity)
    if elastic:
        return CellwiseElasticity(form, V, coefficients, bcs, source)
    return CellwiseMatrix(form, V, coefficients, bcs, source)
