"""Meshes: build on rank 0, cache by geometry hash, load distributed, report.

The public meshing API in one import; each part lives in its own module:

* :mod:`scaffoldfem.geometry.build` - :func:`build_mesh` meshes a geometry with Gmsh
  and writes the ``.msh`` and its :class:`MeshStats`; :func:`bench_meshing` times it.
* :mod:`scaffoldfem.geometry.cache` - :func:`ensure_mesh` returns the cached mesh of
  a geometry on every rank, meshing it on rank 0 first if absent.
* :mod:`scaffoldfem.geometry.loading` - :func:`load_mesh` reads the file on rank 0
  and distributes it over ``comm``.
* :mod:`scaffoldfem.geometry.report` - :func:`mesh_report` compares region volumes
  (assembled in DOLFINx) with :meth:`GeometryConfig.analytic_volumes`.
"""

from __future__ import annotations

from scaffoldfem.geometry.build import MeshStats, bench_meshing, build_mesh, gmsh_session
from scaffoldfem.geometry.cache import (
    builder_fingerprint,
    cache_dir,
    cached_mesh_path,
    ensure_mesh,
    mesh_cache_path,
    prune_cache,
)
from scaffoldfem.geometry.loading import load_mesh
from scaffoldfem.geometry.report import (
    MeshReport,
    facet_counts,
    mesh_report,
    region_cells,
    region_volumes,
)

__all__ = [
    "MeshReport",
    "MeshStats",
    "bench_meshing",
    "build_mesh",
    "builder_fingerprint",
    "cache_dir",
    "cached_mesh_path",
    "ensure_mesh",
    "facet_counts",
    "gmsh_session",
    "load_mesh",
    "mesh_cache_path",
    "mesh_report",
    "prune_cache",
    "region_cells",
    "region_volumes",
]
