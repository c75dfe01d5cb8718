"""The set-up check of :mod:`scaffoldfem.fem.cell_operator`'s closed-form matrices:
DOLFINx's assembly of the form and the closed form must agree, with every
coefficient set to random values.

What the check establishes is a property of the symbolic structure of the form and
of the closed form's items (on any mesh of affine tetrahedra, which the closed forms
require anyway), not of the mesh: so a structure that passed once in this process is
not assembled twice again (each check costs one DOLFINx assembly, ~0.05 s a field
on a 6 mm test cord, ~0.2-0.5 s on medium). The structure is the UFL form's
signature and its JIT module's name (which also hashes the compiler's options)
with the items' own UFL signatures, their coefficients numbered by their place in
the compiled form. Forms with an integral over part of the mesh (a tag) or over
facets, or reading the coordinates (any geometric quantity), are always checked:
such a term can vanish on one mesh and not another; so is a form whose UFL source
is not given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc
from ufl.algorithms.signature import compute_expression_signature
from ufl.classes import GeometricQuantity
from ufl.corealg.traversal import unique_pre_traversal
from ufl.domain import extract_domains

from scaffoldfem.fem.compat import over_every_cell

__all__ = ["CHECK_RTOL", "check_closed_form"]

#: Largest relative difference from DOLFINx's assembly accepted at set-up.
CHECK_RTOL = 1.0e-10

#: Structures (see :func:`_structure`) whose check passed in this process.
_PASSED: set[tuple] = set()


def _structure(op: Any) -> tuple | None:
    """What the check depends on, or None when it may depend on the mesh (or the UFL
    form is not known)."""
    form, source = op.form, op.source
    if source is None or not over_every_cell(form):
        return None
    if any(isinstance(node, GeometricQuantity) for itg in source.integrals()
           for node in unique_pre_traversal(itg.integrand())):
        return None  # e.g. a term in x: it can vanish on one mesh and not on another
    cf = form._cpp_object
    at = {id(o): i for i, o in enumerate(cf.coefficients)}
    at_c = {id(o): i for i, o in enumerate(cf.constants)}
    number: dict[Any, int] = {d: 0 for e in op.items for d in extract_domains(e)}
    for j, f in enumerate(op.functions):
        number[f] = at.get(id(f._cpp_object), len(at) + j)
    for j, c in enumerate(op.constants):
        number[c] = at_c.get(id(c._cpp_object), len(at_c) + j)
    # The JIT module's name hashes the form compiler's options too (the UFCx signature
    # is the UFL form's only).
    return (type(op).__name__, source.signature(), form.module.__name__,
            tuple(compute_expression_signature(e, number) for e in op.items))


def check_closed_form(op: Any, bcs: Sequence[fem.DirichletBC]) -> None:
    """Collective: compare the closed-form matrix ``op`` (a ``_ClosedForm``) with
    DOLFINx's assembly of its form, with the coefficients set to random positive
    values (a term whose field is zero at set-up, a sink before binding, is compared
    too), then put back. The form may hold no coefficient or constant the closed form
    does not read. Skipped for a structure that passed before on every rank. The
    matrix holds the check's values until its next ``assemble``.

    Raises:
        ValueError: The matrices differ (``op.mat`` is destroyed).
    """
    cf = op.form._cpp_object
    comm = op.form.mesh.comm
    mine = {id(o._cpp_object) for o in (*op.functions, *op.constants)}
    if any(id(o) not in mine for o in (*cf.coefficients, *cf.constants)):
        op.mat.destroy()
        raise ValueError("the bilinear form is not the closed form given for it "
                         "(it reads a coefficient the closed form does not)")
    key = _structure(op)
    # Collective decision: a rank that checked this structure on its own (a sweep case
    # on one rank) must not skip a collective assembly the others enter.
    if comm.allreduce(key is not None and key in _PASSED, op=MPI.LAND):
        return
    rel = _difference(op, bcs)
    if not rel <= CHECK_RTOL:
        op.mat.destroy()
        raise ValueError("the bilinear form is not the closed form given for it "
                         f"(relative difference {rel:.1e})")
    if key is not None:
        _PASSED.add(key)


def _difference(op: Any, bcs: Sequence[fem.DirichletBC]) -> float:
    """Collective: relative Frobenius difference of the two assemblies at random
    coefficient values (the largest over the ranks)."""
    rng = np.random.default_rng(20 + op.form.mesh.comm.rank)
    saved = [f.x.array.copy() for f in op.functions]
    saved_c = [np.array(c.value, copy=True) for c in op.constants]
    for f in op.functions:
        f.x.array[:] = rng.uniform(0.5, 1.5, f.x.array.size)
        f.x.scatter_forward()
    for c in op.constants:
        c.value = np.asarray(c.value) * 0 + rng.uniform(0.5, 1.5, np.shape(c.value))
    try:
        ref = op.reference_assembly(bcs).copy()
        closed = op.assemble(bcs)
        fro = PETSc.NormType.FROBENIUS
        scale = ref.norm(fro)
        ref.axpy(-1.0, closed)
        rel = ref.norm(fro) / max(scale, 1e-300)
        ref.destroy()
    finally:
        for f, v in zip(op.functions, saved, strict=True):
            f.x.array[:] = v
        for c, v in zip(op.constants, saved_c, strict=True):
            c.value = v
    return op.form.mesh.comm.allreduce(rel, op=MPI.MAX)
