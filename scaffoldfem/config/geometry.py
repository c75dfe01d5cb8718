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
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from scaffoldfem.config.base import Section
from scaffoldfem.units import Q, parse_quantity

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

Length = Q("mm")
PosLength = Q("mm", gt=0)
NonNegLength = Q("mm", ge=0)

# Angular quadrature points for areas of intersected star-shaped regions; the
# error (< 1e-8 relative) is far below anything a mesh resolves.
_N_ANGLE = 1 << 15


class CordConfig(Section):
    """Spinal cord segment: elliptic cylinder along z."""

    # Rat thoracic cord is ~2.5-3 mm wide (background.md; e.g. Watson, Paxinos &
    # Kayalioglu, The Spinal Cord, 2009): 2.8 mm lateral, 2.2 mm dorsoventral.
    semi_axis_x: PosLength = "1.4 mm"
    semi_axis_y: PosLength = "1.1 mm"
    # Modelled segment: the 2-mm lesion plus ~4 mm of host on each side (a design
    # choice: far enough that the end conditions barely touch the lesion).
    length: PosLength = "10 mm"


class GreyMatterConfig(Section):
    """Grey matter column (full length, removed where lesion and scar are).

    The butterfly outline is the polar curve ``r(θ) = 1 + lateral_bulge·cos 2θ
    - horns·cos 4θ`` scaled by the two semi-axes (x = semi_axis_x·r·cosθ,
    y = semi_axis_y·r·sinθ): four horns on the diagonals, a waist at the
    dorsal and ventral midline. Its area is π·ax·ay·(1 + (horns² +
    lateral_bulge²)/2) exactly. ``shape = "ellipse"`` drops both terms.
    """

    enabled: bool = True
    shape: Literal["butterfly", "ellipse"] = "butterfly"
    # Approximate shape after the rat thoracic sections of Watson, Paxinos &
    # Kayalioglu (The Spinal Cord, 2009): grey matter about half the cord width;
    # these values give 24 % of the cross-section (our estimate, not a measurement).
    semi_axis_x: PosLength = "0.7 mm"
    semi_axis_y: PosLength = "0.5 mm"
    horns: float = Field(0.3, ge=0.0, le=0.6)  # horn protrusion, fraction of mean radius
    lateral_bulge: float = Field(0.1, ge=0.0, le=0.5)  # wider laterally than at the midline

    def amplitudes(self) -> tuple[float, float]:
        """Return (lateral_bulge, horns) as used by the outline (zero for an ellipse)."""
        if self.shape == "ellipse":
            return 0.0, 0.0
        return self.lateral_bulge, self.horns

    def outline(self, theta: np.ndarray) -> np.ndarray:
        """Points (n, 2) of the outline at curve parameters ``theta``."""
        g, h = self.amplitudes()
        r = 1.0 + g * np.cos(2 * theta) - h * np.cos(4 * theta)
        return np.column_stack([self.semi_axis_x * r * np.cos(theta),
                                self.semi_axis_y * r * np.sin(theta)])

    def radial(self, phi: np.ndarray) -> np.ndarray:
        """Distance from the axis to the outline in the physical direction ``phi``."""
        ax, ay = self.semi_axis_x, self.semi_axis_y
        theta = np.arctan2(ax * np.sin(phi), ay * np.cos(phi))
        g, h = self.amplitudes()
        r = 1.0 + g * np.cos(2 * theta) - h * np.cos(4 * theta)
        return r * np.hypot(ax * np.cos(theta), ay * np.sin(theta))

    def area(self) -> float:
        """Exact cross-section area (mm²)."""
        g, h = self.amplitudes()
        return math.pi * self.semi_axis_x * self.semi_axis_y * (1 + (g * g + h * h) / 2)


class LesionConfig(Section):
    """The injury (see the module docstring for the exact shapes)."""

    kind: Literal["transection", "hemisection", "contusion"] = "transection"
    # Complete transection of 2 mm (background.md: 2-mm complete transection or
    # ablation is the standard rat model, e.g. Olson 2009, Koffler 2019).
    length: PosLength = "2 mm"
    center: Length = "0 mm"  # z of the lesion centre; 0 = middle of the segment
    side: Literal["left", "right"] = "right"  # hemisection: removed half (right = +x)
    # Contusion cavity semi-axes (z semi-axis = length/2): a central cavity
    # spanning most of the grey matter with a spared subpial rim, as after a
    # moderate impact (assumption; treat as a parameter).
    semi_axis_x: PosLength = "1.0 mm"
    semi_axis_y: PosLength = "0.8 mm"


class ScarConfig(Section):
    """Glial scar rim in host tissue around the lesion."""

    # Astrocytic scar borders are a narrow band a few cells thick around the
    # lesion core (Wanner et al. 2013 J Neurosci 33:12870); 0.2 mm is an
    # assumption within that order. 0 = no scar region.
    thickness: NonNegLength = "0.2 mm"


class CavityConfig(Section):
    """Fluid gap between scaffold and host (0 = scaffold apposed to the host)."""

    gap: NonNegLength = "0 mm"  # default: implant fills the lesion (design choice)


class ChannelsConfig(Section):
    """Longitudinal channels (lumens) through the scaffold."""

    # Multichannel PLGA scaffolds with 7 channels of 450 µm (Olson 2009, Acta
    # Biomater; background.md); 3D-printed alternatives use 200 µm (Koffler 2019).
    count: int = Field(7, ge=0)
    diameter: PosLength = "450 um"
    layout: Literal["hexagonal", "rings", "explicit"] = "hexagonal"
    # Centre-to-centre pitch (hexagonal grid / ring step): 0.7 mm leaves 250 µm
    # walls between 450 µm channels (design choice).
    spacing: PosLength = "0.7 mm"
    # layout = "explicit": one [x, y] pair of lengths per channel, e.g.
    # centres = [["0 mm", "0 mm"], ["0.7 mm", "0 mm"]].
    centres: list[tuple[Length, Length]] | None = None
    # Thinnest wall accepted between channels or to the scaffold border: a
    # printability/handling limit (assumption), not a literature value.
    min_wall: NonNegLength = "0.1 mm"

    @property
    def radius(self) -> float:
        return self.diameter / 2


class MeshConfig(Section):
    """Mesh size controls (the one-word setting is ``geometry.resolution``).

    Factors scale the base size h of ``geometry.resolution``; they are design
    choices tuned so every region volume is within 1 % at "medium".
    """

    interface_factor: float = Field(0.75, gt=0.0, le=1.0)  # scaffold and its host interface
    channel_factor: float = Field(0.75, gt=0.0, le=1.0)  # channel lumens
    far_factor: float = Field(2.5, ge=1.0, le=20.0)  # far from the lesion
    transition: PosLength = "1.5 mm"  # distance over which sizes grade
    # Elements per full turn on curved borders (channel walls, pia): the faceting
    # error of the enclosed area is ~(2π/N)²/6. None = from the resolution.
    curvature_points: int | None = Field(None, ge=8, le=400)
    num_threads: int = Field(0, ge=0)  # Gmsh threads; 0 = all cores (not in the hash)


class GeometryConfig(Section):
    """Cord segment, lesion and implant, and how finely to mesh them.

    Cross-field problems (a grey matter outline leaving the cord, a lesion
    longer than the segment, channels that overlap each other or the scaffold
    border or leave walls thinner than ``channels.min_wall``) are refused at
    validation with the amount, e.g. ``geometry.channels: channels 2 and 3
    overlap by 0.05 mm``.
    """

    cord: CordConfig = CordConfig()
    grey_matter: GreyMatterConfig = GreyMatterConfig()
    lesion: LesionConfig = LesionConfig()
    scar: ScarConfig = ScarConfig()
    cavity: CavityConfig = CavityConfig()
    channels: ChannelsConfig = ChannelsConfig()
    # "coarse" | "medium" | "fine" (~200k P1 vertices) | a base size, e.g. "0.08 mm".
    resolution: str = "medium"
    mesh: MeshConfig = MeshConfig()

    # -- validation ---------------------------------------------------------
    # Field validators see the fields declared before them (info.data), so each
    # problem is reported under its own key and all of them at once.

    @field_validator("resolution")
    @classmethod
    def _check_resolution(cls, v: str) -> str:
        if v.strip() in RESOLUTIONS:
            return v.strip()
        try:
            size = parse_quantity(v, "mm")
        except PydanticCustomError:
            raise PydanticCustomError(
                "geometry_resolution",
                "expected one of {names} or a mesh size such as '0.08 mm' (got {got!r})",
                {"names": ", ".join(RESOLUTIONS), "got": v}) from None
        if size <= 0:
            raise PydanticCustomError("geometry_resolution", "mesh size must be > 0 (got {got})",
                                      {"got": v})
        return v

    @field_validator("grey_matter")
    @classmethod
    def _check_grey(cls, v: GreyMatterConfig, info: ValidationInfo) -> GreyMatterConfig:
        cord = info.data.get("cord")
        if cord is not None and v.enabled:
            _raise(_grey_problems(cord, v))
        return v

    @field_validator("lesion")
    @classmethod
    def _check_lesion(cls, v: LesionConfig, info: ValidationInfo) -> LesionConfig:
        cord = info.data.get("cord")
        if cord is not None:
            _raise(_lesion_problems(cord, v, 0.0))
        return v

    @field_validator("scar")
    @classmethod
    def _check_scar(cls, v: ScarConfig, info: ValidationInfo) -> ScarConfig:
        cord, lesion = info.data.get("cord"), info.data.get("lesion")
        if cord is not None and lesion is not None and v.thickness > 0:
            _raise(_lesion_problems(cord, lesion, v.thickness, what="lesion plus scar"))
        return v

    @field_validator("cavity")
    @classmethod
    def _check_cavity(cls, v: CavityConfig, info: ValidationInfo) -> CavityConfig:
        cord, lesion = info.data.get("cord"), info.data.get("lesion")
        if cord is not None and lesion is not None:
            _raise(_cavity_problems(cord, lesion, v.gap))
        return v

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, v: ChannelsConfig, info: ValidationInfo) -> ChannelsConfig:
        d = info.data
        if all(k in d for k in ("cord", "lesion", "cavity")):
            section = ScaffoldSection.of(d["cord"], d["lesion"], d["cavity"].gap)
            _raise(_channel_problems(section, v)[1])
        return v

    @model_validator(mode="after")
    def _check_all(self) -> GeometryConfig:
        # Field validators cover construction; this catches assignments
        # (validate_assignment) that break a cross-field rule.
        problems = (_grey_problems(self.cord, self.grey_matter) if self.grey_matter.enabled else [])
        problems += _lesion_problems(self.cord, self.lesion, self.scar.thickness,
                                     what="lesion plus scar")
        problems += _cavity_problems(self.cord, self.lesion, self.cavity.gap)
        problems += [f"channels: {p}" for p in
                     _channel_problems(self.scaffold_section(), self.channels)[1]]
        _raise(problems)
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
        h_medium, n_medium = RESOLUTIONS["medium"]
        return int(min(max(round(n_medium * h_medium / self.base_size()), 16), 96))

    def lesion_z(self) -> tuple[float, float]:
        """(z0, z1) of the lesion."""
        half = self.lesion.length / 2
        return self.lesion.center - half, self.lesion.center + half

    def scaffold_section(self) -> ScaffoldSection:
        """The scaffold's cross-section (mid-plane for a contusion)."""
        return ScaffoldSection.of(self.cord, self.lesion, self.cavity.gap)

    def channel_centres(self) -> list[tuple[float, float]]:
        """(x, y) of every channel axis (mm), in channel-number order."""
        return _channel_problems(self.scaffold_section(), self.channels)[0]

    def regions(self) -> list[str]:
        """Cell regions present in this geometry (names from scaffoldfem.regions)."""
        return [k for k in self.analytic_volumes() if k != "cord"]

    def geometry_hash(self) -> str:
        """Hex digest of the resolved geometry (everything that changes the mesh).

        ``mesh.num_threads`` is left out: it changes the speed, not the mesh's
        meaning. :data:`BUILDER_VERSION` is mixed in.
        """
        data = self.model_dump(mode="json")
        data["mesh"].pop("num_threads", None)
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
        return _analytic_volumes(self)


# -- cross-section of the scaffold -------------------------------------------


class ScaffoldSection:
    """2D region {(x/a)² + (y/b)² <= 1} ∩ {side·x >= cut} holding the channels."""

    def __init__(self, a: float, b: float, side: int = 0, cut: float = 0.0):
        self.a, self.b, self.side, self.cut = a, b, side, cut

    @classmethod
    def of(cls, cord: CordConfig, lesion: LesionConfig, gap: float) -> ScaffoldSection:
        if lesion.kind == "contusion":
            return cls(max(lesion.semi_axis_x - gap, 1e-9), max(lesion.semi_axis_y - gap, 1e-9))
        if lesion.kind == "hemisection":
            return cls(cord.semi_axis_x, cord.semi_axis_y, +1 if lesion.side == "right" else -1,
                       gap)
        return cls(cord.semi_axis_x, cord.semi_axis_y)

    def area(self) -> float:
        if self.side == 0:
            return math.pi * self.a * self.b
        return ellipse_area_beyond(self.a, self.b, self.cut)

    def centroid(self) -> tuple[float, float]:
        if self.side == 0:
            return 0.0, 0.0
        a, b, c = self.a, self.b, min(self.cut, self.a)
        moment = 2 * b / a * (a * a - c * c) ** 1.5 / 3
        return self.side * moment / max(self.area(), 1e-300), 0.0

    def signed_distance(self, pts: np.ndarray) -> np.ndarray:
        """Distance to the border, positive inside (exact inside, approximate outside)."""
        pts = np.atleast_2d(np.asarray(pts, dtype=float))
        d = np.hypot(*(pts - ellipse_closest_point(self.a, self.b, pts)).T)
        inside = (pts[:, 0] / self.a) ** 2 + (pts[:, 1] / self.b) ** 2 <= 1
        d = np.where(inside, d, -d)
        if self.side != 0:
            d = np.minimum(d, self.side * pts[:, 0] - self.cut)
        return d


def ellipse_closest_point(a: float, b: float, pts: np.ndarray) -> np.ndarray:
    """Closest points on the ellipse (x/a)² + (y/b)² = 1 to ``pts`` (n, 2).

    Fixed-point iteration on the evolute (works inside and outside; converged to
    ~1e-12 mm after the iterations used here).
    """
    px, py = np.abs(pts[:, 0]), np.abs(pts[:, 1])
    tx = np.full_like(px, math.sqrt(0.5))
    ty = tx.copy()
    for _ in range(40):
        ex = (a * a - b * b) * tx**3 / a
        ey = (b * b - a * a) * ty**3 / b
        r = np.hypot(a * tx - ex, b * ty - ey)
        qx, qy = px - ex, py - ey
        q = np.maximum(np.hypot(qx, qy), 1e-300)
        tx = np.clip((qx * r / q + ex) / a, 0, 1)
        ty = np.clip((qy * r / q + ey) / b, 0, 1)
        t = np.hypot(tx, ty)
        degenerate = t == 0  # centre of a circle: every border point is closest
        t = np.where(degenerate, 1.0, t)
        tx, ty = np.where(degenerate, 1.0, tx / t), ty / t
    return np.column_stack([np.copysign(a * tx, pts[:, 0]), np.copysign(b * ty, pts[:, 1])])


def ellipse_area_beyond(a: float, b: float, x0: float) -> float:
    """Area of the ellipse (a, b) with x >= x0."""
    u = min(max(x0 / a, -1.0), 1.0)
    return a * b * (math.pi / 2 - math.asin(u) - u * math.sqrt(1 - u * u))


# -- problem finders (return human-readable lines; empty list = fine) --------


def _raise(problems: list[str]) -> None:
    if problems:
        raise PydanticCustomError("geometry_fit", "{msg}", {"msg": "; ".join(problems)})


def _mm(x: float) -> str:
    return f"{x:.3g} mm"


def _grey_problems(cord: CordConfig, grey: GreyMatterConfig) -> list[str]:
    g, h = grey.amplitudes()
    theta = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    r = 1 + g * np.cos(2 * theta) - h * np.cos(4 * theta)
    if r.min() < 0.2:
        return ["horns + lateral_bulge fold the outline onto itself (smallest radius "
                f"{r.min():.2f} of the mean, need >= 0.2): reduce them"]
    sec = ScaffoldSection(cord.semi_axis_x, cord.semi_axis_y)
    clearance = sec.signed_distance(grey.outline(theta)).min()
    if clearance <= 0:
        return [f"grey matter reaches past the cord surface by {_mm(-clearance)}: "
                "reduce its semi-axes or horns"]
    return []


def _lesion_problems(cord: CordConfig, lesion: LesionConfig, t: float,
                     what: str = "lesion") -> list[str]:
    out = []
    half = lesion.length / 2 + t
    lo, hi = lesion.center - half, lesion.center + half
    end = cord.length / 2
    for where, over, z in (("rostral", -end - lo, -end), ("caudal", hi - end, end)):
        if over > 1e-9:
            out.append(f"{what} (z from {lo:.3g} to {hi:.3g} mm) reaches past the {where} end "
                       f"(z = {z:.3g} mm) by {_mm(over)}")
        elif over > -1e-9:
            out.append(f"{what} (z from {lo:.3g} to {hi:.3g} mm) reaches the {where} end "
                       f"(z = {z:.3g} mm): leave some host tissue")
    if lesion.kind == "contusion":
        for ax, semi, cs in (("x", lesion.semi_axis_x, cord.semi_axis_x),
                             ("y", lesion.semi_axis_y, cord.semi_axis_y)):
            over = semi + t - cs
            if over > -1e-9:
                by = f" by {_mm(over)}" if over > 1e-9 else ""
                out.append(f"contusion {what} semi-axis {ax} ({_mm(semi + t)}) reaches the cord "
                           f"surface (semi_axis_{ax} {_mm(cs)}){by}")
    return out


def _cavity_problems(cord: CordConfig, lesion: LesionConfig, gap: float) -> list[str]:
    if gap == 0:
        return []
    limits = {"half the lesion length": lesion.length / 2}
    if lesion.kind == "contusion":
        limits |= {"lesion.semi_axis_x": lesion.semi_axis_x,
                   "lesion.semi_axis_y": lesion.semi_axis_y}
    elif lesion.kind == "hemisection":
        limits["cord.semi_axis_x"] = cord.semi_axis_x
    return [f"gap {_mm(gap)} leaves no scaffold: it must be less than {name} ({_mm(v)})"
            for name, v in limits.items() if gap >= v]


def _channel_problems(sec: ScaffoldSection, ch: ChannelsConfig
                      ) -> tuple[list[tuple[float, float]], list[str]]:
    """Return (channel centres, problems) for the layout."""
    problems: list[str] = []
    if ch.layout != "explicit" and ch.centres is not None:
        problems.append(f"centres are only used with layout = 'explicit' (layout is '{ch.layout}')")
    if ch.count == 0:
        return [], problems
    if ch.layout == "explicit":
        if ch.centres is None or len(ch.centres) != ch.count:
            n = 0 if ch.centres is None else len(ch.centres)
            return [], [*problems, f"layout 'explicit' needs one [x, y] centre per channel: "
                        f"count = {ch.count}, got {n} centre(s)"]
        centres = [(float(x), float(y)) for x, y in ch.centres]
    elif ch.layout == "rings":
        centres = _ring_centres(sec, ch)
    else:
        centres, fill = _hex_fill(sec, ch)
        problems += fill
        if fill:
            return centres, problems
    return centres, problems + _fit_problems(sec, ch, centres)


def _fit_problems(sec: ScaffoldSection, ch: ChannelsConfig,
                  centres: list[tuple[float, float]]) -> list[str]:
    out = []
    r, w = ch.radius, ch.min_wall
    c = np.asarray(centres, dtype=float).reshape(-1, 2)
    for i in range(len(c)):
        for j in range(i + 1, len(c)):
            wall = float(np.hypot(*(c[i] - c[j]))) - 2 * r
            if wall < 0:
                out.append(f"channels {i + 1} and {j + 1} overlap by {_mm(-wall)}")
            elif wall < w:
                out.append(f"wall between channels {i + 1} and {j + 1} is {_mm(wall)}, "
                           f"{_mm(w - wall)} thinner than min_wall {_mm(w)}")
    for i, d in enumerate(sec.signed_distance(c)):
        wall = float(d) - r
        if wall < 0:
            out.append(f"channel {i + 1} crosses the scaffold border by {_mm(-wall)}")
        elif wall < w:
            out.append(f"wall between channel {i + 1} and the scaffold border is {_mm(wall)}, "
                       f"{_mm(w - wall)} thinner than min_wall {_mm(w)}")
    return out


def _ring_centres(sec: ScaffoldSection, ch: ChannelsConfig) -> list[tuple[float, float]]:
    """One central channel, then rings k = 1, 2, … of radius k·spacing holding up to
    6k channels each, evenly spaced in angle (the last ring takes the remainder)."""
    cx, cy = sec.centroid()
    out = [(cx, cy)]
    k = 1
    while len(out) < ch.count:
        n = min(6 * k, ch.count - len(out))
        ang = 2 * np.pi * np.arange(n) / n
        out += [(cx + k * ch.spacing * math.cos(a), cy + k * ch.spacing * math.sin(a)) for a in ang]
        k += 1
    return out


def _hex_fill(sec: ScaffoldSection, ch: ChannelsConfig
              ) -> tuple[list[tuple[float, float]], list[str]]:
    """The ``count`` points of a hexagonal grid (pitch ``spacing``, one point on the
    section centroid, rows along x) nearest the centroid at which a channel fits
    with ``min_wall`` to the border. Seven channels in an ellipse give the classic
    centre + ring of six."""
    p, r, w = ch.spacing, ch.radius, ch.min_wall
    if ch.count > 1 and p - 2 * r < w:
        wall = p - 2 * r
        msg = (f"neighbouring channels overlap by {_mm(-wall)}" if wall < 0 else
               f"wall between neighbouring channels is {_mm(wall)}, {_mm(w - wall)} thinner "
               f"than min_wall {_mm(w)}")
        return [], [f"{msg} (spacing {_mm(p)}, diameter {_mm(2 * r)})"]
    cx, cy = sec.centroid()
    n = math.ceil(2 * max(sec.a, sec.b) / p) + 2
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    pts = np.column_stack([(i + j / 2).ravel() * p + cx, (j * math.sqrt(3) / 2).ravel() * p + cy])
    rel = pts - (cx, cy)
    dist = np.round(np.hypot(rel[:, 0], rel[:, 1]), 9)
    ang = np.round(np.mod(np.arctan2(rel[:, 1], rel[:, 0]), 2 * np.pi), 9)
    order = np.lexsort((ang, dist))
    pts = pts[order]
    clearance = sec.signed_distance(pts) - r
    fits = clearance >= w - 1e-12
    chosen = pts[fits][: ch.count]
    centres = [(float(x), float(y)) for x, y in chosen]
    if len(chosen) < ch.count:
        best = float(clearance[~fits].max())
        how = (f"crosses the scaffold border by {_mm(-best)}" if best < 0 else
               f"leaves a {_mm(best)} wall to the scaffold border, {_mm(w - best)} thinner than "
               f"min_wall {_mm(w)}")
        return centres, [
            f"only {len(chosen)} of {ch.count} channels of {_mm(2 * r)} fit on a hexagonal grid "
            f"of spacing {_mm(p)} with min_wall {_mm(w)}; the best remaining position {how}"]
    return centres, []


# -- analytic volumes ------------------------------------------------------------


def _star_area(*radial: np.ndarray, dphi: float) -> float:
    """Area of the intersection of regions star-shaped about the axis, from their
    radial functions sampled on a uniform periodic grid (½∮ min(ρ)² dφ)."""
    rho = np.minimum.reduce(radial)
    return 0.5 * float(np.sum(rho**2)) * dphi


def _grey_removed(geom: GeometryConfig, t: float) -> float:
    """Volume of grey matter inside lesion + scar."""
    grey, les = geom.grey_matter, geom.lesion
    phi = np.linspace(0, 2 * np.pi, _N_ANGLE, endpoint=False)
    dphi = 2 * np.pi / _N_ANGLE
    rho_g = grey.radial(phi)
    if les.kind == "transection":
        return grey.area() * (les.length + 2 * t)
    if les.kind == "hemisection":
        s = 1.0 if les.side == "right" else -1.0
        c = s * np.cos(phi)  # half-plane s·x >= -t: ray leaves it where c < 0
        with np.errstate(divide="ignore"):
            rho_h = np.where(c < 0, t / np.maximum(-c, 1e-300), np.inf)
        return _star_area(rho_g, rho_h, dphi=dphi) * (les.length + 2 * t)
    # Contusion: ellipsoid (A, B, C); for each direction integrate min(ρg², s(z)²ρE²)
    # over z in closed form, s² = 1 - z²/C².
    A, B, C = les.semi_axis_x + t, les.semi_axis_y + t, les.length / 2 + t
    rho_e2 = 1.0 / ((np.cos(phi) / A) ** 2 + (np.sin(phi) / B) ** 2)
    rho_g2 = rho_g**2
    ratio = np.minimum(rho_g2 / rho_e2, 1.0)
    zs = C * np.sqrt(1.0 - ratio)
    integral = 2 * rho_g2 * zs + 2 * rho_e2 * ((C - zs) - (C**3 - zs**3) / (3 * C * C))
    return 0.5 * float(np.sum(integral)) * dphi


def _channel_volume_in_ellipsoid(cx: float, cy: float, r: float, a: float, b: float,
                                 c: float) -> float:
    """Volume of the z-cylinder of radius r at (cx, cy) inside the ellipsoid (a, b, c)
    centred on the axis (disc strictly inside the ellipse: a smooth integrand, so
    Gauss-Legendre × trapezoid quadrature converges spectrally)."""
    xg, wg = np.polynomial.legendre.leggauss(40)
    rho = 0.5 * r * (xg + 1)
    wr = 0.5 * r * wg
    th = np.linspace(0, 2 * np.pi, 128, endpoint=False)
    R, T = np.meshgrid(rho, th, indexing="ij")
    x, y = cx + R * np.cos(T), cy + R * np.sin(T)
    h = 2 * c * np.sqrt(np.clip(1 - (x / a) ** 2 - (y / b) ** 2, 0, None))
    return float(np.sum(h * R * wr[:, None]) * (2 * np.pi / len(th)))


def _analytic_volumes(geom: GeometryConfig) -> dict[str, float]:
    cord, les, t, g = geom.cord, geom.lesion, geom.scar.thickness, geom.cavity.gap
    a, b, L, ell = cord.semi_axis_x, cord.semi_axis_y, cord.length, les.length
    centres, r = geom.channel_centres(), geom.channels.radius
    total = math.pi * a * b * L
    if les.kind == "transection":
        lesion = math.pi * a * b * ell
        with_scar = math.pi * a * b * (ell + 2 * t)
        implant = math.pi * a * b * (ell - 2 * g)
        channel = len(centres) * math.pi * r * r * (ell - 2 * g)
    elif les.kind == "hemisection":
        lesion = ellipse_area_beyond(a, b, 0.0) * ell
        with_scar = ellipse_area_beyond(a, b, -t) * (ell + 2 * t)
        implant = ellipse_area_beyond(a, b, g) * (ell - 2 * g)
        channel = len(centres) * math.pi * r * r * (ell - 2 * g)
    else:
        la, lb, lc = les.semi_axis_x, les.semi_axis_y, ell / 2
        lesion = 4 / 3 * math.pi * la * lb * lc
        with_scar = 4 / 3 * math.pi * (la + t) * (lb + t) * (lc + t)
        implant = 4 / 3 * math.pi * (la - g) * (lb - g) * (lc - g)
        channel = sum(_channel_volume_in_ellipsoid(x, y, r, la - g, lb - g, lc - g)
                      for x, y in centres)
    grey = geom.grey_matter.area() * L - _grey_removed(geom, t) if geom.grey_matter.enabled else 0
    vols = {
        "cord": total,
        "white_matter": total - grey - with_scar,
        "grey_matter": grey,
        "scar": with_scar - lesion,
        "scaffold": implant - channel,
        "channel": channel,
        "cavity": lesion - implant,
    }
    present = {"grey_matter": geom.grey_matter.enabled, "scar": t > 0, "channel": bool(centres),
               "cavity": g > 0}
    return {k: v for k, v in vols.items() if present.get(k, True)}
