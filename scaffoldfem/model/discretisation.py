"""What every part of the coupled model shares: the mesh and its spaces, measures,
region arrays, volumes, DG0 helpers and owned-vector algebra.

Per-cell arrays are indexed by *local* cell (owned cells first, then ghosts);
``[: n_owned]`` is the owned part that reductions sum over.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import ufl
from dolfinx import fem, la
from dolfinx import mesh as dmesh
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.errors import SimulationFailed
from scaffoldfem.fem.compat import compile_form, integrate
from scaffoldfem.regions import CELL_TAGS, HOST_REGIONS, cell_tag

#: Regions averaged as "the lesion" (the implant and any gap).
LESION_REGIONS = ("scaffold", "channel", "cavity")


class Discretisation:
    """P1 and DG0 spaces on a tagged mesh, with the helpers the parts share.

    Args:
        mesh: Tetrahedral mesh in mm (cord axis z).
        cell_tags, facet_tags: Region tags (``scaffoldfem.regions``).
    """

    def __init__(self, mesh: dmesh.Mesh, cell_tags: dmesh.MeshTags, facet_tags: dmesh.MeshTags):
        self.mesh, self.comm = mesh, mesh.comm
        self.cell_tags, self.facet_tags = cell_tags, facet_tags
        tdim = mesh.topology.dim
        mesh.topology.create_connectivity(tdim - 1, tdim)
        imap = mesh.topology.index_map(tdim)
        self.n_cells = imap.size_local + imap.num_ghosts
        self.n_owned = imap.size_local
        self.V = fem.functionspace(mesh, ("Lagrange", 1))
        self.Q = fem.functionspace(mesh, ("DG", 0))
        self.n_owned_dofs = self.V.dofmap.index_map.size_local
        self.qdof = self.Q.dofmap.list[:, 0]  # cell -> DG0 dof
        # DOLFINx numbers DG0 dofs by cell; when it does, whole-array copies replace
        # the gathers and scatters through ``qdof`` (a step sets and reads ~20 of them).
        self._q_identity = bool(np.array_equal(self.qdof, np.arange(len(self.qdof))))
        self.dx = ufl.Measure("dx", domain=mesh, subdomain_data=cell_tags)
        self.ds = ufl.Measure("ds", domain=mesh, subdomain_data=facet_tags)
        self.dS = ufl.Measure("dS", domain=mesh, subdomain_data=facet_tags)
        self.region = np.zeros(self.n_cells, dtype=np.int32)
        self.region[cell_tags.indices] = cell_tags.values
        self.volumes = {
            name: integrate(1.0 * self.dx(tag), self.comm) for name, tag in CELL_TAGS.items()
        }
        self.has = {name: v > 0 for name, v in self.volumes.items()}
        self.scaffold = self.mask(("scaffold",))
        self.host = self.mask(HOST_REGIONS)
        self.cell_volume = self._cell_volumes()

    # ------------------------------------------------------------------ cells
    def mask(self, names: Iterable[str]) -> np.ndarray:
        """Cells of the named regions."""
        return np.isin(self.region, [cell_tag(n) for n in names])

    def dg0(self, name: str, values: np.ndarray | float = 0.0) -> fem.Function:
        """A DG0 function set cell by cell (values indexed by local cell)."""
        f = fem.Function(self.Q, name=name)
        self.set_cells(f, values)
        return f

    def set_cells(self, f: fem.Function, values: np.ndarray | float) -> None:
        """Set a DG0 function from per-cell values (owned and ghost cells)."""
        if self._q_identity:
            f.x.array[: self.n_cells] = values
        else:
            f.x.array[self.qdof] = values
        f.x.scatter_forward()  # ghosts take their owners' values, whatever was passed

    def cells_of(self, f: fem.Function) -> np.ndarray:
        """Per-cell values of a DG0 function (a new array, never a view)."""
        if self._q_identity:
            return f.x.array[: self.n_cells].copy()
        return f.x.array[self.qdof]

    def _cell_volumes(self) -> np.ndarray:
        f = fem.Function(self.Q)
        v = ufl.TestFunction(self.Q)
        vec = fem.assemble_vector(fem.form(v * ufl.dx(domain=self.mesh)))
        f.x.array[:] = vec.array
        f.x.scatter_forward()
        return self.cells_of(f).copy()

    def cell_midpoints(self) -> np.ndarray:
        """Midpoints (n_cells, 3) of the local cells (owned and ghost), mm."""
        cells = np.arange(self.n_cells, dtype=np.int32)
        return dmesh.compute_midpoints(self.mesh, self.mesh.topology.dim, cells)

    # ------------------------------------------------------------------ P1 algebra
    def owned_vector(self, form: Any) -> np.ndarray:
        """Assemble a linear form, add ghost contributions to owners, return owned part."""
        vec = fem.assemble_vector(compile_form(form))
        vec.scatter_reverse(la.InsertMode.add)
        return vec.array[: vec.index_map.size_local * vec.block_size].copy()

    def dot(self, w: np.ndarray, f: fem.Function) -> float:
        """Local part of ``w · f`` over owned dofs (sum it over ranks)."""
        return float(w @ f.x.array[: len(w)])

    def check_concentration(self, f: fem.Function, name: str, t: float, tolerance: float) -> None:
        """Raise :class:`SimulationFailed` on NaN/Inf or a negative value beyond
        ``tolerance`` × the field's maximum (collective, same decision on every rank)."""
        a = f.x.array[: self.n_owned_dofs]
        lo = self.comm.allreduce(float(a.min(initial=np.inf)), op=MPI.MIN)
        hi = self.comm.allreduce(float(np.abs(a).max(initial=0.0)), op=MPI.MAX)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise SimulationFailed(name, t, "NaN/Inf in the solution")
        if lo < -tolerance * max(hi, 1e-30) and hi > 1e-12:
            raise SimulationFailed(
                name,
                t,
                f"negative concentration {lo:.3g} ng/mL "
                f"(max {hi:.3g}); reduce time.dt or refine the mesh",
            )
