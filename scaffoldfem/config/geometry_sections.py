"""The parts of the ``[geometry]`` section: cord, grey matter, lesion, scar, cavity,
channels, mesh controls (each validated on its own; the cross-field rules are in
:mod:`scaffoldfem.config.geometry_fit`, the coordinates and the overlap rule in
:mod:`scaffoldfem.config.geometry`).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from scaffoldfem.config.base import Section
from scaffoldfem.units import Q

__all__ = ["MAX_CHANNELS", "CavityConfig", "ChannelsConfig", "CordConfig", "GreyMatterConfig",
           "Length", "LesionConfig", "MeshConfig", "NonNegLength", "PosLength", "ScarConfig"]

Length = Q("mm")
PosLength = Q("mm", gt=0)
NonNegLength = Q("mm", ge=0)

#: Most channels a scaffold may have: the largest printed multichannel scaffolds
#: have tens to a few hundred lumens, and every channel wall is meshed finely
#: (~10k cells per 450 um channel at "coarse").
MAX_CHANNELS = 500


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
    count: int = Field(7, ge=0, le=MAX_CHANNELS)
    diameter: PosLength = "450 um"
    layout: Literal["hexagonal", "rings", "explicit"] = "hexagonal"
    # Centre-to-centre pitch (hexagonal grid / ring step): 0.7 mm leaves 250 µm
    # walls between 450 µm channels (design choice).
    spacing: PosLength = "0.7 mm"
    # layout = "explicit": one [x, y] pair of lengths per channel, e.g.
    # centres = [["0 mm", "0 mm"], ["0.7 mm", "0 mm"]].
    centres: list[tuple[Length, Length]] | None = Field(None, max_length=MAX_CHANNELS)
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
    # Gmsh threads: 1 = the same mesh every time; 0 = all cores, N = N (faster, but
    # Gmsh's parallel mesher then gives a slightly different mesh at each meshing)
    num_threads: int = Field(1, ge=0)
