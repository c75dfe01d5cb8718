"""Gmsh OpenCASCADE model of the cord segment, lesion, scar and scaffold (rank 0 only).

:func:`build_model` turns a :class:`~scaffoldfem.config.geometry.GeometryConfig`
into a conforming Gmsh model with physical groups named and numbered exactly as
in :mod:`scaffoldfem.regions`; :func:`scaffoldfem.geometry.sizes.set_mesh_sizes`
then adds the size fields.

How the model is made robust:

* Every region is built as a simple primitive (elliptic cylinder, box,
  ellipsoid, cylinder). Boxes and the grey-matter column overhang the cord, so
  the cord's curved surface is shared with no other input; one ``occ.fragment``
  then cuts everything into conforming pieces. (The grey column is first cut by
  a copy of the lesion + scar zone, so it does not slice the implant; that is
  the one coincident surface, planar except for a contusion.)
* Each piece is classified by which inputs it came from (the fragment map),
  with the precedence documented in :mod:`scaffoldfem.config.geometry`
  (channel > scaffold > cavity > scar > grey > white); pieces outside the cord
  are deleted. No coordinates are used for volumes.
* Facets are found by adjacency (``getAdjacencies``): a surface with one volume
  is on the outside (end caps are the planar ones at z = ±L/2, the rest is
  pia), a surface between implant (scaffold, channel) and host or cavity is
  ``scaffold_interface``.
* The OCC volume of every region is compared with the analytic value before
  meshing (to 1 %: OCC integrates spline geometry only roughly), and there
  must be one lumen per channel; a mismatch means a failed boolean and raises
  :class:`GeometryBuildError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmsh
import numpy as np

from scaffoldfem.config.geometry import GeometryConfig
from scaffoldfem.errors import GeometryBuildError
from scaffoldfem.regions import CELL_TAGS, FACET_TAGS

#: Outline points of the butterfly spline (interpolating, periodic): the spline's
#: area differs from the exact curve by < 1e-6 relative.
N_OUTLINE = 96
_IMPLANT = {"scaffold", "channel"}
_OUTSIDE = {"white_matter", "grey_matter", "scar", "cavity"}
# Relative tolerance of the OCC-vs-analytic volume check. OCC's mass
# integration is itself only ~1e-3 accurate on spline geometry (the dilated
# sphere of a contusion, faces with butterfly edges); a failed boolean loses
# whole pieces, far more than this.
_VOLUME_RTOL = 1e-2


@dataclass
class ModelInfo:
    """What :func:`build_model` made: entity tags per named region, and volumes."""

    cells: dict[str, list[int]] = field(default_factory=dict)
    facets: dict[str, list[int]] = field(default_factory=dict)
    occ_volumes: dict[str, float] = field(default_factory=dict)
    #: Internal surfaces by the (sorted) pair of regions they separate.
    walls: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def _elliptic_disk(a: float, b: float, z: float) -> int:
    # OCC wants the major axis first; rotate the disk's x-axis when b > a.
    occ = gmsh.model.occ
    if a >= b:
        return occ.addDisk(0, 0, z, a, b)
    return occ.addDisk(0, 0, z, b, a, zAxis=[0, 0, 1], xAxis=[0, 1, 0])


def _extrude(surface: int, dz: float) -> int:
    out = gmsh.model.occ.extrude([(2, surface)], 0, 0, dz)
    return next(t for d, t in out if d == 3)


def _outline_disk(geom: GeometryConfig, z: float) -> int:
    grey = geom.grey_matter
    if grey.shape == "ellipse":
        return _elliptic_disk(grey.semi_axis_x, grey.semi_axis_y, z)
    occ = gmsh.model.occ
    theta = np.linspace(0, 2 * np.pi, N_OUTLINE, endpoint=False)
    pts = [occ.addPoint(x, y, z) for x, y in grey.outline(theta)]
    curve = occ.addSpline([*pts, pts[0]])  # same first/last point: periodic spline
    occ.remove([(0, p) for p in pts[1:]])  # interpolation points are not vertices of the curve
    return occ.addPlaneSurface([occ.addCurveLoop([curve])])


def _ellipsoid(a: float, b: float, c: float, zc: float) -> int:
    occ = gmsh.model.occ
    tag = occ.addSphere(0, 0, zc, 1.0)
    occ.dilate([(3, tag)], 0, 0, zc, a, b, c)
    return tag


def _lesion_inputs(geom: GeometryConfig, big: float) -> list[tuple[int, set[str]]]:
    """Lesion, lesion+scar, implant and channel volumes, each tagged with its roles.

    Roles: "lesion" (the injury), "scar_zone" (lesion + scar), "implant"
    (scaffold incl. lumens), "channel" (a lumen).
    """
    occ = gmsh.model.occ
    les, t, g = geom.lesion, geom.scar.thickness, geom.cavity.gap
    z0, z1 = geom.lesion_z()
    if les.kind == "contusion":
        a, b, c, zc = les.semi_axis_x, les.semi_axis_y, les.length / 2, les.center

        def make(grow: float) -> int:
            return _ellipsoid(a + grow, b + grow, c + grow, zc)
    else:
        s = 1 if les.side == "right" else -1

        def make(grow: float) -> int:
            if les.kind == "transection":
                x0, dx = -big, 2 * big
            else:  # half-slab s·x >= -grow, widened across the midline by `grow`
                x0, dx = (-grow, big + grow) if s > 0 else (-big, big + grow)
            return occ.addBox(x0, -big, z0 - grow, dx, 2 * big, (z1 - z0) + 2 * grow)

    out: list[tuple[int, set[str]]] = []
    pieces = _contusion_implant(geom, make(-g)) if les.kind == "contusion" else None
    if g > 0:
        out.append((make(0.0), {"lesion"}))
    elif pieces is None:
        out.append((make(0.0), {"lesion", "implant"}))
    if t > 0:
        out.append((make(t), {"scar_zone"}))
    if pieces is not None:
        out += pieces
    elif g > 0:
        out.append((make(-g), {"implant"}))
    return out + _slab_channels(geom)


def _slab_channels(geom: GeometryConfig) -> list[tuple[int, set[str]]]:
    """Channel cylinders spanning the slab-shaped scaffold (transection, hemisection)."""
    if geom.lesion.kind == "contusion":
        return []
    z0, z1 = geom.lesion_z()
    g, r = geom.cavity.gap, geom.channels.radius
    return [(gmsh.model.occ.addCylinder(x, y, z0 + g, 0, 0, z1 - z0 - 2 * g, r),
             {"channel", "implant"}) for x, y in geom.channel_centres()]


def _contusion_implant(geom: GeometryConfig, implant: int) -> list[tuple[int, set[str]]]:
    """The scaffold ellipsoid cut by the channel cylinders: matrix and lumen pieces.

    Fragmenting the ellipsoid with the cylinders first and keeping only the
    pieces inside it means no channel surface cuts the host, and the global
    fragment meets no coincident spline faces (clipping each cylinder with a
    copy of the ellipsoid instead made it ~2x slower).
    """
    occ = gmsh.model.occ
    les, g, r = geom.lesion, geom.cavity.gap, geom.channels.radius
    centres = geom.channel_centres()
    if not centres:
        return [(implant, {"implant"})]
    c = les.length / 2 - g
    cyls = [(3, occ.addCylinder(x, y, les.center - c - 1, 0, 0, 2 * c + 2, r)) for x, y in centres]
    _, pieces_of = occ.fragment([(3, implant)], cyls)
    inside = {t for d, t in pieces_of[0] if d == 3}
    lumens = {t for pieces in pieces_of[1:] for d, t in pieces if d == 3 and t in inside}
    outside = {t for pieces in pieces_of[1:] for d, t in pieces if d == 3 and t not in inside}
    occ.remove([(3, t) for t in sorted(outside)], recursive=True)
    return [(t, {"implant", "channel"} if t in lumens else {"implant"}) for t in sorted(inside)]


def _classify(roles: set[str]) -> str | None:
    """Region of a fragment piece from the roles of its parents (None: outside)."""
    if "cord" not in roles:
        return None
    if "implant" in roles:
        return "channel" if "channel" in roles else "scaffold"
    if "lesion" in roles:
        return "cavity"
    if "scar_zone" in roles:
        return "scar"
    if "grey" in roles:
        return "grey_matter"
    return "white_matter"


def build_model(geom: GeometryConfig) -> ModelInfo:
    """Build the conforming OCC model and its physical groups in the current Gmsh model.

    Gmsh must be initialised (rank 0 only). The physical groups carry the names
    and tags of :data:`scaffoldfem.regions.CELL_TAGS` / ``FACET_TAGS`` for the
    regions present.

    Args:
        geom: Validated geometry section.

    Returns:
        Entity tags per region and facet group, and the OCC region volumes.

    Raises:
        GeometryBuildError: A region is missing, a region's OCC volume differs
            from :meth:`GeometryConfig.analytic_volumes`, or a facet group is empty.
    """
    occ = gmsh.model.occ
    a, b, L = geom.cord.semi_axis_x, geom.cord.semi_axis_y, geom.cord.length
    big = 2 * max(a, b) + 1.0  # boxes overhang the cord: no shared curved faces
    inputs: list[tuple[int, set[str]]] = [(_extrude(_elliptic_disk(a, b, -L / 2), L), {"cord"})]
    zones = _lesion_inputs(geom, big)
    if geom.grey_matter.enabled:
        # The grey column stops at lesion + scar (which replace it): cut it with a
        # copy of the outermost zone so its surface does not slice the implant.
        outer = ([t for t, r in zones if "scar_zone" in r] or [t for t, r in zones if "lesion" in r]
                 or [t for t, r in zones if "implant" in r])
        column = _extrude(_outline_disk(geom, -L / 2 - 1), L + 2)
        grey, _ = occ.cut([(3, column)], occ.copy([(3, t) for t in outer]))
        inputs += [(t, {"grey"}) for d, t in grey if d == 3]
    inputs += zones

    dimtags = [(3, t) for t, _ in inputs]
    _, pieces_of = occ.fragment(dimtags[:1], dimtags[1:])
    roles: dict[int, set[str]] = {}
    for (_, input_roles), pieces in zip(inputs, pieces_of, strict=True):
        for d, t in pieces:
            if d == 3:
                roles.setdefault(t, set()).update(input_roles)
    region_of = {t: _classify(r) for t, r in roles.items()}
    occ.remove([(3, t) for t, reg in region_of.items() if reg is None], recursive=True)
    occ.synchronize()

    info = ModelInfo()
    for t, reg in sorted(region_of.items()):
        if reg is not None:
            info.cells.setdefault(reg, []).append(t)
    _check_volumes(geom, info)
    _find_facets(geom, info, region_of)
    for name, tags in info.cells.items():
        gmsh.model.addPhysicalGroup(3, tags, tag=CELL_TAGS[name], name=name)
    for name, tags in info.facets.items():
        gmsh.model.addPhysicalGroup(2, tags, tag=FACET_TAGS[name], name=name)
    return info


def _check_volumes(geom: GeometryConfig, info: ModelInfo) -> None:
    want = geom.analytic_volumes()
    expected = set(want) - {"cord"}
    if set(info.cells) != expected:
        raise GeometryBuildError(
            f"regions built {sorted(info.cells)} differ from those expected {sorted(expected)}")
    for name, tags in info.cells.items():
        info.occ_volumes[name] = sum(gmsh.model.occ.getMass(3, t) for t in tags)
    n_channels = len(geom.channel_centres())
    if len(info.cells.get("channel", [])) != n_channels:
        raise GeometryBuildError(f"{len(info.cells.get('channel', []))} channel volumes built "
                                 f"for {n_channels} channels")
    info.occ_volumes["cord"] = sum(info.occ_volumes[k] for k in expected)
    # OCC's mass integration is poor on volumes bounded by the butterfly spline
    # (measured -3.9 % for the grey column while its mesh is right to 0.05 %),
    # so grey and white matter get that much more slack.
    butterfly = geom.grey_matter.shape == "butterfly"
    spline_slack = 0.1 * want.get("grey_matter", 0.0) if butterfly else 0.0
    for name, v in want.items():
        got = info.occ_volumes[name]
        slack = spline_slack if name in ("grey_matter", "white_matter", "cord") else 0.0
        if abs(got - v) > _VOLUME_RTOL * max(v, 1e-3 * want["cord"]) + slack:
            raise GeometryBuildError(f"CAD volume of {name} is {got:.6g} mm³, expected {v:.6g} "
                                     f"mm³ (a boolean operation went wrong)")


def _find_facets(geom: GeometryConfig, info: ModelInfo, region_of: dict[int, str | None]) -> None:
    """Fill ``info.facets`` (the four facet groups) and ``info.walls`` by adjacency."""
    # OCC bounding boxes are padded (~1e-5 mm); every lateral piece is at least
    # a scar/lesion slab long, so 1e-3·L separates flat end caps from pia.
    half, tol = geom.cord.length / 2, 1e-3 * geom.cord.length
    facets: dict[str, list[int]] = {name: [] for name in FACET_TAGS}
    for _, s in gmsh.model.getEntities(2):
        up, _ = gmsh.model.getAdjacencies(2, s)
        regs = [region_of.get(int(v)) for v in up]
        if len(regs) == 1:
            zmin, zmax = gmsh.model.getBoundingBox(2, s)[2::3]
            flat, zmid = abs(zmax - zmin) < tol, (zmin + zmax) / 2
            if flat and abs(zmid + half) < tol:
                facets["rostral_end"].append(s)
            elif flat and abs(zmid - half) < tol:
                facets["caudal_end"].append(s)
            else:
                facets["pia"].append(s)
        elif len(regs) == 2:
            inside = [r in _IMPLANT for r in regs]
            outside = [r in _OUTSIDE for r in regs]
            if (inside[0] and outside[1]) or (inside[1] and outside[0]):
                facets["scaffold_interface"].append(s)
            r0, r1 = sorted(str(r) for r in regs)
            info.walls.setdefault((r0, r1), []).append(s)
    for name, tags in facets.items():
        if not tags:
            raise GeometryBuildError(f"facet group {name} is empty")
    info.facets = facets
