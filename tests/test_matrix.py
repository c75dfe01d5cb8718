"""The native-CSR assembly path gives PETSc the matrix DOLFINx's PETSc assembler does
(scalar and blocked spaces, Dirichlet rows, rectangular right-hand-side matrices,
re-assembly after a coefficient change), serially and on any number of ranks."""

from __future__ import annotations

import dolfinx.fem.petsc as fpetsc
import numpy as np
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI
from petsc4py import PETSc

import scaffoldfem  # noqa: F401
from scaffoldfem.fem.matrix import NativeMatrix


def _box():
    msh = mesh.create_box(MPI.COMM_WORLD, [[0, 0, 0], [1, 0.6, 0.8]], [7, 5, 6],
                          mesh.CellType.tetrahedron)
    W = fem.functionspace(msh, ("DG", 0))
    k = fem.Function(W)
    k.interpolate(lambda x: 1.0 + 10.0 * (x[0] > 0.5) + x[1])
    return msh, W, k


def _difference(form, bcs=(), native=None):
    """Relative Frobenius difference between DOLFINx's PETSc assembly and ``native``'s
    (a new :class:`NativeMatrix` if None), and that NativeMatrix."""
    native = NativeMatrix(form) if native is None else native
    ref = fpetsc.assemble_matrix(form, bcs=list(bcs))
    ref.assemble()
    ours = native.assemble(bcs)
    assert ours.getSizes() == ref.getSizes()
    assert ours.getBlockSizes() == ref.getBlockSizes()
    norm = ref.norm(PETSc.NormType.FROBENIUS)
    ref.axpy(-1.0, ours, structure=PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
    diff = ref.norm(PETSc.NormType.FROBENIUS) / norm
    ref.destroy()
    return diff, native


def _on(V, where):
    msh = V.mesh
    msh.topology.create_connectivity(2, 3)
    facets = mesh.locate_entities_boundary(msh, 2, where)
    return fem.locate_dofs_topological(V, 2, facets)


def test_scalar_with_dirichlet_and_reassembly():
    msh, _, k = _box()
    V = fem.functionspace(msh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    form = fem.form((k * u * v + 0.3 * k * ufl.inner(ufl.grad(u), ufl.grad(v))) * ufl.dx
                    + 2.0 * u * v * ufl.ds)
    bc = fem.dirichletbc(0.7, _on(V, lambda x: np.isclose(x[2], 0.0)), V)
    diff, native = _difference(form, [bc])
    assert diff < 1e-13
    # A coefficient change: the same object re-assembles the new matrix (not the sum
    # with the old one, which would differ by a third of it).
    k.x.array[:] *= 3.0
    diff2, _ = _difference(form, [bc], native)
    assert diff2 < 1e-13


def test_blocked_elasticity_with_dirichlet():
    msh, _, E = _box()
    Vu = fem.functionspace(msh, ("Lagrange", 1, (3,)))
    u, v = ufl.TrialFunction(Vu), ufl.TestFunction(Vu)

    def eps(w):
        return ufl.sym(ufl.grad(w))

    form = fem.form(ufl.inner(2 * E * eps(u) + E * ufl.tr(eps(u)) * ufl.Identity(3),
                              eps(v)) * ufl.dx)
    clamp = fem.dirichletbc(np.zeros(3), _on(Vu, lambda x: np.isclose(x[2], 0.0)), Vu)
    Vz = Vu.sub(2)
    pull = fem.dirichletbc(fem.Constant(msh, 0.05), fem.locate_dofs_topological(
        Vz, 2, mesh.locate_entities_boundary(msh, 2, lambda x: np.isclose(x[2], 0.8))), Vz)
    diff, native = _difference(form, [clamp, pull])
    assert diff < 1e-13
    assert native.mat.getBlockSize() == 3


def test_rectangular_rhs_matrix():
    msh, W, k = _box()
    V = fem.functionspace(msh, ("Lagrange", 1))
    form = fem.form(k * ufl.TrialFunction(W) * ufl.TestFunction(V) * ufl.dx)
    diff, native = _difference(form)
    assert diff < 1e-13
    # Its action is the source vector ∫ k f v dx of a DG0 f.
    f = fem.Function(W)
    f.interpolate(lambda x: np.sin(3 * x[0]) + 2.0)
    y = native.mat.createVecLeft()
    native.mat.mult(f.x.petsc_vec, y)
    ref = fpetsc.assemble_vector(fem.form(k * f * ufl.TestFunction(V) * ufl.dx))
    ref.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    ref.axpy(-1.0, y)
    assert ref.norm() < 1e-13 * y.norm()


def test_matrices_of_one_pair_of_spaces_build_the_sparsity_once(monkeypatch):
    """Forms over every cell on the same (test, trial) spaces build one sparsity
    pattern between them (counted) and still assemble DOLFINx's matrix, a rectangular
    pair of spaces has its own; a form over a tagged part, or spaces not given, build
    their own."""
    built = []
    create = fem.create_sparsity_pattern

    def counted(form):
        built.append(1)
        return create(form)

    monkeypatch.setattr(fem, "create_sparsity_pattern", counted)
    msh, W, k = _box()
    V = fem.functionspace(msh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    lumped = {"quadrature_rule": "vertex", "quadrature_degree": 1}
    forms = [fem.form(k * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx),
             fem.form(k * u * v * ufl.dx(metadata=lumped))]
    mats = [NativeMatrix(a, (V, V)) for a in forms]
    assert len(built) == 1
    rect = NativeMatrix(fem.form(ufl.TrialFunction(W) * v * ufl.dx), (V, W))
    assert len(built) == 2
    n = msh.topology.index_map(3).size_local
    tags = mesh.meshtags(msh, 3, np.arange(n, dtype=np.int32), np.ones(n, dtype=np.int32))
    part = fem.form(u * v * ufl.dx(1, domain=msh, subdomain_data=tags))
    mats += [NativeMatrix(part, (V, V)), NativeMatrix(forms[0])]
    assert len(built) == 4
    for form, m in zip([*forms, part, forms[0]], mats, strict=True):
        diff, _ = _difference(form, native=m)
        assert diff < 1e-14
    diff, _ = _difference(rect.form, native=rect)
    assert diff < 1e-14
    for m in (*mats, rect):
        m.destroy()
