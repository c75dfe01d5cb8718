"""The region table of a mesh, and ``scaffoldfem mesh`` which prints it.

:func:`mesh_report` compares region volumes (assembled in DOLFINx) with
:meth:`GeometryConfig.analytic_volumes`, and adds the element quality and timings
from the mesh's ``.json`` sidecar.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaffoldfem.config.geometry import GeometryConfig
from scaffoldfem.config.study import Study
from scaffoldfem.geometry.build import MeshStats
from scaffoldfem.geometry.cache import ensure_mesh
from scaffoldfem.geometry.loading import load_mesh
from scaffoldfem.regions import CELL_TAGS, FACET_TAGS

__all__ = ["MeshReport", "facet_counts", "mesh_command", "mesh_report", "region_cells",
           "region_volumes"]


def region_cells(cell_tags: Any, comm: Any) -> dict[str, int]:
    """Global number of cells per region (owned cells only, summed over ranks)."""
    n_owned = cell_tags.topology.index_map(cell_tags.dim).size_local
    vals = cell_tags.values[cell_tags.indices < n_owned]
    return {name: int(comm.allreduce(int(np.count_nonzero(vals == tag))))
            for name, tag in CELL_TAGS.items()}


def facet_counts(facet_tags: Any, comm: Any) -> dict[str, int]:
    """Global number of facets per facet group."""
    n_owned = facet_tags.topology.index_map(facet_tags.dim).size_local
    vals = facet_tags.values[facet_tags.indices < n_owned]
    return {name: int(comm.allreduce(int(np.count_nonzero(vals == tag))))
            for name, tag in FACET_TAGS.items()}


def region_volumes(mesh: Any, cell_tags: Any) -> dict[str, float]:
    """Global volume (mm³) per cell region, assembled in DOLFINx (one DG0 form).

    The cell volumes come from assembling ∫ v dx for the DG0 test function v
    (one form for all regions, so one JIT compile), summed by tag over the
    owned cells and reduced over ranks.
    """
    import ufl
    from dolfinx import fem

    V = fem.functionspace(mesh, ("DG", 0))
    vec = fem.assemble_vector(fem.form(ufl.TestFunction(V) * ufl.dx))
    n_owned = mesh.topology.index_map(mesh.topology.dim).size_local
    owned = cell_tags.indices < n_owned
    cells, tags = cell_tags.indices[owned], cell_tags.values[owned]
    vol = vec.array[V.dofmap.list[cells, 0]]
    comm = mesh.comm
    return {name: float(comm.allreduce(float(vol[tags == tag].sum())))
            for name, tag in CELL_TAGS.items()}


@dataclass
class MeshReport:
    """Per-region cells and volumes against the analytic values; prints as a table."""

    path: Path
    rows: list[tuple[str, int, float, float]]  # name, cells, volume, analytic (mm³)
    facets: dict[str, int]
    vertices: int
    cells: int
    stats: MeshStats | None

    def errors(self) -> dict[str, float]:
        """Relative volume error per region (and ``cord`` for the total)."""
        return {name: vol / ref - 1 for name, _, vol, ref in self.rows}

    def __str__(self) -> str:
        lines = [f"{'region':<14} {'cells':>9} {'volume mm³':>12} {'analytic mm³':>13} "
                 f"{'rel. error':>10}"]
        for name, n, vol, ref in self.rows:
            err = 100 * (vol / ref - 1)
            lines.append(f"{name:<14} {n:>9} {vol:>12.5f} {ref:>13.5f} {err:>+9.3f}%")
        lines.append("facets: " + ", ".join(f"{k} {v}" for k, v in self.facets.items()))
        line = f"{self.vertices} vertices, {self.cells} cells"
        if self.stats is not None:
            s = self.stats
            line += (f"; quality ({s.quality_measure}) min {s.quality_min:.3f} mean "
                     f"{s.quality_mean:.3f}; meshed in {s.mesh_seconds:.1f} s "
                     f"({s.num_threads} thread{'s' if s.num_threads != 1 else ''}), "
                     f"resolution {s.resolution}")
        lines.append(line)
        return "\n".join(lines)


def mesh_report(geom: GeometryConfig, path: Path | str, mesh: Any, cell_tags: Any,
                facet_tags: Any) -> MeshReport:
    """Region table of a loaded mesh (collective over ``mesh.comm``).

    Args:
        geom: The geometry the mesh was built from (for the analytic volumes).
        path: The mesh file (its ``.json`` sidecar supplies quality and timings).
        mesh, cell_tags, facet_tags: As returned by :func:`load_mesh`.

    Returns:
        A :class:`MeshReport`; ``str(report)`` is the table printed by ``scaffoldfem mesh``.
    """
    comm = mesh.comm
    vols = region_volumes(mesh, cell_tags)
    counts = region_cells(cell_tags, comm)
    want = geom.analytic_volumes()
    rows = [(name, counts[name], vols[name], want[name]) for name in CELL_TAGS if name in want]
    rows.append(("cord (total)", sum(r[1] for r in rows), sum(r[2] for r in rows), want["cord"]))
    stats = MeshStats.load(Path(path).with_suffix(".json")) if comm.rank == 0 else None
    stats = comm.bcast(stats, root=0)
    return MeshReport(path=Path(path), rows=rows, facets=facet_counts(facet_tags, comm),
                      vertices=mesh.geometry.index_map().size_global,
                      cells=mesh.topology.index_map(mesh.topology.dim).size_global, stats=stats)


def mesh_command(study: Study, output: Path | None, comm: Any) -> str:
    """Mesh (or reuse the cached mesh), optionally copy it to ``output``, return the table.

    Args:
        study: Validated study.
        output: Extra path to write the ``.msh`` to (``-o``), or None.
        comm: MPI communicator; meshing happens on rank 0, the report is collective.

    Returns:
        The region table (cells and volume per region against the analytic values,
        element quality), for rank 0 to print.
    """
    path = ensure_mesh(study.geometry, comm)
    if output is not None and comm.rank == 0:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, output)
    mesh, cell_tags, facet_tags = load_mesh(path, comm)
    report = mesh_report(study.geometry, path, mesh, cell_tags, facet_tags)
    where = f"mesh: {path}" + (f" (copied to {output})" if output is not None else "")
    return f"{where}\n{report}"
