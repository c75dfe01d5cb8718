"""Mesh a geometry with Gmsh on one process: the ``.msh`` file and its statistics.

:func:`build_mesh` builds the OCC model (:mod:`scaffoldfem.geometry.occ`) and its
size fields (:mod:`scaffoldfem.geometry.sizes`), meshes it with Gmsh (HXT,
threaded) and writes a binary ``.msh`` (MSH 4.1, physical groups named as in
:mod:`scaffoldfem.regions`, so the name-to-tag table travels with the mesh) plus a
``.json`` sidecar with the :class:`MeshStats` (timings, quality). Both files appear
atomically. :func:`bench_meshing` times it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gmsh
import numpy as np

from scaffoldfem.config.geometry import GeometryConfig
from scaffoldfem.errors import MeshingError
from scaffoldfem.files import atomic_write_text, atomic_write_with
from scaffoldfem.geometry.occ import build_model
from scaffoldfem.geometry.sizes import set_mesh_sizes
from scaffoldfem.mpi import on_rank0

__all__ = ["QUALITY", "MeshStats", "bench_meshing", "build_mesh", "effective_threads",
           "gmsh_session"]

#: Element quality measure reported (Gmsh "gamma": inscribed/circumscribed
#: radius ratio, normalised to 1 for the regular tetrahedron).
QUALITY = "gamma"


@dataclass
class MeshStats:
    """What :func:`build_mesh` measured (also stored as the ``.json`` sidecar)."""

    geometry_hash: str
    resolution: str
    vertices: int
    cells: int
    region_cells: dict[str, int]
    region_volumes: dict[str, float]  # mm³, summed over the Gmsh tetrahedra
    facet_counts: dict[str, int]
    quality_min: float
    quality_mean: float
    cad_seconds: float
    mesh_seconds: float
    total_seconds: float
    num_threads: int
    sizes: dict[str, float] = field(default_factory=dict)
    gmsh_version: str = ""
    quality_measure: str = QUALITY

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> MeshStats | None:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError):
            return None


@contextmanager
def gmsh_session(verbose: bool = False) -> Iterator[None]:
    """Initialise Gmsh if needed (finalising only what we initialised)."""
    own = not gmsh.isInitialized()
    if own:
        gmsh.initialize(interruptible=False)  # no SIGINT handler: safe off the main thread
    gmsh.option.setNumber("General.Terminal", 1 if verbose else 0)
    try:
        yield
    finally:
        if own:
            gmsh.finalize()


def effective_threads(geom: GeometryConfig) -> int:
    """Gmsh threads to use: ``mesh.num_threads``, or every core we may run on."""
    if geom.mesh.num_threads > 0:
        return geom.mesh.num_threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def build_mesh(geom: GeometryConfig, path: Path, *, verbose: bool = False) -> MeshStats:
    """Build the Gmsh model of ``geom``, mesh it and write ``path`` (+ ``.json`` stats).

    Call on one process only (rank 0). The file appears atomically.

    Args:
        geom: Validated geometry section.
        path: Output ``.msh`` file.
        verbose: Let Gmsh print its progress.

    Returns:
        Counts, quality and timings of the new mesh.

    Raises:
        GeometryBuildError: The CAD model is wrong.
        MeshingError: Gmsh failed, or a named region or facet group got no elements.
    """
    path = Path(path)
    threads = effective_threads(geom)
    with gmsh_session(verbose):
        gmsh.model.add(f"scaffoldfem-{geom.geometry_hash()}")
        try:
            t0 = time.perf_counter()
            info = build_model(geom)
            sizes = set_mesh_sizes(geom, info)
            gmsh.option.setNumber("General.NumThreads", threads)
            t1 = time.perf_counter()
            try:
                gmsh.model.mesh.generate(3)
            except Exception as err:
                raise MeshingError(f"Gmsh could not mesh the geometry: {err}") from err
            t2 = time.perf_counter()
            counts, volumes = _group_counts()
            qmin, qmean = _quality()
            _, _, tet_nodes = gmsh.model.mesh.getElements(3)
            used = np.concatenate(tet_nodes).astype(np.int64)
            nodes = int(np.count_nonzero(np.bincount(used)))  # = P1 vertices in DOLFINx
            gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
            gmsh.option.setNumber("Mesh.Binary", 1)
            gmsh.option.setNumber("Mesh.SaveAll", 0)  # only elements of physical groups
            stats = MeshStats(
                geometry_hash=geom.geometry_hash(), resolution=geom.resolution, vertices=nodes,
                cells=sum(counts[3].values()), region_cells=counts[3], region_volumes=volumes,
                facet_counts=counts[2],
                quality_min=qmin, quality_mean=qmean, cad_seconds=t1 - t0, mesh_seconds=t2 - t1,
                total_seconds=time.perf_counter() - t0, num_threads=threads, sizes=sizes,
                gmsh_version=gmsh.__version__)
            # Sidecar first: whoever sees the .msh also finds its stats.
            stats.save(path.with_suffix(".json"))
            atomic_write_with(path, lambda tmp: gmsh.write(str(tmp)))
        finally:
            gmsh.model.remove()
    return stats


def _group_counts() -> tuple[dict[int, dict[str, int]], dict[str, float]]:
    """Elements per physical group and volume per cell region, checked: every
    group non-empty, every tetrahedron tagged exactly once."""
    tags, xyz, _ = gmsh.model.mesh.getNodes()
    x = np.zeros((int(tags.max()) + 1, 3))
    x[tags.astype(np.int64)] = xyz.reshape(-1, 3)
    counts: dict[int, dict[str, int]] = {2: {}, 3: {}}
    volumes: dict[str, float] = {}
    for dim, tag in gmsh.model.getPhysicalGroups():
        name = gmsh.model.getPhysicalName(dim, tag)
        n, vol = 0, 0.0
        for ent in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
            _, elems, nodes = gmsh.model.mesh.getElements(dim, int(ent))
            n += sum(len(e) for e in elems)
            if dim == 3:
                p = x[np.asarray(nodes[0], dtype=np.int64).reshape(-1, 4)]
                e1, e2, e3 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]
                vol += float(np.abs(np.einsum("ij,ij->i", np.cross(e1, e2), e3)).sum()) / 6
        if n == 0:
            raise MeshingError(f"physical group {name} got no elements")
        counts[dim][name] = n
        if dim == 3:
            volumes[name] = vol
    _, elems, _ = gmsh.model.mesh.getElements(3)
    total = sum(len(e) for e in elems)
    if total != sum(counts[3].values()):
        raise MeshingError(f"{total} tetrahedra but {sum(counts[3].values())} tagged by regions")
    return counts, volumes


def _quality() -> tuple[float, float]:
    _, elems, _ = gmsh.model.mesh.getElements(3)
    q = gmsh.model.mesh.getElementQualities(np.concatenate(elems), QUALITY)
    return float(np.min(q)), float(np.mean(q))


def bench_meshing(resolution: str = "fine", geom: GeometryConfig | None = None,
                  num_threads: int | None = None, comm: Any = None) -> dict[str, Any]:
    """Time meshing of the default (or given) geometry at ``resolution``.

    Meshes into a temporary directory (never the cache) on rank 0 of ``comm``
    (other ranks sleep), and returns on every rank a dict with ``seconds`` (Gmsh
    3D meshing of the model, i.e. ``generate(3)``), ``cad_seconds``,
    ``total_seconds`` (CAD + mesh + quality + write), ``vertices``, ``cells``,
    ``num_threads``, ``quality_min``/``quality_mean`` and ``resolution``.
    ``num_threads`` None: the geometry's own (by default one: a reproducible mesh).
    """
    base = (geom or GeometryConfig()).model_dump(mode="json")
    base["resolution"] = resolution
    if num_threads is not None:
        base["mesh"]["num_threads"] = num_threads
    g = GeometryConfig(**base)

    def run() -> dict[str, Any]:
        tmp = Path(tempfile.mkdtemp(prefix="scaffoldfem-bench-"))
        try:
            s = build_mesh(g, tmp / "bench.msh")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {"resolution": resolution, "base_size_mm": g.base_size(),
                "seconds": s.mesh_seconds, "cad_seconds": s.cad_seconds,
                "total_seconds": s.total_seconds, "vertices": s.vertices, "cells": s.cells,
                "num_threads": s.num_threads, "quality_min": s.quality_min,
                "quality_mean": s.quality_mean}

    return on_rank0(comm, run, wrap=MeshingError)
