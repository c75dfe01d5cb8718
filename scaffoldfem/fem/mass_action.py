"""A cell-weighted P1 mass matrix applied in closed form (for
:class:`~scaffoldfem.fem.solver.LinearSolver`'s ``mass_rhs``).

The old level of an implicit transport step, ``∫ (α/Δt) c_old v dx`` with α a cell
(DG0) field, is the only volume term left in the right-hand side of ROS and the MMPs
once their sources are precomputed matrices; α moves every step, so its matrix would
be re-assembled every step. On a linear tetrahedron the P1 mass matrix is exactly

    M_c = |c| / 20 · (1 + δ_ij)      (the integrand w f v is quadratic: exact),

so the term's vector is, cell by cell, ``w_c |c| / 20 · (Σ_j f_j + f_i)``: one pass
over the cells. Measured on the medium cord mesh (2 ranks): 2.3 ms against 22-27 ms
for DOLFINx's vector assembly of the same form, equal to 5e-15 relative.

:func:`split_mass` takes such terms out of a linear form and checks, numerically,
that the form's dependence on each ``f`` is the weighted mass it was told: a term the
closed form does not describe is refused, not approximated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numba
import numpy as np
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI
from petsc4py import PETSc
from ufl.algorithms import expand_derivatives

from scaffoldfem.fem.compat import compile_form, geometry_degree, geometry_dofmap

__all__ = ["MassTerm", "WeightedMass", "add_mass", "split_mass"]

#: ``(f, w, scale)``: the term ``∫ scale() · w · f v dx`` of a linear form, with ``f`` a
#: P1 Function, ``w`` a DG0 Function and ``scale`` giving a number at each call (1/Δt).
MassTerm = tuple[fem.Function, fem.Function, Callable[[], float]]

#: Largest relative difference between the form and the closed form that
#: :func:`split_mass` accepts (rounding is ~1e-15).
CHECK_RTOL = 1.0e-10


@numba.njit(cache=True, nogil=True)
def _add_weighted_mass(dofs, w, f, y):  # pragma: no cover (compiled)
    for c in range(dofs.shape[0]):
        d0, d1, d2, d3 = dofs[c, 0], dofs[c, 1], dofs[c, 2], dofs[c, 3]
        s = f[d0] + f[d1] + f[d2] + f[d3]
        wc = w[c]
        y[d0] += wc * (s + f[d0])
        y[d1] += wc * (s + f[d1])
        y[d2] += wc * (s + f[d2])
        y[d3] += wc * (s + f[d3])


class WeightedMass:
    """``y += scale · M_w f``: the P1 mass matrix weighted by a DG0 field, applied.

    Only the owned cells contribute (as in DOLFINx's assembly); contributions to
    ghost dofs reach their owners with the vector's reverse scatter.

    Args:
        V: A scalar P1 space on an affine tetrahedral mesh.
        w: The DG0 weight (read at each :meth:`add`).
        scale: Its factor at each call.
    """

    def __init__(self, V: fem.FunctionSpace, w: fem.Function, scale: Callable[[], float]):
        msh = V.mesh
        tdim = msh.topology.dim
        if (msh.topology.cell_type != dmesh.CellType.tetrahedron or geometry_degree(msh) != 1
                or V.dofmap.index_map_bs != 1 or V.dofmap.dof_layout.num_dofs != 4):
            raise ValueError("the closed-form mass needs a scalar P1 space on affine tetrahedra")
        n = msh.topology.index_map(tdim).size_local
        self.dofs = np.ascontiguousarray(V.dofmap.list[:n], dtype=np.int32)
        p = msh.geometry.x[geometry_dofmap(msh)[:n]]
        e1, e2, e3 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]
        self._v20 = np.abs(np.einsum("ij,ij->i", np.cross(e1, e2), e3)) / 120.0  # |c|/20
        self._wdof = np.ascontiguousarray(w.function_space.dofmap.list[:n, 0])
        self.w, self.scale = w, scale

    def add(self, f: np.ndarray, y: np.ndarray) -> None:
        """Add the term's vector for the local P1 values ``f`` (owned and ghost) into
        ``y`` (the local form of a vector, before its reverse scatter)."""
        wc = self.w.x.array[self._wdof] * (float(self.scale()) * self._v20)
        _add_weighted_mass(self.dofs, wc, f, y)


def split_mass(L: ufl.Form, terms: Sequence[MassTerm], kw: dict
               ) -> tuple[ufl.Form | None, list[tuple[WeightedMass, fem.Function]]]:
    """``L = Σ scale_j M_{w_j} f_j + rest``: the rest of ``L`` and each term's closed form.

    Raises:
        ValueError: If ``L``'s part in some ``f_j`` is not ``∫ scale_j w_j f_j v dx``
            (compared on a random ``f_j``), or ``L`` is not a UFL form.
    """
    if not isinstance(L, ufl.Form):
        raise ValueError("mass_rhs needs L as a UFL form")
    rest, out = L, []
    for f, w, scale in terms:
        V = f.function_space
        part = expand_derivatives(ufl.derivative(L, f, ufl.TrialFunction(V)))
        mass = WeightedMass(V, w, scale)
        g = fem.Function(V)
        rng = np.random.default_rng(7 + V.mesh.comm.rank)
        g.x.array[:] = rng.uniform(0.5, 1.5, g.x.array.size)
        g.x.scatter_forward()
        ref = fem.assemble_vector(compile_form(ufl.action(part, g), **kw)).array
        mine = np.zeros_like(ref)
        mass.add(g.x.array, mine)
        comm = V.mesh.comm
        err = comm.allreduce(float(np.abs(ref - mine).max(initial=0.0)), op=MPI.MAX)
        rel = err / max(comm.allreduce(float(np.abs(ref).max(initial=0.0)), op=MPI.MAX), 1e-300)
        if not rel <= CHECK_RTOL:
            raise ValueError(f"the linear form's part in {f.name} is not the weighted P1 "
                             f"mass given for it (relative difference {rel:.1e})")
        out.append((mass, f))
        rest = ufl.replace(rest, {f: 0.0})
    return (None if rest.empty() else rest), out


def add_mass(terms: Sequence[tuple[WeightedMass, fem.Function]],
             substitute: Mapping[fem.Function, fem.Function], b: PETSc.Vec) -> None:
    """Add every term's vector into the ghosted ``b`` (before its reverse scatter), each
    of ``f`` or of the Function ``substitute`` gives in its place."""
    if not terms:
        return
    with b.localForm() as loc:
        y = loc.array_w
        for term, f in terms:
            term.add(substitute.get(f, f).x.array, y)
