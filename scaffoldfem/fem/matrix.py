"""PETSc matrices assembled by DOLFINx's native CSR assembler and handed over in one copy.

``dolfinx.fem.petsc.assemble_matrix`` inserts every element matrix through
``MatSetValuesLocal`` (a local-to-global map and a search in PETSc's rows per
entry). DOLFINx's own :class:`dolfinx.la.MatrixCSR` has the sparsity fixed at
creation and inserts into it directly; its owned rows then hold the assembled
matrix, which PETSc takes through COO assembly (``MatSetPreallocationCOO`` once
with the CSR's global row/column pairs, then ``MatSetValuesCOO`` with the CSR's
data array: a copy). Measured on the medium cord mesh (72k vertices, 2 ranks,
10 assemblies each): P1 transport 186 -> 131 ms, P1 vector elasticity
839 -> 335 ms, the same matrix to 4e-15 relative (``tests/test_matrix.py``).

The PETSc matrix has the CSR's full pattern (explicit zeros included) and the
space's block size, so GAMG's reused interpolation and the rigid-body
near-nullspace see the same operator as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
import ufl
from dolfinx import fem, la
from petsc4py import PETSc
from ufl.algorithms import expand_derivatives

from scaffoldfem.fem.compat import compile_form, over_every_cell

__all__ = ["NativeMatrix", "split_rhs"]


def _coo_indices(csr, bs: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Global (row, column) of every owned-row entry of ``csr`` in its data order, and
    the number of those entries."""
    rmap, cmap = csr.index_map(0), csr.index_map(1)
    nrow = rmap.size_local
    ptr = np.asarray(csr.indptr)
    nnzb = int(ptr[nrow])
    rows = np.repeat(np.arange(nrow, dtype=np.int32), np.diff(ptr[: nrow + 1]))
    rows = rmap.local_to_global(rows).astype(np.int64)
    cols = cmap.local_to_global(np.asarray(csr.indices[:nnzb], dtype=np.int32)).astype(np.int64)
    b0, b1 = bs
    if b0 * b1 > 1:  # data is (block, b0, b1), row-major within each block
        a0, a1 = np.arange(b0), np.arange(b1)
        rows = np.broadcast_to(rows[:, None, None] * b0 + a0[None, :, None], (nnzb, b0, b1))
        cols = np.broadcast_to(cols[:, None, None] * b1 + a1[None, None, :], (nnzb, b0, b1))
    return (np.ascontiguousarray(rows, dtype=PETSc.IntType).ravel(),
            np.ascontiguousarray(cols, dtype=PETSc.IntType).ravel(), nnzb * b0 * b1)


#: Finalized sparsity patterns of forms over every cell, per pair of (test, trial)
#: spaces: (weak references to the spaces, pattern). Building the pattern is ~97 % of
#: ``fem.create_matrix`` (0.15 s for 160k cells); the fields' matrices on one space
#: (system and right-hand-side matrices) all have the same one.
_PATTERNS: dict[tuple[int, int], tuple] = {}


def _pattern_shareable(form: fem.Form, spaces: tuple | None) -> bool:
    """True if ``form`` is over every cell of its spaces' mesh and ``spaces`` are its
    own (test, trial) spaces: then its pattern is the pair's."""
    return (spaces is not None and over_every_cell(form)
            and form.mesh is spaces[0].mesh._cpp_object
            and all(V._cpp_object is W
                    for V, W in zip(spaces, form.function_spaces, strict=True)))


def create_csr(form: fem.Form, spaces: tuple[fem.FunctionSpace, fem.FunctionSpace] | None
               ) -> la.MatrixCSR:
    """``fem.create_matrix(form)``; for a form over every cell whose (test, trial)
    ``spaces`` are given, the sparsity pattern is built once per pair of spaces (it is
    read-only once finalized)."""
    if not _pattern_shareable(form, spaces):
        return fem.create_matrix(form)
    key = (id(spaces[0]), id(spaces[1]))
    hit = _PATTERNS.get(key)
    if hit is None or hit[0]() is not spaces[0] or hit[1]() is not spaces[1]:
        for k in [k for k, v in _PATTERNS.items() if v[0]() is None or v[1]() is None]:
            del _PATTERNS[k]
        pattern = fem.create_sparsity_pattern(form)
        pattern.finalize()
        hit = _PATTERNS[key] = (weakref.ref(spaces[0]), weakref.ref(spaces[1]), pattern)
    return la.matrix_csr(hit[2], dtype=form.dtype)


class NativeMatrix:
    """A PETSc AIJ matrix of a compiled bilinear form, assembled through a DOLFINx CSR.

    Args:
        form: The compiled bilinear form (its mesh's communicator is the matrix's).
        spaces: Its (test, trial) spaces, if known: matrices of the same spaces then
            share the sparsity pattern's construction (:func:`create_csr`).
    """

    def __init__(self, form: fem.Form,
                 spaces: tuple[fem.FunctionSpace, fem.FunctionSpace] | None = None):
        self.form = form
        self.csr = create_csr(form, spaces)
        bs = tuple(int(b) for b in self.csr.block_size)
        rows, cols, self._n = _coo_indices(self.csr, bs)
        sizes = [(V.dofmap.index_map.size_local * V.dofmap.index_map_bs,
                  V.dofmap.index_map.size_global * V.dofmap.index_map_bs)
                 for V in form.function_spaces]
        self.mat = PETSc.Mat().create(form.mesh.comm)
        self.mat.setSizes(tuple(sizes), bsize=bs if bs[0] != bs[1] else bs[0])
        self.mat.setType(PETSc.Mat.Type.AIJ)
        self.mat.setPreallocationCOO(rows, cols)

    def assemble(self, bcs: Sequence[fem.DirichletBC] = ()) -> PETSc.Mat:
        """Collective: assemble the form (Dirichlet rows and columns zeroed, unit
        diagonal on a square block) into :attr:`mat` and return it."""
        self.csr.data[:] = 0.0
        fem.assemble_matrix(self.csr, self.form, bcs=list(bcs))
        self.csr.scatter_reverse()
        self.mat.setValuesCOO(self.csr.data[: self._n], addv=PETSc.InsertMode.INSERT_VALUES)
        return self.mat

    def destroy(self) -> None:
        """Free the PETSc matrix (collective)."""
        self.mat.destroy()


def split_rhs(L: ufl.Form, coeffs: Sequence[fem.Function], kw: dict
              ) -> tuple[ufl.Form | None, list[tuple[NativeMatrix, fem.Function]]]:
    """``L = Σ B_j f_j + rest``: the rest of ``L`` and each ``(B_j's matrix, f_j)``
    (see :class:`LinearSolver`'s ``rhs_coefficients``)."""
    if not isinstance(L, ufl.Form):
        raise ValueError("rhs_coefficients needs L as a UFL form")
    rest, ops = L, []
    for f in coeffs:
        B = expand_derivatives(ufl.derivative(L, f, ufl.TrialFunction(f.function_space)))
        # B_j must not depend on any of the split coefficients (itself: L affine
        # in f_j; the others: no products f_j f_k), else it would go stale.
        for g in coeffs:
            dB = expand_derivatives(ufl.derivative(B, g, ufl.TestFunction(g.function_space)))
            if not dB.empty():
                raise ValueError(f"L is not affine in {f.name} (or couples it with "
                                 f"{g.name}): cannot precompute its matrix")
        if B.empty():
            continue
        spaces = tuple(arg.ufl_function_space() for arg in B.arguments())
        ops.append((NativeMatrix(compile_form(B, **kw), spaces), f))
        rest = ufl.replace(rest, {f: ufl.zero(*f.ufl_shape) if f.ufl_shape else 0.0})
    return (None if rest.empty() else rest), ops
