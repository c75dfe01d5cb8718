"""The ``[exposure.dorsal_horn]`` study section: off-target exposure of the dorsal horn
and the KCC2 down-regulation (pain-risk) index it drives.

The dorsal horn here is the laminae I-II-like cap of the grey matter: grey matter
dorsal of ``y_top - depth`` (``y_top`` the dorsal-most point of the grey-matter
outline, :func:`dorsal_cut`), within ``band`` of the lesion faces along the cord.
The band is a fixed neighbourhood of the lesion, so the metrics do not depend on
how long the modelled cord is (as long as the band lies inside it).

BDNF acting on TrkB in the dorsal horn down-regulates the K-Cl cotransporter KCC2,
collapses the anion gradient of lamina I neurons and causes allodynia (Coull et al.
2005 Nature 438:1017); TrkB activation lowers KCC2 mRNA and protein within hours
(Rivera et al. 2002 J Cell Biol 159:747). The index law (``physics/kcc2.py``) is a
relative, **uncalibrated** 0-1 down-regulation: its constants below are assumptions
of the right order (hours-days), not fits.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from scaffoldfem.config.base import Section
from scaffoldfem.config.geometry_sections import GreyMatterConfig
from scaffoldfem.units import Q

__all__ = ["DorsalHornConfig", "Kcc2Config", "dorsal_cut", "dorsal_horn_area"]

#: Outline samples used to find the dorsal-most point and the cap's area.
_N_OUTLINE = 4096


class Kcc2Config(Section):
    """KCC2 down-regulation index K in [0, 1], driven by dorsal-horn TrkB occupancy.

    ``dK/dt = k_down · occ^n/(occ^n + occ_half^n) · (1 − K) − k_rec · K`` (0 = intact,
    1 = fully down-regulated). Every constant is assumed (uncalibrated).
    """

    # Down-regulation rate at saturating TrkB activation: KCC2 mRNA/protein fall
    # within hours of BDNF in slices (Rivera et al. 2002 J Cell Biol 159:747);
    # 1/day assumed (tau ~ 1 day, slower in vivo than in slices). Uncalibrated.
    rate_down: Q("1/day", gt=0) = "1 1/day"
    # Recovery once TrkB activation stops: plasmalemmal KCC2 turns over fast (Rivera
    # et al. 2004 J Neurosci 24:4683) but allodynia after BDNF lasts days (Coull 2005);
    # 0.2/day (tau ~ 5 days) assumed. Uncalibrated.
    rate_recovery: Q("1/day", ge=0) = "0.2 1/day"
    # Occupancy giving half the maximal drive, and the Hill exponent (switch-like
    # signalling): both assumed.
    occupancy_half: float = Field(0.3, gt=0.0, lt=1.0)
    hill: float = Field(2.0, ge=1.0, le=8.0)


class DorsalHornConfig(Section):
    """Dorsal-horn exposure (laminae I-II-like cap of grey matter near the lesion)."""

    # Neighbourhood of the lesion along the cord: grey matter within this distance of
    # the lesion faces (both sides). A fixed length, independent of cord.length
    # (keep it inside the modelled cord); 2 mm assumed.
    band: Q("mm", gt=0) = "2 mm"
    # Depth of the cap below the dorsal-most point of the grey-matter outline:
    # laminae I-II (superficial dorsal horn, Rexed's lamination) form a thin dorsal
    # cap of the dorsal horn; 0.2 mm assumed (no thickness fitted).
    depth: Q("mm", gt=0) = "0.2 mm"
    # Growth factor whose receptor occupancy (TrkB for BDNF, K_d from
    # axons.receptor_kd) drives KCC2 down-regulation (Coull 2005). A study without
    # it reports the index as null.
    ligand: str = "BDNF"
    # Occupancy above which the dorsal horn counts as "exposed" (time above it is
    # reported): assumed, one third of the default occupancy_half.
    occupancy_threshold: float = Field(0.1, gt=0.0, lt=1.0)
    kcc2: Kcc2Config = Kcc2Config()


def _outline(grey: GreyMatterConfig) -> np.ndarray:
    theta = np.linspace(0.0, 2 * np.pi, _N_OUTLINE, endpoint=False)
    return grey.outline(theta)


def dorsal_cut(grey: GreyMatterConfig, depth: float) -> float:
    """The y (mm) above which grey matter belongs to the dorsal horn cap."""
    return float(_outline(grey)[:, 1].max()) - depth


def dorsal_horn_area(grey: GreyMatterConfig, depth: float) -> float:
    """Cross-section area (mm²) of the grey-matter outline dorsal of :func:`dorsal_cut`
    (the polygon clipped by the half-plane, shoelace formula)."""
    y_cut = dorsal_cut(grey, depth)
    p = _outline(grey)
    q = np.roll(p, -1, axis=0)
    pts: list[np.ndarray] = []
    for a, b in zip(p, q, strict=True):
        ina, inb = a[1] >= y_cut, b[1] >= y_cut
        if ina:
            pts.append(a)
        if ina != inb:
            s = (y_cut - a[1]) / (b[1] - a[1])
            pts.append(a + s * (b - a))
    if len(pts) < 3:
        return 0.0
    x, y = np.array(pts).T
    return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))
