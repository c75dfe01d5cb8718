"""The closed-form P1 transport matrix (``LinearSolver(cellwise=...)``): DOLFINx's
assembly of the same form to rounding, also after the coefficients and Δt move, with
tensor diffusivity, a lumped sink and Dirichlet rows; a form it does not describe
refused; the transport steps that may use it, and only those. Serially and on any
number of ranks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

import scaffoldfem  # noqa: F401
from scaffoldfem.fem import closed_form_check
from scaffoldfem.fem.cell_operator import (
    CellwiseElasticity,
    CellwiseMatrix,
    Lame,
    operator_matrix,
)
from scaffoldfem.fem.compat import compile_form
from scaffoldfem.fem.matrix import NativeMatrix
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.model.transport import TransportParams
from scaffoldfem.physics import mechanics as mech
from scaffoldfem.physics.transport import Robin, Uptake

LUMPED = {"quadrature_rule": "vertex", "quadrature_degree": 1}


def _dg0(Q, f):
    u = fem.Function(Q)
    u.interpolate(f)
    return u


def _problem(tensor: bool, sink: bool, dirichlet: bool, comm: MPI.Comm = MPI.COMM_WORLD,
             cells: tuple[int, int, int] = (7, 5, 6)):
    msh = mesh.create_box(comm, [[0, 0, 0], [1, 0.6, 0.8]], list(cells),
                          mesh.CellType.tetrahedron)
    V = fem.functionspace(msh, ("Lagrange", 1))
    Q = fem.functionspace(msh, ("DG", 0))
    alpha = _dg0(Q, lambda x: 0.2 + 0.5 * (x[0] > 0.5) + 0.2 * x[1])
    d_t = _dg0(Q, lambda x: 0.02 + 0.05 * x[2])
    d_a = _dg0(Q, lambda x: 0.1 + 0.1 * np.sin(5 * x[0]))
    sigma = _dg0(Q, lambda x: 3.0 * (x[1] > 0.3)) if sink else None
    dt, k = fem.Constant(msh, 0.25), fem.Constant(msh, 0.7)
    e = ufl.as_vector([0.0, 0.0, 1.0])
    D = d_t * ufl.Identity(3) + (d_a - d_t) * ufl.outer(e, e) if tensor else d_t
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    grad_u = ufl.dot(D, ufl.grad(u)) if tensor else D * ufl.grad(u)
    a = (alpha * u / dt * v + ufl.inner(grad_u, ufl.grad(v)) + alpha * k * u * v) * ufl.dx
    if sink:
        a += sigma * u * v * ufl.dx(metadata=LUMPED)
    bcs = []
    if dirichlet:
        msh.topology.create_connectivity(2, 3)
        facets = mesh.locate_entities_boundary(msh, 2, lambda x: np.isclose(x[2], 0.0))
        bcs = [fem.dirichletbc(0.5, fem.locate_dofs_topological(V, 2, facets), V)]
    moving = [alpha, d_t, d_a] + ([sigma] if sink else [])
    return V, a, (alpha / dt + alpha * k, D, sigma), bcs, moving, dt


def _rel_difference(A, B) -> float:
    d = A.copy()
    d.axpy(-1.0, B)
    rel = d.norm() / B.norm()
    d.destroy()
    return rel


@pytest.mark.parametrize(("tensor", "sink", "dirichlet"),
                         [(False, False, False), (True, True, True), (True, False, True),
                          (False, True, False)])
def test_closed_form_matrix_is_the_assembled_one(tensor, sink, dirichlet):
    """The closed form equals DOLFINx's assembly to rounding, at set-up and after
    every coefficient and Δt changed (it reads them at each assembly); a solve with
    it gives the assembled system's solution."""
    V, a, coeffs, bcs, moving, dt = _problem(tensor, sink, dirichlet)
    form = compile_form(a)
    ours, ref = CellwiseMatrix(form, V, coeffs, bcs), NativeMatrix(form)
    for step in range(2):
        if step:
            for f in moving:
                f.x.array[:] *= 1.0 + 0.4 * np.cos(np.arange(f.x.array.size) + len(moving))
                f.x.scatter_forward()
            dt.value = 0.1
        assert _rel_difference(ours.assemble(bcs), ref.assemble(bcs)) < 1e-13, step
    ours.destroy(), ref.destroy()
    src = fem.Function(V)
    src.interpolate(lambda x: 1.0 + x[0] * x[1])
    L = src * ufl.TestFunction(V) * ufl.dx
    sol = {}
    for name, cw in (("ref", None), ("ours", coeffs)):
        sol[name] = fem.Function(V)
        s = LinearSolver(a, L, sol[name], bcs, field=f"cellwise_{name}", guess_levels=0,
                         petsc_options={"ksp_rtol": 1e-12}, cellwise=cw)
        s.solve()
        s.destroy()
    scale = np.abs(sol["ref"].x.array).max()
    assert np.allclose(sol["ours"].x.array, sol["ref"].x.array, rtol=0, atol=1e-9 * scale)


def test_matrices_of_one_space_share_its_cells_unless_the_sparsity_differs():
    """Two matrices of one space share the cell geometry and CSR positions; a form with
    a wider sparsity (a zero interior-facet term) gets its own, and is still right."""
    V, a, coeffs, bcs, _, dt = _problem(False, False, True)
    one = CellwiseMatrix(compile_form(a), V, coeffs, bcs)
    two = CellwiseMatrix(compile_form(a), V, coeffs, bcs)
    assert two._pos is one._pos and two._grad is one._grad
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    zero = dt - dt  # zero, of a constant the closed form reads (UFL keeps the term)
    wide = compile_form(a + zero * ufl.jump(u) * ufl.jump(v) * ufl.dS)
    three = CellwiseMatrix(wide, V, coeffs, bcs)
    assert three._pos is not one._pos and three.csr.data.size > one.csr.data.size
    ref = NativeMatrix(wide)
    assert _rel_difference(three.assemble(bcs), ref.assemble(bcs)) < 1e-13
    for m in (one, two, three, ref):
        m.destroy()


def test_a_form_the_closed_form_does_not_describe_is_refused():
    """A wrong weight (k left out), an advection term and a coefficient that varies
    inside a cell are each refused: the closed form never stands in for another form."""
    V, a, (w, D, s), _, moving, dt = _problem(True, True, False)
    alpha = moving[0]
    with pytest.raises(ValueError, match="not the closed form"):
        CellwiseMatrix(compile_form(a), V, (alpha / dt, D, s))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    adv = a + ufl.inner(ufl.as_vector([0.3, 0.0, 0.0]), ufl.grad(u)) * v * ufl.dx
    with pytest.raises(ValueError, match="not the closed form"):
        CellwiseMatrix(compile_form(adv), V, (w, D, s))
    p1 = fem.Function(V)
    p1.interpolate(lambda x: 1.0 + x[0])
    with pytest.raises(ValueError, match="constant on each cell"):
        CellwiseMatrix(compile_form(a), V, (w * p1, D, s))


def test_closed_form_elasticity_is_the_assembled_matrix():
    """Elasticity with a DG0 modulus (1e3 contrast), clamped at one end and an axial
    displacement at the other (a sub-space condition): the closed form equals DOLFINx's
    assembly to rounding, also after E changed; a wrong Lamé λ is refused."""
    msh = mesh.create_box(MPI.COMM_WORLD, [[0, 0, 0], [0.6, 0.8, 2.0]], [4, 5, 8],
                          mesh.CellType.tetrahedron)
    V = fem.functionspace(msh, ("Lagrange", 1, (3,)))
    E = _dg0(fem.functionspace(msh, ("DG", 0)), lambda x: 1.0 + 1e3 * (x[2] > 1.0) + x[0])
    a, _ = mech.elasticity_forms(ufl.TrialFunction(V), ufl.TestFunction(V), E, 0.45)
    msh.topology.create_connectivity(2, 3)
    ends = [mesh.locate_entities_boundary(msh, 2, lambda x, z=z: np.isclose(x[2], z))
            for z in (0.0, 2.0)]
    Vz = V.sub(2)
    bcs = [fem.dirichletbc(np.zeros(3), fem.locate_dofs_topological(V, 2, ends[0]), V),
           fem.dirichletbc(fem.Constant(msh, 0.1), fem.locate_dofs_topological(Vz, 2, ends[1]),
                           Vz)]
    form = compile_form(a)
    mu, lmbda = mech.lame(E, 0.45)
    ours, ref = CellwiseElasticity(form, V, Lame(mu, lmbda), bcs), NativeMatrix(form)
    for step in range(2):
        if step:
            E.x.array[:] *= 1.0 + 0.5 * np.sin(np.arange(E.x.array.size))
            E.x.scatter_forward()
        assert _rel_difference(ours.assemble(bcs), ref.assemble(bcs)) < 1e-13, step
    ours.destroy(), ref.destroy()
    with pytest.raises(ValueError, match="not the closed form"):
        CellwiseElasticity(form, V, Lame(mu, 1.1 * lmbda), bcs)


def test_a_term_in_a_field_that_is_zero_at_set_up_is_still_compared():
    """The check sets the coefficients to random values: a lumped sink given as a
    consistent mass term is refused although it is zero at set-up (binding not
    started), and so is a closed form that leaves out a field the form reads."""
    V, a, (w, D, _), _, moving, _ = _problem(False, True, False)
    sigma = moving[-1]
    sigma.x.array[:] = 0.0  # σ = 0 now: at these values both forms are the same
    with pytest.raises(ValueError, match="relative difference"):
        CellwiseMatrix(compile_form(a), V, (w + sigma, D, None))
    assert np.all(sigma.x.array == 0.0)  # put back after the check
    with pytest.raises(ValueError, match="reads a coefficient"):
        CellwiseMatrix(compile_form(a), V, (w, D, None))


def _count_checks(monkeypatch) -> list[int]:
    """Forget the structures that passed; count DOLFINx's reference assemblies."""
    monkeypatch.setattr(closed_form_check, "_PASSED", set())
    calls = []
    reference = CellwiseMatrix.reference_assembly

    def counted(self, bcs=()):
        calls.append(1)
        return reference(self, bcs)

    monkeypatch.setattr(CellwiseMatrix, "reference_assembly", counted)
    return calls


def test_a_structure_that_passed_is_checked_once_unless_on_a_tagged_part(monkeypatch):
    """The check is a property of the structure of the form and the closed form: a
    second model of that structure (another mesh, new Functions and Constants) is not
    assembled by DOLFINx again, and is still right; a wrong weight on it is still
    refused; a form with an integral over a tagged part of the mesh, or a term in the
    coordinates (either can vanish on one mesh and not on another), or without its UFL
    source given, is checked every time."""
    calls = _count_checks(monkeypatch)
    for cells in ((7, 5, 6), (5, 4, 4)):
        V, a, coeffs, bcs, _, _ = _problem(True, True, True, cells=cells)
        ours = CellwiseMatrix(compile_form(a), V, coeffs, bcs, source=a)
        ref = NativeMatrix(compile_form(a))
        assert _rel_difference(ours.assemble(bcs), ref.assemble(bcs)) < 1e-13
        ours.destroy(), ref.destroy()
    assert len(calls) == 1
    CellwiseMatrix(compile_form(a), V, coeffs, bcs).destroy()  # no source: checked
    assert len(calls) == 2
    w, D, s = coeffs
    with pytest.raises(ValueError, match="relative difference"):
        CellwiseMatrix(compile_form(a), V, (0.5 * w, D, s), bcs, source=a)
    assert len(calls) == 3
    msh = V.mesh
    n = msh.topology.index_map(3).size_local
    tags = mesh.meshtags(msh, 3, np.arange(n, dtype=np.int32), np.ones(n, dtype=np.int32))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    dt = next(c for c in ufl.algorithms.analysis.extract_constants(w))
    part = a + (dt - dt) * u * v * ufl.dx(1, domain=msh, subdomain_data=tags)
    for _ in range(2):
        CellwiseMatrix(compile_form(part), V, coeffs, bcs, source=part).destroy()
    assert len(calls) == 5
    # A term that is zero on this box (x < 5 everywhere) but not on a larger one.
    x = ufl.SpatialCoordinate(msh)
    far = a + ufl.conditional(ufl.gt(x[0], 5.0), 1.0, 0.0) * u * v * ufl.dx
    for _ in range(2):
        CellwiseMatrix(compile_form(far), V, coeffs, bcs, source=far).destroy()
    assert len(calls) == 7


def test_conditions_on_another_space_are_left_out_as_dolfinx_does():
    """A Dirichlet condition on another space object (of the same mesh) is not applied,
    as DOLFINx's assembly does not, also when the check is skipped; a form on another
    space than the one given is refused."""
    V, a, coeffs, _, _, _ = _problem(False, True, False)
    other = fem.functionspace(V.mesh, ("Lagrange", 1))
    V.mesh.topology.create_connectivity(2, 3)
    facets = mesh.locate_entities_boundary(V.mesh, 2, lambda x: np.isclose(x[2], 0.0))
    bc = fem.dirichletbc(0.5, fem.locate_dofs_topological(other, 2, facets), other)
    form = compile_form(a)
    CellwiseMatrix(form, V, coeffs, (), source=a).destroy()  # passes: cached
    ours, ref = CellwiseMatrix(form, V, coeffs, [bc], source=a), NativeMatrix(form)
    assert _rel_difference(ours.assemble([bc]), ref.assemble([bc])) < 1e-13
    ours.destroy(), ref.destroy()
    with pytest.raises(ValueError, match="space is not its form's"):
        CellwiseMatrix(form, other, coeffs, ())


@pytest.mark.skipif(MPI.COMM_WORLD.size == 1, reason="needs ranks with different histories")
def test_the_skip_is_decided_by_all_ranks(monkeypatch):
    """A structure that passed on one rank alone (a sweep case on a sub-communicator)
    does not let that rank skip the collective check the others make."""
    calls = _count_checks(monkeypatch)
    if MPI.COMM_WORLD.rank == 0:
        V, a, coeffs, bcs, _, _ = _problem(False, True, True, comm=MPI.COMM_SELF)
        CellwiseMatrix(compile_form(a), V, coeffs, bcs, source=a).destroy()
    for _ in range(2):  # checked by both ranks, then known to both: skipped by both
        V, a, coeffs, bcs, _, _ = _problem(False, True, True)
        CellwiseMatrix(compile_form(a), V, coeffs, bcs, source=a).destroy()
    assert len(calls) == (2 if MPI.COMM_WORLD.rank == 0 else 1)


def test_production_steps_pass_the_check_and_p2_elasticity_is_assembled():
    """A backward-Euler step with decay and a lumped sink, as the fields build it
    (``TransportParams.forms`` with ``cellwise``), passes the set-up check; P2
    elasticity falls back to DOLFINx's assembly instead of failing."""
    msh = mesh.create_box(MPI.COMM_WORLD, [[0, 0, 0], [1, 1, 2]], [3, 3, 5],
                          mesh.CellType.tetrahedron)
    V, Q = fem.functionspace(msh, ("Lagrange", 1)), fem.functionspace(msh, ("DG", 0))
    alpha = _dg0(Q, lambda x: 0.2 + 0.1 * x[2])
    sigma = _dg0(Q, lambda x: 0.0 * x[0])
    c_old = fem.Function(V)
    p = TransportParams(c_old, alpha, alpha, 0.03 * alpha, fem.Constant(msh, 0.2),
                        fem.Constant(msh, 0.5), {}, ufl.dx, ufl.ds, sink=sigma)
    a, L = p.forms(V)
    s = LinearSolver(a, L, fem.Function(V), field="cellwise_prod", cellwise=p.cellwise())
    assert isinstance(s._A, CellwiseMatrix)
    s.destroy()
    W = fem.functionspace(msh, ("Lagrange", 2, (3,)))
    E = _dg0(Q, lambda x: 1.0 + x[0])
    a2, _ = mech.elasticity_forms(ufl.TrialFunction(W), ufl.TestFunction(W), E, 0.3)
    m = operator_matrix(compile_form(a2), W, Lame(*mech.lame(E, 0.3)))
    assert type(m) is NativeMatrix
    m.destroy()


def test_transport_steps_use_the_closed_form_only_where_it_holds():
    """A backward-Euler step with cell coefficients gives its ``(w, D, σ)``; uptake,
    clearance, BDF2 or a coefficient that varies in a cell give None (assembled)."""
    msh = mesh.create_unit_cube(MPI.COMM_WORLD, 2, 2, 2)
    V, Q = fem.functionspace(msh, ("Lagrange", 1)), fem.functionspace(msh, ("DG", 0))
    alpha, c_old = fem.Function(Q), fem.Function(V)
    alpha.x.array[:] = 0.2
    k, dt = fem.Constant(msh, 0.1), fem.Constant(msh, 0.5)
    p = TransportParams(c_old, alpha, alpha, 0.01 * alpha, k, dt, {}, ufl.dx, ufl.ds,
                        sink=2.0 * alpha)
    w, D, s = p.cellwise()
    assert D is p.D and s is p.sink
    at = {alpha: np.array([0.2]), k: 0.1, dt: 0.5}
    assert w((0, 0, 0), at) == pytest.approx(0.2 / 0.5 + 0.2 * 0.1)
    for other in (dataclasses.replace(p, uptake=Uptake(1.0, 1.0, "picard")),
                  dataclasses.replace(p, robin=(Robin("pia", 1.0),)),
                  p.bdf2(c_old, alpha, fem.Constant(msh, 1.0)),
                  dataclasses.replace(p, D=0.01 * c_old)):
        assert other.cellwise() is None
