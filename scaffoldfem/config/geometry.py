"""The ``[geometry]`` study section: cord, grey matter, lesion, scar, cavity, channels, mesh.

Coordinates (shared by every module): the cord axis is z, the rostral end at
z = -L/2 and the caudal end at z = +L/2; x is lateral (right +x), y
dorsoventral (dorsal +y); lengths in mm.

Regions, and which one wins where the shapes overlap (the Gmsh builder in
:mod:`scaffoldfem.geometry.occ` applies exactly this rule, and
:meth:`GeometryConfig.analytic_volumes` integrates it):

1. **lesion** (z0 = center - length/2, z1 = center + length/2):

   * ``transection``: the whole cross-section for z0 <= z <= z1;
   * ``hemisection``: the half of that slab on ``side`` (right: x >= 0);
   * ``contusion``: the ellipsoid with semi-axes (semi_axis_x, semi_axis_y,
     length/2) centred on the axis at z = center.

   All host tissue inside the lesion is gone. The **scaffold** fills the lesion
   shrunk by the cavity gap ``g`` (slab ends moved in by g, hemisection midline
   face moved by g, contusion semi-axes reduced by g); what is left of the
   lesion is **cavity** (fluid). **Channel** lumens are cylinders parallel to z
   through the whole scaffold, clipped to it.
2. **scar**: host tissue within ``scar.thickness`` t of the lesion, white and
   grey alike: the slab widened by t at both ends (transection); the half-slab
   widened by t at both ends and by t across the midline (hemisection); the
   ellipsoid with all semi-axes grown by t (contusion; a scaled, not an exactly
   parallel, shell).
3. **grey matter**: the butterfly (or ellipse) column outside lesion and scar.
4. **white matter**: the rest of the cord.

The parts are in :mod:`scaffoldfem.config.geometry_sections`, the cross-field
checks and the channel layout in :mod:`scaffoldfem.config.geometry_fit`, the
analytic volumes in :mod:`scaffoldfem.config.geometry_volumes`.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from scaffoldfem.config.base import Section
from scaffoldfem.config.geometry_fit import (
    ScaffoldSection,
    cavity_problems,
    channel_layout,
    grey_problems,
    lesion_problems,
    raise_problems,
)
from scaffoldfem.config.geometry_mesh import BYTES_PER_CELL, estimate_cells, mesh_sizes
from scaffoldfem.config.geometry_sections import (
    CavityConfig,
    ChannelsConfig,
    CordConfig,
    GreyMatterConfig,
    LesionConfig,
    MeshConfig,
    ScarConfig,
)
from scaffoldfem.config.geometry_volumes import analytic_volumes, present_regions
from scaffoldfem.units import parse_quantity

__all__ = ["BUILDER_VERSION", "DEFAULT_MAX_CELLS", "RESOLUTIONS", "CavityConfig",
           "ChannelsConfig", "CordConfig", "GeometryConfig", "GreyMatterConfig", "LesionConfig",
           "MeshConfig", "ScaffoldSection", "ScarConfig"]

#: Bump when the Gmsh builder changes in a way that changes meshes: it salts
#: :meth:`GeometryConfig.geometry_hash`, so stale cached meshes are not reused.
BUILDER_VERSION = 1

#: Named resolutions: base mesh size h (mm; the size in host tissue next to the
#: lesion) and elements per full turn on curved borders (channel walls, pia).
#: "fine" gives ~200k P1 vertices on the baseline geometry (meshes/README.md).
RESOLUTIONS: dict[str, tuple[float, int]] = {
    "coarse": (0.2, 24),
    "medium": (0.12, 32),
    "fine": (0.075, 44),
}

#: Largest mesh accepted unless ``geometry.max_cells`` says otherwise: ~4x "fine"
#: (1.2M cells), ~15 GB for a run at :data:`BYTES_PER_CELL`.
DEFAULT_MAX_CELLS = 5_000_000


class GeometryConfig(Section):
    """Cord segment, lesion and implant, and how finely to mesh them.

    Cross-field problems (a grey matter outline leaving the cord, a lesion
    longer than the segment, channels that overlap each other or the scaffold
    border or leave walls thinner than ``channels.min_wall``) are refused at
    validation with the amount, e.g. ``geometry.channels: channels 2 and 3
    overlap by 0.05 mm``. A resolution whose mesh would exceed ``max_cells``
    (estimated from the sizes, before any meshing) is refused under
    ``geometry.resolution`` with the estimate.
    """

    cord: CordConfig = CordConfig()
    grey_matter: GreyMatterConfig = GreyMatterConfig()
    lesion: LesionConfig = LesionConfig()
    scar: ScarConfig = ScarConfig()
    cavity: CavityConfig = CavityConfig()
    channels: ChannelsConfig = ChannelsConfig()
    mesh: MeshConfig = MeshConfig()
    # Largest mesh (cells) a study may ask for; the estimate from the geometry and
    # the resolution is checked against it before meshing. Raise it deliberately
    # for a big machine (a run needs ~3 kB per cell).
    max_cells: int = Field(DEFAULT_MAX_CELLS, ge=1)
    # "coarse" | "medium" | "fine" (~200k P1 vertices) | a base size, e.g. "0.08 mm".
    resolution: str = "medium"

    # -- validation ---------------------------------------------------------
    # Field validators see the fields declared before them (info.data), so each
    # problem is reported under its own key and all of them at once.

    @field_validator("resolution")
    @classmethod
    def _check_resolution(cls, v: str, info: ValidationInfo) -> str:
        v = v.strip()
        if v in RESOLUTIONS:
            h, n = RESOLUTIONS[v]
        else:
            try:
                h = parse_quantity(v, "mm")
            except PydanticCustomError:
                raise PydanticCustomError(
                    "geometry_resolution",
                    "expected one of {names} or a mesh size such as '0.08 mm' (got {got})",
                    {"names": ", ".join(RESOLUTIONS), "got": repr(v)}) from None
            if h <= 0:
                raise PydanticCustomError("geometry_resolution",
                                          "mesh size must be > 0 (got {got})", {"got": v})
            n = _curvature_points_for(h)
        d = info.data
        if all(k in d for k in ("cord", "grey_matter", "lesion", "scar", "cavity", "channels",
                                "mesh", "max_cells")):
            cells = _estimate(d, h, n)
            if not cells <= d["max_cells"]:
                raise PydanticCustomError("geometry_size", "{msg}", {"msg": _too_big(
                    v, cells, d["max_cells"])})
        return v

    @field_validator("grey_matter")
    @classmethod
    def _check_grey(cls, v: GreyMatterConfig, info: ValidationInfo) -> GreyMatterConfig:
        cord = info.data.get("cord")
        if cord is not None and v.enabled:
            raise_problems(grey_problems(cord, v))
        return v

    @field_validator("lesion")
    @classmethod
    def _check_lesion(cls, v: LesionConfig, info: ValidationInfo) -> LesionConfig:
        cord = info.data.get("cord")
        if cord is not None:
            raise_problems(lesion_problems(cord, v, 0.0))
        return v

    @field_validator("scar")
    @classmethod
    def _check_scar(cls, v: ScarConfig, info: ValidationInfo) -> ScarConfig:
        cord, lesion = info.data.get("cord"), info.data.get("lesion")
        if cord is not None and lesion is not None and v.thickness > 0:
            raise_problems(lesion_problems(cord, lesion, v.thickness, what="lesion plus scar"))
        return v

    @field_validator("cavity")
    @classmethod
    def _check_cavity(cls, v: CavityConfig, info: ValidationInfo) -> CavityConfig:
        cord, lesion = info.data.get("cord"), info.data.get("lesion")
        if cord is not None and lesion is not None:
            raise_problems(cavity_problems(cord, lesion, v.gap))
        return v

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, v: ChannelsConfig, info: ValidationInfo) -> ChannelsConfig:
        d = info.data
        if all(k in d for k in ("cord", "lesion", "cavity")):
            section = ScaffoldSection.of(d["cord"], d["lesion"], d["cavity"].gap)
            raise_problems(channel_layout(section, v)[1])
        return v

    @model_validator(mode="after")
    def _check_all(self) -> GeometryConfig:
        # Field validators cover construction; this catches assignments
        # (validate_assignment) that break a cross-field rule.
        problems = (grey_problems(self.cord, self.grey_matter) if self.grey_matter.enabled else [])
        problems += lesion_problems(self.cord, self.lesion, self.scar.thickness,
                                    what="lesion plus scar")
        problems += cavity_problems(self.cord, self.lesion, self.cavity.gap)
        problems += [f"channels: {p}" for p in
                     channel_layout(self.scaffold_section(), self.channels)[1]]
        raise_problems(problems)
        return self

    # -- derived quantities -------------------------------------------------

    def base_size(self) -> float:
        """Base mesh size h (mm) from ``resolution``."""
        if self.resolution in RESOLUTIONS:
            return RESOLUTIONS[self.resolution][0]
        return parse_quantity(self.resolution, "mm")

    def curvature_points(self) -> int:
        """Elements per full turn on curved borders: ``mesh.curvature_points``, else
        the resolution's preset, else (explicit size h) medium's 32 scaled by
        0.12 mm / h, within [16, 96]."""
        if self.mesh.curvature_points is not None:
            return self.mesh.curvature_points
        if self.resolution in RESOLUTIONS:
            return RESOLUTIONS[self.resolution][1]
        return _curvature_points_for(self.base_size())

    def mesh_sizes(self) -> dict[str, float]:
        """Target element size (mm) of each zone (:func:`~.geometry_mesh.mesh_sizes`)."""
        return mesh_sizes(self.base_size(), self.curvature_points(), self.mesh, self.cord,
                          self.channels.radius)

    def estimate_cells(self) -> float:
        """Expected cell count of the mesh, from the sizes alone (no meshing; within
        7 % on the meshes it was fitted to, see :mod:`~.geometry_mesh`)."""
        return estimate_cells(self.cord, self.grey_matter, self.lesion, self.scar.thickness,
                              self.cavity.gap, self.channel_centres(), self.channels.radius,
                              self.mesh_sizes(), self.mesh.transition)

    def lesion_z(self) -> tuple[float, float]:
        """(z0, z1) of the lesion."""
        half = self.lesion.length / 2
        return self.lesion.center - half, self.lesion.center + half

    def scaffold_section(self) -> ScaffoldSection:
        """The scaffold's cross-section (mid-plane for a contusion)."""
        return ScaffoldSection.of(self.cord, self.lesion, self.cavity.gap)

    def channel_centres(self) -> list[tuple[float, float]]:
        """(x, y) of every channel axis (mm), in channel-number order."""
        return channel_layout(self.scaffold_section(), self.channels)[0]

    def regions(self) -> list[str]:
        """Cell regions present in this geometry (names from scaffoldfem.regions), decided
        from the configuration alone: no meshing, no volume quadrature."""
        return present_regions(self.grey_matter.enabled, self.scar.thickness,
                               self.channels.count, self.cavity.gap)

    def geometry_hash(self) -> str:
        """Hex digest of the resolved geometry (everything that changes the mesh).

        ``max_cells`` is left out: it changes what is allowed, not the mesh. Of
        ``mesh.num_threads`` only whether it is 1 counts: one Gmsh thread meshes the
        same way every time (measured: the coarse cord 27212 vertices each time; with 2
        threads 27069, 27086, 27100), so a mesh made by several must not stand in for
        it. :data:`BUILDER_VERSION` is mixed in.
        """
        data = self.model_dump(mode="json")
        data["mesh"]["reproducible"] = data["mesh"].pop("num_threads", 1) == 1
        data.pop("max_cells", None)
        data["builder_version"] = BUILDER_VERSION
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def analytic_volumes(self) -> dict[str, float]:
        """Exact volume (mm³) of the cord (key ``"cord"``) and of every region present.

        Closed forms, except where a shape has none: grey matter cut by a
        hemisection plane or a contusion ellipsoid, and channels clipped by a
        contusion ellipsoid, use converged quadrature of the exact shapes
        (relative error < 1e-7), independent of any mesh.
        """
        return analytic_volumes(self.cord, self.grey_matter, self.lesion, self.scar.thickness,
                                self.cavity.gap, self.channel_centres(), self.channels.radius)


def _curvature_points_for(h: float) -> int:
    """Elements per turn for an explicit base size h: medium's 32 scaled by 0.12 mm / h,
    within [16, 96]."""
    h_medium, n_medium = RESOLUTIONS["medium"]
    return int(min(max(round(n_medium * h_medium / h), 16), 96))


_ESTIMATES: dict[str, float] = {}


def _estimate(d: dict, h: float, n: int) -> float:
    """Estimated cells from validated sections ``d`` (the field validator's view).

    Remembered per geometry: a sweep validates thousands of cases that mostly
    share one or a few geometries, and an estimate takes ~30 ms.
    """
    parts = ("cord", "grey_matter", "lesion", "scar", "cavity", "channels", "mesh")
    key = json.dumps([h, n, *(d[k].model_dump(mode="json") for k in parts)], sort_keys=True)
    if key not in _ESTIMATES:
        if len(_ESTIMATES) > 1024:
            _ESTIMATES.clear()
        _ESTIMATES[key] = _estimate_uncached(d, h, n)
    return _ESTIMATES[key]


def _estimate_uncached(d: dict, h: float, n: int) -> float:
    mesh: MeshConfig = d["mesh"]
    channels: ChannelsConfig = d["channels"]
    n = mesh.curvature_points if mesh.curvature_points is not None else n
    section = ScaffoldSection.of(d["cord"], d["lesion"], d["cavity"].gap)
    centres = channel_layout(section, channels)[0]
    sizes = mesh_sizes(h, n, mesh, d["cord"], channels.radius)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return estimate_cells(d["cord"], d["grey_matter"], d["lesion"], d["scar"].thickness,
                              d["cavity"].gap, centres, channels.radius, sizes, mesh.transition)


def _too_big(resolution: str, cells: float, limit: int) -> str:
    def num(x: float, unit: str) -> str:
        if not math.isfinite(x):
            return f"more than 1e300 {unit}"
        return f"about {x:,.0f} {unit}" if x < 1e9 else f"about {x:.1e} {unit}"

    return (f"at resolution {resolution!r} this geometry would mesh into "
            f"{num(cells, 'cells')} (estimated before meshing; a run needs "
            f"{num(cells * BYTES_PER_CELL / 1e9, 'GB')} at ~{BYTES_PER_CELL / 1000:.0f} kB "
            f"per cell), over geometry.max_cells = {limit:,}: choose a coarser resolution "
            "(or fewer mesh.curvature_points), or raise geometry.max_cells deliberately")
