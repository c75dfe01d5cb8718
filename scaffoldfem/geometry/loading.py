"""Read a scaffoldfem ``.msh`` on rank 0 and distribute it over a communicator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gmsh
import numpy as np

from scaffoldfem.geometry.build import gmsh_session
from scaffoldfem.regions import CELL_TAGS, FACET_TAGS

__all__ = ["is_scaffoldfem_mesh", "load_mesh"]

#: Bytes read to find a mesh's physical names (they follow the 3-line format header).
_HEAD_BYTES = 1 << 16


def load_mesh(path: Path | str, comm: Any, *, ghost_mode: str = "none"):
    """Read a scaffoldfem ``.msh`` on rank 0 and distribute it over ``comm``.

    Like ``dolfinx.io.gmsh.read_from_msh`` but the cell tags come straight from
    the mesh's original cell numbering instead of a second distributed
    vertex-matching pass (that pass cost ~40 % of the load time).

    Args:
        path: Mesh file written by :func:`scaffoldfem.geometry.build.build_mesh`.
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


def is_scaffoldfem_mesh(path: Path | str) -> bool:
    """True if ``path`` is a Gmsh file whose physical groups are exactly names and
    tags of :mod:`scaffoldfem.regions` (what scaffoldfem writes), read from its head
    only (ASCII in binary files too), so ``mesh -o`` can tell its own output from an
    unrelated file it must not replace."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return False
    if not head.startswith(b"$MeshFormat"):
        return False
    start, end = head.find(b"$PhysicalNames"), head.find(b"$EndPhysicalNames")
    if start < 0 or end < start:
        return False
    lines = head[start:end].decode("ascii", "replace").splitlines()[2:]
    groups = []
    for line in lines:
        parts = line.split(maxsplit=2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return False
        groups.append((int(parts[0]), int(parts[1]), parts[2].strip().strip('"')))
    return bool(groups) and all(
        (CELL_TAGS if dim == 3 else FACET_TAGS).get(name) == tag for dim, tag, name in groups)
