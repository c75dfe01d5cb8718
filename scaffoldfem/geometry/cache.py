"""The mesh cache: one ``.msh`` per geometry, built once on rank 0 and shared.

* :func:`mesh_cache_path` keys meshes by :meth:`GeometryConfig.geometry_hash` plus
  :func:`builder_fingerprint` (so a changed builder never serves a stale mesh) in
  ``meshes/cache`` (or ``$SCAFFOLDFEM_MESH_CACHE``); files appear atomically
  (temporary name + rename), so racing processes are harmless.
* :func:`ensure_mesh` meshes on rank 0 of a communicator while the other ranks
  sleep (they do not spin, so Gmsh gets every core), then shares the path.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import gmsh

from scaffoldfem.config.geometry import GeometryConfig
from scaffoldfem.errors import MeshingError
from scaffoldfem.geometry.build import build_mesh
from scaffoldfem.mpi import on_rank0

__all__ = ["CACHE_ENV", "DEFAULT_CACHE", "builder_fingerprint", "cache_dir", "cached_mesh_path",
           "ensure_mesh", "mesh_cache_path", "prune_cache"]

#: Default cache directory (relative to the working directory).
DEFAULT_CACHE = Path("meshes/cache")
#: Environment variable overriding the cache directory.
CACHE_ENV = "SCAFFOLDFEM_MESH_CACHE"
#: The modules whose source decides what mesh a geometry gets, or whether it is
#: accepted (the volume check against the analytic values): part of the cache key.
BUILDER_MODULES = tuple(f"scaffoldfem.{m}" for m in (
    "config.geometry", "config.geometry_sections", "config.geometry_fit",
    "config.geometry_volumes", "geometry.occ", "geometry.sizes", "geometry.build"))


def cache_dir(cache: Path | str | None = None) -> Path:
    """The cache directory: ``cache``, else ``$SCAFFOLDFEM_MESH_CACHE``, else meshes/cache."""
    return Path(cache if cache is not None else os.environ.get(CACHE_ENV, DEFAULT_CACHE))


@functools.cache
def builder_fingerprint() -> str:
    """Digest of the code that turns a geometry into a mesh (the source of
    :data:`BUILDER_MODULES` and the Gmsh version): part of the cache key, so editing
    the builder never serves a stale cached mesh."""
    h = hashlib.sha256(gmsh.__version__.encode())
    for name in BUILDER_MODULES:
        h.update(Path(importlib.util.find_spec(name).origin).read_bytes())
    return h.hexdigest()[:8]


def mesh_cache_path(geom: GeometryConfig, cache: Path | str | None = None) -> Path:
    """Where the cached mesh of ``geom`` lives (it may not exist yet):
    ``<cache>/<geometry_hash>-<builder_fingerprint>.msh``."""
    return cache_dir(cache) / f"{geom.geometry_hash()}-{builder_fingerprint()}.msh"


def prune_cache(cache: Path | str | None = None) -> int:
    """Delete cached meshes made by another builder version; return how many.

    They can never be served again (their key has another
    :func:`builder_fingerprint`), and each is up to tens of MB.
    """
    keep = f"-{builder_fingerprint()}"
    removed = 0
    root = cache_dir(cache)
    for p in root.glob("*-*.*") if root.is_dir() else []:
        # Hidden names are temporary files of a build in progress: leave them.
        if p.suffix in (".msh", ".json") and not p.stem.endswith(keep) \
                and not p.name.startswith("."):
            p.unlink(missing_ok=True)
            removed += p.suffix == ".msh"
    return removed


def cached_mesh_path(geom: GeometryConfig, cache: Path | str | None = None,
                     *, verbose: bool = False) -> Path:
    """Return the cached mesh of ``geom``, meshing it first if absent (one process).

    A sweep over non-geometric parameters reuses one file. Two processes that
    race both mesh and rename into place; the result is a complete file either way.
    """
    path = mesh_cache_path(geom, cache)
    if not path.is_file():
        build_mesh(geom, path, verbose=verbose)
    return path


def ensure_mesh(geom: GeometryConfig, comm: Any, cache: Path | str | None = None,
                *, verbose: bool = False) -> Path:
    """Mesh on rank 0 if the cache lacks this geometry; return the path on every rank.

    Raises:
        MeshingError: On every rank, when rank 0 failed (message from rank 0).
    """
    return Path(on_rank0(
        comm, lambda: str(cached_mesh_path(geom, cache, verbose=verbose).resolve()),
        wrap=MeshingError))
