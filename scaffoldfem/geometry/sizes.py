"""Element sizes of the cord model: Gmsh size fields and meshing options (rank 0 only).

:func:`mesh_sizes` says how fine each zone is meshed (from ``geometry.resolution``
and ``geometry.mesh``); :func:`set_mesh_sizes` puts those sizes on the model that
:func:`scaffoldfem.geometry.occ.build_model` made, as cheap Box and Constant fields.
"""

from __future__ import annotations

import gmsh

from scaffoldfem.config.geometry import GeometryConfig
from scaffoldfem.config.geometry_mesh import implant_box
from scaffoldfem.geometry.occ import ModelInfo

__all__ = ["mesh_sizes", "set_mesh_sizes"]


def _constant(sizes: float, *, surfaces: list[int] = (), volumes: list[int] = ()) -> int:
    f = gmsh.model.mesh.field
    tag = f.add("Constant")
    f.setNumber(tag, "VIn", sizes)
    f.setNumber(tag, "VOut", 1e22)  # no constraint elsewhere (Min ignores it)
    f.setNumbers(tag, "SurfacesList" if surfaces else "VolumesList", list(surfaces or volumes))
    f.setNumber(tag, "IncludeBoundary", 1)
    return tag


def mesh_sizes(geom: GeometryConfig) -> dict[str, float]:
    """The target element sizes (mm) of each zone, from ``resolution`` and ``mesh``
    (defined in :func:`scaffoldfem.config.geometry_mesh.mesh_sizes`, which the
    cell-count estimate of ``scaffoldfem check`` uses too)."""
    return geom.mesh_sizes()


def _box(size: float, far: float, lo: tuple[float, float, float], hi: tuple[float, float, float],
         thickness: float) -> int:
    f = gmsh.model.mesh.field
    tag = f.add("Box")
    for k, v in {"VIn": size, "VOut": far, "XMin": lo[0], "YMin": lo[1], "ZMin": lo[2],
                 "XMax": hi[0], "YMax": hi[1], "ZMax": hi[2], "Thickness": thickness}.items():
        f.setNumber(tag, k, v)
    return tag


def set_mesh_sizes(geom: GeometryConfig, info: ModelInfo) -> dict[str, float]:
    """Define the background size field and the meshing options.

    Zones (see :func:`mesh_sizes`): h in the lesion zone (lesion + scar, whole
    cross-section), grading linearly to h·far_factor over ``mesh.transition``;
    h·interface_factor in the scaffold's bounding box, grading out over half the
    transition (this refines the host side of the scaffold interface);
    h·channel_factor in the channel lumens; caps on the channel walls, the pia
    and the grey/white border for the faceting error.

    Only cheap fields are used (Box, Constant): a Distance field to the
    interface made HXT's refinement 5x slower, and Gmsh's curvature sizing asks
    for ~0.03 mm all along the butterfly column (a million cells for nothing).

    Returns:
        The sizes used (mm), for the report.
    """
    m = geom.mesh
    sizes = mesh_sizes(geom)
    a, b = geom.cord.semi_axis_x, geom.cord.semi_axis_y
    t = geom.scar.thickness
    z0, z1 = geom.lesion_z()
    # Lesion + scar (the contusion ellipsoid spans the same z range).
    fields = [_box(sizes["base"], sizes["far"], (-2 * a, -2 * b, z0 - t), (2 * a, 2 * b, z1 + t),
                   m.transition)]
    lo, hi = implant_box(geom.cord, geom.lesion, geom.cavity.gap)
    fields.append(_box(sizes["interface"], sizes["far"], lo, hi, 0.5 * m.transition))
    if "channel" in info.cells:
        fields.append(_constant(sizes["channel"], volumes=info.cells["channel"]))
        fields.append(_constant(sizes["channel_wall"],
                                surfaces=info.walls.get(("channel", "scaffold"), [])))
    fields.append(_constant(sizes["pia"], surfaces=info.facets["pia"]))
    grey = info.walls.get(("grey_matter", "white_matter"), [])
    if grey:
        fields.append(_constant(sizes["grey_wall"], surfaces=grey))

    f = gmsh.model.mesh.field
    fmin = f.add("Min")
    f.setNumbers(fmin, "FieldsList", fields)
    f.setAsBackgroundMesh(fmin)

    opt = gmsh.option.setNumber
    opt("Mesh.MeshSizeFromPoints", 0)
    opt("Mesh.MeshSizeFromCurvature", 0)
    opt("Mesh.MeshSizeExtendFromBoundary", 1)
    opt("Mesh.MeshSizeMax", sizes["far"])
    opt("Mesh.Algorithm", 6)  # Frontal-Delaunay 2D
    opt("Mesh.Algorithm3D", 10)  # HXT: parallel Delaunay
    opt("Mesh.ElementOrder", 1)
    return sizes
