"""The closed-form weighted P1 mass (``LinearSolver(mass_rhs=...)``): the same
right-hand side and solution as assembling the form, a form it does not describe
refused, serially and on any number of ranks."""

from __future__ import annotations

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

import scaffoldfem  # noqa: F401
from scaffoldfem.fem.mass_action import split_mass
from scaffoldfem.fem.solver import LinearSolver


def _problem(dirichlet: bool = False):
    msh = mesh.create_box(MPI.COMM_WORLD, [[0, 0, 0], [1, 0.6, 0.8]], [7, 5, 6],
                          mesh.CellType.tetrahedron)
    V = fem.functionspace(msh, ("Lagrange", 1))
    alpha = fem.Function(fem.functionspace(msh, ("DG", 0)))
    alpha.interpolate(lambda x: 0.3 + 0.6 * (x[0] > 0.5) + 0.2 * x[1])
    c_old, src = fem.Function(V, name="c_old"), fem.Function(V)
    c_old.interpolate(lambda x: np.exp(-4 * ((x[0] - 0.4) ** 2 + x[2] ** 2)))
    src.interpolate(lambda x: 1.0 + x[1])
    dt = fem.Constant(msh, 0.25)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = (alpha / dt * u * v + 0.05 * ufl.inner(ufl.grad(u), ufl.grad(v))) * ufl.dx
    L = (alpha * c_old / dt + src) * v * ufl.dx
    bcs = []
    if dirichlet:
        msh.topology.create_connectivity(2, 3)
        facets = mesh.locate_entities_boundary(msh, 2, lambda x: np.isclose(x[2], 0.0))
        bcs = [fem.dirichletbc(0.5, fem.locate_dofs_topological(V, 2, facets), V)]
    return V, alpha, c_old, dt, a, L, bcs


@pytest.mark.parametrize("dirichlet", [False, True])
def test_closed_form_old_level_gives_the_assembled_rhs_and_solution(dirichlet):
    """The old level applied in closed form: the right-hand side agrees with DOLFINx's
    assembly of the whole form to rounding, also after α and Δt changed (it reads
    them at every solve), and so does the solution."""
    V, alpha, c_old, dt, a, L, bcs = _problem(dirichlet)
    u_ref, u = fem.Function(V), fem.Function(V)
    ref = LinearSolver(a, L, u_ref, bcs, field="ref", guess_levels=0,
                       petsc_options={"ksp_rtol": 1e-12})
    ours = LinearSolver(a, L, u, bcs, field="ours", guess_levels=0,
                        petsc_options={"ksp_rtol": 1e-12},
                        mass_rhs=[(c_old, alpha, lambda: 1.0 / float(dt.value))])
    assert ours.L is not None  # the source stays an assembled form
    for step in range(3):
        if step == 2:  # α and Δt move: both must be read afresh
            alpha.x.array[:] *= 1.0 + 0.5 * np.sin(np.arange(alpha.x.array.size))
            alpha.x.scatter_forward()
            dt.value = 0.1
            ref.invalidate(), ours.invalidate()
        b_ref, b = ref.assemble_rhs().copy(), ours.assemble_rhs().copy()
        scale = b_ref.norm()
        b.axpy(-1.0, b_ref)
        assert b.norm() < 1e-13 * scale, step
        ref.solve(), ours.solve()
        assert np.allclose(u.x.array, u_ref.x.array, rtol=1e-9, atol=1e-12 * scale)
        c_old.x.array[:] = u.x.array
        for x in (b_ref, b):
            x.destroy()
    ref.destroy(), ours.destroy()


def test_a_term_that_is_not_the_weighted_mass_is_refused():
    """Told a wrong weight (a different α), or a term with a gradient in it, the
    split refuses: the closed form never stands in for another form."""
    V, alpha, c_old, dt, _a, L, _ = _problem()
    other = fem.Function(alpha.function_space)
    other.x.array[:] = alpha.x.array * 1.1
    with pytest.raises(ValueError, match="not the weighted P1 mass"):
        split_mass(L, [(c_old, other, lambda: 1.0 / float(dt.value))], {})
    v = ufl.TestFunction(V)
    L2 = L + 0.01 * ufl.inner(ufl.grad(c_old), ufl.grad(v)) * ufl.dx
    with pytest.raises(ValueError, match="not the weighted P1 mass"):
        split_mass(L2, [(c_old, alpha, lambda: 1.0 / float(dt.value))], {})
    rest, terms = split_mass(L, [(c_old, alpha, lambda: 1.0 / float(dt.value))], {})
    assert rest is not None and len(terms) == 1  # the source remains
