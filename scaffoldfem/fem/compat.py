"""The one place that absorbs DOLFINx API drift (written against DOLFINx 0.11).

Everything here is a thin wrapper over a DOLFINx call whose signature or
location has changed between releases (``create_vector`` took a form before
0.10 and takes a space since; ``interpolation_points`` became a property;
``meshtags`` wants sorted, unique indices; the geometry dofmap became
``dofmaps(0)``). Other modules call these wrappers instead of DOLFINx directly,
so a DOLFINx upgrade is a change to this file only. Point evaluation is in
:mod:`scaffoldfem.fem.sampling`. It also switches off a Python 3.13.0/3.13.1 cache
that keeps UFL forms, and so meshes and MPI communicators, alive
(:func:`uncache_singledispatchmethods`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import ufl
import ufl.algorithms.apply_coefficient_split
import ufl.algorithms.apply_derivatives
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from scaffoldfem.regions import facet_tag

__all__ = [
    "compile_expression",
    "compile_form",
    "create_petsc_vector",
    "facet_dofs",
    "geometry_degree",
    "geometry_dofmap",
    "global_size",
    "integrate",
    "interpolate_expression",
    "interpolation_points",
    "over_every_cell",
    "owned_size",
    "tag_facets",
    "uncache_singledispatchmethods",
]

#: Modules already searched by :func:`uncache_singledispatchmethods`.
_SEARCHED: set[str] = set()


def uncache_singledispatchmethods(prefixes: tuple[str, ...] = ("ufl", "ffcx")) -> int:
    """Switch off the per-instance cache of every ``functools.singledispatchmethod`` of
    the loaded modules named ``prefixes`` (modules not searched before); returns how
    many were switched off.

    Python 3.13.0/3.13.1 cache the bound method in a WeakKeyDictionary whose value (a
    closure over the instance) keeps its key alive (CPython gh-127750; the cache is
    gone in 3.13.2). UFL's derivative and coefficient-split traversers use such
    methods, so every ``ufl.derivative`` (the right-hand-side split of
    :class:`~scaffoldfem.fem.solver.LinearSolver`, a Newton Jacobian) kept its form,
    its mesh and the ~8 communicators the mesh duplicates alive: a long process (a
    sweep in one process, the 2-rank test suite) ran out of MPICH's ~2048 context ids.
    ``_method_cache = None`` is the descriptor's own "no cache" state.
    """
    count = 0
    for name, module in list(sys.modules.items()):
        if name in _SEARCHED or not name.startswith(prefixes) or module is None:
            continue
        _SEARCHED.add(name)
        for obj in list(vars(module).values()):
            if not isinstance(obj, type):
                continue
            for attr in vars(obj).values():
                if (isinstance(attr, functools.singledispatchmethod)
                        and getattr(attr, "_method_cache", None) is not None):
                    attr._method_cache = None
                    count += 1
    return count


uncache_singledispatchmethods()


def create_petsc_vector(V: fem.FunctionSpace):
    """Ghosted PETSc vector laid out like ``V`` (0.10+: takes the space)."""
    import dolfinx.fem.petsc as fpetsc

    return fpetsc.create_vector(V)


def interpolation_points(V: fem.FunctionSpace) -> np.ndarray:
    """Reference interpolation points of ``V`` (a property since 0.10, a method before)."""
    pts = V.element.interpolation_points
    return pts() if callable(pts) else pts


def compile_expression(expr: ufl.core.expr.Expr, V: fem.FunctionSpace) -> fem.Expression:
    """Compile a UFL expression once for interpolation into ``V`` (an FFCx JIT call:
    do it at set-up, not in the time loop)."""
    return fem.Expression(expr, interpolation_points(V))


def interpolate_expression(f: fem.Function, expr: ufl.core.expr.Expr | fem.Expression
                           ) -> fem.Function:
    """Interpolate an expression into ``f`` (in place) and return ``f``; a UFL one is
    compiled first (:func:`compile_expression` keeps it for repeated calls)."""
    if not isinstance(expr, fem.Expression):
        expr = compile_expression(expr, f.function_space)
    f.interpolate(expr)
    f.x.scatter_forward()
    return f


def compile_form(form: ufl.Form | fem.Form, **kwargs) -> fem.Form:
    """Compile a UFL form once (pass through an already compiled one)."""
    if isinstance(form, fem.Form):
        return form
    compiled = fem.form(form, **kwargs)
    uncache_singledispatchmethods()  # FFCx modules loaded by the first compilation
    return compiled


def integrate(form: ufl.Form | fem.Form, comm: MPI.Comm | None = None) -> float:
    """Assemble a scalar functional and sum it over all ranks.

    Args:
        form: A 0-form (UFL or compiled). Compile once with
            :func:`compile_form` when it is evaluated every step.
        comm: Communicator; defaults to the form's mesh communicator.

    Returns:
        The global value (identical on every rank).
    """
    cform = compile_form(form)
    if comm is None:
        comm = cform.mesh.comm
    return float(comm.allreduce(fem.assemble_scalar(cform), op=MPI.SUM))


def tag_facets(msh: dmesh.Mesh, markers: Mapping[str, Callable[[np.ndarray], np.ndarray]],
               *, boundary_only: bool = True) -> dmesh.MeshTags:
    """Facet meshtags from geometric predicates, tagged by region name.

    Later entries win where predicates overlap. Used for box meshes in tests
    and benchmarks; the cord mesh gets its tags from Gmsh.

    Args:
        msh: The mesh.
        markers: Region name (a key of :data:`scaffoldfem.regions.FACET_TAGS`)
            to predicate ``x -> bool array`` (x has shape (3, n)).
        boundary_only: Only consider exterior facets.

    Returns:
        Sorted meshtags of dimension ``tdim - 1``.
    """
    fdim = msh.topology.dim - 1
    msh.topology.create_connectivity(fdim, msh.topology.dim)
    tagged: dict[int, int] = {}
    for name, pred in markers.items():
        if boundary_only:
            facets = dmesh.locate_entities_boundary(msh, fdim, pred)
        else:
            facets = dmesh.locate_entities(msh, fdim, pred)
        tag = facet_tag(name)
        for f in facets:
            tagged[int(f)] = tag
    idx = np.array(sorted(tagged), dtype=np.int32)
    vals = np.array([tagged[i] for i in idx], dtype=np.int32)
    return dmesh.meshtags(msh, fdim, idx, vals)


def facet_dofs(V: fem.FunctionSpace, facet_tags: dmesh.MeshTags,
               names: str | Iterable[str]) -> np.ndarray:
    """Local dofs of ``V`` on the facets of the named regions (owned and ghost).

    ``V`` may be a subspace (``W.sub(i)``); then the dofs index the parent
    space, as :func:`dolfinx.fem.dirichletbc` with ``W.sub(i)`` expects.
    """
    if isinstance(names, str):
        names = [names]
    facets = np.concatenate(
        [facet_tags.find(facet_tag(n)) for n in names] or [np.empty(0, np.int32)]
    ).astype(np.int32)
    return fem.locate_dofs_topological(V, facet_tags.dim, np.unique(facets))


def owned_size(V: fem.FunctionSpace) -> int:
    """Number of owned scalar dofs of ``V`` on this rank (block size included)."""
    return V.dofmap.index_map.size_local * V.dofmap.index_map_bs


def global_size(V: fem.FunctionSpace) -> int:
    """Global number of scalar dofs of ``V``."""
    return V.dofmap.index_map.size_global * V.dofmap.index_map_bs


def geometry_dofmap(msh: dmesh.Mesh) -> np.ndarray:
    """Cell -> geometry-node array (0.11: ``geometry.dofmaps(0)``; before: ``geometry.dofmap``)."""
    geo = msh.geometry
    if hasattr(geo, "dofmaps"):
        dm = geo.dofmaps
        return np.asarray(dm(0) if callable(dm) else dm[0])
    return np.asarray(geo.dofmap)


def geometry_degree(msh: dmesh.Mesh) -> int:
    """Degree of the coordinate element (0.11: ``geometry.cmaps[0]``; before: ``cmap``)."""
    geo = msh.geometry
    cmaps = getattr(geo, "cmaps", None)
    if cmaps is not None:
        return int((cmaps(0) if callable(cmaps) else cmaps[0]).degree)
    return int(geo.cmap.degree)


def over_every_cell(form: fem.Form) -> bool:
    """True if every integral of the compiled ``form`` is a cell integral over the whole
    mesh (``dx``, whatever its quadrature; not ``dx(tag)``, not a facet integral)."""
    if form.integral_types != {fem.IntegralType.cell}:
        return False
    ufcx = form.ufcx_form  # cell integrals first in the UFCx tables
    return all(ufcx.form_integral_ids[j] == -1 for j in range(ufcx.form_integral_offsets[1]))
