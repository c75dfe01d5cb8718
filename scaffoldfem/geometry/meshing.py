"""Meshes: build on rank 0, cache by geometry hash, load distributed, report.

* :func:`build_mesh` meshes a geometry with Gmsh (HXT, threaded) and writes a
  binary ``.msh`` (MSH 4.1, physical groups named as in
  :mod:`scaffoldfem.regions`, so the name-to-tag table travels with the mesh)
  plus a ``.json`` sidecar with the :class:`MeshStats` (timings, quality).
* :func:`cached_mesh_path` keys meshes by :meth:`GeometryConfig.geometry_hash`
  (plus :func:`builder_fingerprint`, so a changed builder never serves a stale
  mesh) in ``meshes/cache`` (or ``$SCAFFOLDFEM_MESH_CACHE``); files appear atomically
  (temporary name + rename), so racing processes are harmless.
* :func:`ensure_mesh` does that on rank 0 of a communicator while the other
  ranks sleep (they do not spin, so Gmsh gets every core), then shares the path.
* :func:`load_mesh` reads the file on rank 0 and distributes it over ``comm``.
* :func:`mesh_report` compares region volumes (assembled in DOLFINx) with
  :meth:`GeometryConfig.analytic_volumes`.
"""

from __future__ import annotations

import functools
import hashlib
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

import numpy as np

from scaffoldfem.config.geometry import GeometryConfig
from scaffoldfem.errors import MeshingError
from scaffoldfem.files import atomic_write_text, atomic_write_with
from scaffoldfem.mpi import on_rank0
from scaffoldfem.regions import CELL_TAGS, FACET_TAGS

#: Default cache directory (relative to the working directory).
DEFAULT_CACHE = Path("meshes/cache")
#: Environment variable overriding the cache directory.
CACHE_ENV = "SCAFFOLDFEM_MESH_CACHE"
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
    import gmsh

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
        scaffoldfem.geometry.occ.GeometryBuildError: The CAD model is wrong.
        MeshingError: Gmsh failed, or a named region or facet group got no elements.
    """
    import gmsh

    from scaffoldfem.geometry.occ import build_model, set_mesh_sizes

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
    import gmsh

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
    import gmsh

    _, elems, _ = gmsh.model.mesh.getElements(3)
    q = gmsh.model.mesh.getElementQualities(np.concatenate(elems), QUALITY)
    return float(np.min(q)), float(np.mean(q))


# -- cache -------------------------------------------------------------------------


def cache_dir(cache: Path | str | None = None) -> Path:
    """The cache directory: ``cache``, else ``$SCAFFOLDFEM_MESH_CACHE``, else meshes/cache."""
    return Path(cache if cache is not None else os.environ.get(CACHE_ENV, DEFAULT_CACHE))


@functools.cache
def builder_fingerprint() -> str:
    """Digest of the code that turns a geometry into a mesh (the builder modules'
    source and the Gmsh version): part of the cache key, so editing the builder
    never serves a stale cached mesh."""
    import gmsh

    import scaffoldfem.config.geometry as cfg
    import scaffoldfem.geometry.occ as geo

    h = hashlib.sha256(gmsh.__version__.encode())
    for mod in (cfg, geo):
        h.update(Path(mod.__file__).read_bytes())
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


# -- loading -------------------------------------------------------------------------


def load_mesh(path: Path | str, comm: Any, *, ghost_mode: str = "none"):
    """Read a scaffoldfem ``.msh`` on rank 0 and distribute it over ``comm``.

    Like ``dolfinx.io.gmsh.read_from_msh`` but the cell tags come straight from
    the mesh's original cell numbering instead of a second distributed
    vertex-matching pass (that pass cost ~40 % of the load time).

    Args:
        path: Mesh file written by :func:`build_mesh`.
        comm: MPI communicator (e.g. ``MPI.COMM_WORLD`` or ``MPI.COMM_SELF``).
        ghost_mode: "none" or "shared_facet" (a layer of ghost cells).

    Returns:
        ``(mesh, cell_tags, facet_tags)``; tags are the values of
        :data:`scaffoldfem.regions.CELL_TAGS` / ``FACET_TAGS``.

    Raises:
        FileNotFoundError, ValueError: On every rank, for a missing or foreign file.
    """
    import dolfinx.mesh
    from dolfinx.cpp.mesh import CellType
    from dolfinx.graph import adjacencylist
    from dolfinx.io.gmsh import (
        cell_perm_array,
        distribute_entity_data,
        extract_geometry,
        extract_topology_and_markers,
        ufl_mesh,
    )

    path = Path(path)
    gm = dolfinx.mesh.GhostMode.shared_facet if ghost_mode == "shared_facet" else \
        dolfinx.mesh.GhostMode.none
    tet, tri = 4, 2  # Gmsh element types
    x = np.empty((0, 3))
    cells = np.empty((0, 4), dtype=np.int64)
    facets = np.empty((0, 3), dtype=np.int64)
    facet_values = np.empty(0, dtype=np.int32)
    header: tuple[str | None, Any, Any] = (None, None, None)
    if comm.rank == 0:
        import gmsh

        with gmsh_session():
            gmsh.model.add("scaffoldfem-load")
            try:
                gmsh.merge(str(path))
                x = extract_geometry(gmsh.model)
                topo, groups = extract_topology_and_markers(gmsh.model)
                if set(topo) != {tet, tri}:
                    raise ValueError(f"expected tetrahedra and triangles, found Gmsh element "
                                     f"types {sorted(topo)}")
                _check_groups(groups, path)
                perm = cell_perm_array(CellType.tetrahedron, 4)
                cells = np.asarray(topo[tet]["topology"], dtype=np.int64)[:, perm]
                facets = np.asarray(topo[tri]["topology"], dtype=np.int64)
                facet_values = np.asarray(topo[tri]["cell_data"], dtype=np.int32)
                header = (None, groups, np.asarray(topo[tet]["cell_data"], dtype=np.int8))
            except Exception as err:  # re-raised on every rank below
                header = (f"cannot load mesh {path}: {err}", None, None)
            finally:
                gmsh.model.remove()
    error, groups, cell_values = comm.bcast(header, root=0)
    if error:
        raise (FileNotFoundError if not path.is_file() else ValueError)(error)
    msh = dolfinx.mesh.create_mesh(comm, cells, ufl_mesh(tet, 3, dtype=np.float64), x,
                                   dolfinx.mesh.create_cell_partitioner(gm, 2))
    tdim = msh.topology.dim
    imap = msh.topology.index_map(tdim)
    local = np.arange(imap.size_local + imap.num_ghosts, dtype=np.int32)
    original = np.asarray(msh.topology.original_cell_index)[: len(local)]
    cell_tags = dolfinx.mesh.meshtags(msh, tdim, local, cell_values[original].astype(np.int32))
    cell_tags.name = "cell_tags"
    ents, vals = distribute_entity_data(msh, tdim - 1, facets, facet_values)
    msh.topology.create_connectivity(tdim - 1, tdim)
    facet_tags = dolfinx.mesh.meshtags_from_entities(msh, tdim - 1, adjacencylist(ents),
                                                     vals.astype(np.int32, copy=False))
    facet_tags.name = "facet_tags"
    return msh, cell_tags, facet_tags


def _check_groups(groups: dict[str, Any], path: Path) -> None:
    """Refuse a file whose physical groups are not the table of scaffoldfem.regions."""
    for name, group in groups.items():
        table = CELL_TAGS if group.dim == 3 else FACET_TAGS
        if table.get(name) != group.tag:
            raise ValueError(f"{path}: physical group {name!r} (dim {group.dim}, tag {group.tag}) "
                             "is not in scaffoldfem.regions; was it written by scaffoldfem?")


# -- report --------------------------------------------------------------------------


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


# -- benchmark -------------------------------------------------------------------------


def bench_meshing(resolution: str = "fine", geom: GeometryConfig | None = None,
                  num_threads: int = 0, comm: Any = None) -> dict[str, Any]:
    """Time meshing of the default (or given) geometry at ``resolution``.

    Meshes into a temporary directory (never the cache) on rank 0 of ``comm``
    (other ranks sleep), and returns on every rank a dict with ``seconds`` (Gmsh
    3D meshing of the model, i.e. ``generate(3)``), ``cad_seconds``,
    ``total_seconds`` (CAD + mesh + quality + write), ``vertices``, ``cells``,
    ``num_threads``, ``quality_min``/``quality_mean`` and ``resolution``.
    """
    base = (geom or GeometryConfig()).model_dump(mode="json")
    base["resolution"] = resolution
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
