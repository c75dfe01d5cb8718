"""Material laws and presets as plain data (internal units: mm, day, ng/mL, kPa).

The laws are plain arithmetic, so they take floats, NumPy arrays or UFL
expressions alike. Presets are frozen dataclasses of floats with the source
of each number; the study config (written elsewhere) picks one and lets the
user override any field.

Diffusivity convention (see docs/model.md, "Effective diffusivity"): the
transport equation is written per unit *total* volume,
``∂(α c)/∂t = ∇·(D ∇c) − …``, so its ``D`` is the *effective* (flux-basis)
diffusivity, the flux per unit total area per unit gradient of the pore
concentration. For tissue ``D = α D_free / λ²`` (Nicholson's apparent
diffusivity ``D* = D_free/λ²`` times α). Bruggeman and Archie are flux-basis
laws by origin (conductivity of a mixture, formation factor); Mackie–Meares
gives the diffusivity *inside* the gel (apparent basis), so its flux-basis
value carries an extra factor φ. :func:`flux_diffusivity` applies this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "LAWS",
    "POLYMERS",
    "TISSUE",
    "PolymerPreset",
    "archie",
    "bruggeman",
    "cm2_per_s_to_mm2_per_day",
    "flux_diffusivity",
    "gibson_ashby",
    "half_life_to_rate",
    "mackie_meares",
    "relative_diffusivity",
]

DiffusivityLaw = Literal["bruggeman", "mackie_meares", "archie"]


def cm2_per_s_to_mm2_per_day(d: float) -> float:
    """Convert a diffusivity from cm²/s (how it is published) to mm²/day."""
    return d * 100.0 * 86400.0


def half_life_to_rate(half_life: float) -> float:
    """First-order rate ``k = ln 2 / t½`` (same time unit as ``half_life``)."""
    return math.log(2.0) / half_life


# --- effective diffusivity laws -------------------------------------------------

def bruggeman(phi: Any) -> Any:
    """Bruggeman ``D_eff/D_free = φ^1.5`` (flux basis; Bruggeman 1935, Ann Phys 416:636)."""
    return phi**1.5


def mackie_meares(phi: Any) -> Any:
    """Mackie–Meares ``D_gel/D_free = (φ/(2−φ))²`` (apparent basis, inside the gel).

    Mackie & Meares 1955, Proc R Soc A 232:498; the standard obstruction model
    for solutes in hydrogels (Amsden 1998, Macromolecules 31:8382).
    """
    return (phi / (2.0 - phi)) ** 2


def archie(phi: Any, m: float = 2.0) -> Any:
    """Archie ``D_eff/D_free = φ^m`` (flux basis; Archie 1942, Trans AIME 146:54).

    ``m`` (cementation exponent) is ~1.3–2.5; ``m = 1.5`` is Bruggeman.
    """
    return phi**m


LAWS: dict[str, tuple[Any, Literal["effective", "apparent"]]] = {
    "bruggeman": (bruggeman, "effective"),
    "mackie_meares": (mackie_meares, "apparent"),
    "archie": (archie, "effective"),
}


def relative_diffusivity(phi: Any, law: DiffusivityLaw = "bruggeman", m: float = 2.0) -> Any:
    """The law's own ratio ``f(φ)`` as published (its basis is in :data:`LAWS`)."""
    fn, _ = LAWS[law]
    return fn(phi, m) if law == "archie" else fn(phi)


def flux_diffusivity(d_free: Any, phi: Any, law: DiffusivityLaw = "bruggeman",
                     m: float = 2.0) -> Any:
    """Flux-basis diffusivity ``D`` of a porous scaffold for the transport equation.

    Args:
        d_free: Free-solution diffusivity (mm²/day).
        phi: Porosity (accessible volume fraction), float/array/UFL.
        law: ``"bruggeman"``, ``"mackie_meares"`` or ``"archie"``.
        m: Archie exponent.

    Returns:
        ``D_free·f(φ)`` for flux-basis laws, ``D_free·φ·f(φ)`` for
        Mackie–Meares (apparent basis); equals ``D_free`` at φ = 1.
    """
    f = relative_diffusivity(phi, law, m)
    if LAWS[law][1] == "apparent":
        f = phi * f
    return d_free * f


def gibson_ashby(e_solid: Any, phi: Any, n: float = 2.0) -> Any:
    """Open-cell foam modulus ``E = E_s (1−φ)^n`` (Gibson & Ashby 1997, Cellular Solids, ch. 5)."""
    return e_solid * (1.0 - phi) ** n


# --- presets ----------------------------------------------------------------------

@dataclass(frozen=True)
class PolymerPreset:
    """Degradation and stiffness parameters of one scaffold material.

    Attributes:
        name: Preset key.
        k_h: Hydrolysis rate (1/day) at w = 1.
        a_auto: Autocatalysis factor (-): rate ``k_h(1 + a_auto(1 − w))``.
        k_e: Maximal enzymatic (MMP) cleavage rate (1/day).
        K_e: MMP concentration at half-maximal cleavage (ng/mL).
        phi0: Initial porosity (-).
        E_s: Solid (or back-calculated) modulus for Gibson–Ashby (kPa).
        nu: Poisson ratio (-).
        n_ga: Gibson–Ashby exponent (-).
        law: Default effective-diffusivity law.
        references: Source of each number (free text).
    """

    name: str
    k_h: float
    a_auto: float
    k_e: float
    K_e: float
    phi0: float
    E_s: float
    nu: float
    n_ga: float = 2.0
    law: DiffusivityLaw = "bruggeman"
    references: dict[str, str] = field(default_factory=dict)

    def modulus(self, phi: Any) -> Any:
        """Gibson–Ashby modulus (kPa) at porosity ``phi``."""
        return gibson_ashby(self.E_s, phi, self.n_ga)


POLYMERS: dict[str, PolymerPreset] = {
    "plga_50_50": PolymerPreset(
        name="plga_50_50", k_h=0.01, a_auto=5.0, k_e=0.0, K_e=50.0, phi0=0.9,
        E_s=2.0e6, nu=0.3, law="bruggeman",
        references={
            "k_h, a_auto": "chosen so mass falls to ~50 % at 30 d and ~15 % at 60 d with the "
                           "autocatalytic acceleration of bulk-eroding PLGA 50:50: 'degrades in "
                           "1–2 months' (Makadia & Siegel 2011, Polymers 3:1377); molar mass to "
                           "~20 % in 20–30 d (Gil-Castell et al. 2019); autocatalysis model: "
                           "Wang, Pan et al. 2008, Biomaterials 29:3393",
            "E_s": "PLGA 50:50 bulk modulus 1.4–2.8 GPa (Middleton & Tipton 2000, "
                   "Biomaterials 21:2335); 2 GPa",
            "phi0": "porous multichannel PLGA scaffolds ~ 90 % porous (Olson et al. 2009, "
                    "Acta Biomater; assumption for the default)",
            "nu": "open-cell foam ν ≈ 0.3 (Gibson & Ashby 1997)",
        },
    ),
    "pcl": PolymerPreset(
        name="pcl", k_h=1.0e-3, a_auto=0.0, k_e=0.0, K_e=50.0, phi0=0.8,
        E_s=4.0e5, nu=0.3, law="bruggeman",
        references={
            "k_h": "resorption over 2–4 years (Woodruff & Hutmacher 2010, Prog Polym Sci "
                   "35:1217): half-life ~2 years -> 1e-3 /day",
            "E_s": "bulk PCL 0.21–0.44 GPa (Woodruff & Hutmacher 2010); 0.4 GPa",
            "phi0": "electrospun/printed PCL scaffolds 70–90 % porous; 0.8 assumed",
        },
    ),
    "alginate": PolymerPreset(
        name="alginate", k_h=0.05, a_auto=0.0, k_e=0.0, K_e=50.0, phi0=0.98,
        E_s=1.25e4, nu=0.45, law="mackie_meares",
        references={
            "k_h": "ionically cross-linked / partially oxidised alginate loses integrity over "
                   "2–4 weeks (Bouhadir et al. 2001, Biotechnol Prog 17:945); half-life 14 d",
            "k_e": "mammals have no alginase: no enzymatic term",
            "E_s": "back-calculated so E(φ0 = 0.98) = 5 kPa, within the 1–1000 kPa of "
                   "alginate gels (Augst, Kong & Mooney 2006, Macromol Biosci 6:623)",
            "law": "Mackie–Meares, the usual obstruction law for hydrogels (Amsden 1998)",
        },
    ),
    "gelatin": PolymerPreset(
        name="gelatin", k_h=0.005, a_auto=0.0, k_e=0.3, K_e=50.0, phi0=0.9,
        E_s=500.0, nu=0.45, law="mackie_meares",
        references={
            "k_h": "slow non-enzymatic loss of cross-linked gelatin/GelMA; assumption",
            "k_e, K_e": "MMP-2/9 cleave gelatin; order-of-magnitude assumption (days at MMP "
                        "peak), to be calibrated against the MMP-responsive gelatin release "
                        "data summarised in /work/shared/background.md",
            "E_s": "back-calculated so E(φ0 = 0.9) = 5 kPa, in the range of 5–15 % GelMA "
                   "(Nichol et al. 2010, Biomaterials 31:5536)",
        },
    ),
    "peg_mmp": PolymerPreset(
        name="peg_mmp", k_h=0.002, a_auto=0.0, k_e=0.5, K_e=50.0, phi0=0.9,
        E_s=300.0, nu=0.45, law="mackie_meares",
        references={
            "k_e": "MMP-cleavable PEG networks degrade by cell-secreted MMPs "
                   "(Lutolf et al. 2003, PNAS 100:5413); rate an assumption",
            "k_h": "slow ester hydrolysis of PEG-vinylsulfone adducts; assumption",
            "E_s": "back-calculated so E(φ0 = 0.9) = 3 kPa (Lutolf & Hubbell 2003, "
                   "Biomacromolecules 4:713: 1–10 kPa)",
        },
    ),
}


#: Tissue and growth-factor numbers in internal units, with sources.
TISSUE: dict[str, tuple[float, str]] = {
    "alpha_host": (0.2, "ECS volume fraction, Syková & Nicholson 2008, Physiol Rev 88:1277"),
    "tortuosity_host": (1.6, "ECS tortuosity, Syková & Nicholson 2008"),
    "tortuosity_ngf_striatum": (2.14, "NGF in rat striatum, Stroh et al. 2003, Biophys J 85:581"),
    "D_free_ngf": (cm2_per_s_to_mm2_per_day(12.6e-7),
                   "NGF free diffusivity 12.6e-7 cm²/s (Stroh et al. 2003) = 10.89 mm²/day"),
    "D_star_ngf_striatum": (cm2_per_s_to_mm2_per_day(2.75e-7),
                            "NGF apparent diffusivity in striatum 2.75e-7 cm²/s "
                            "(Stroh et al. 2003) = 2.376 mm²/day"),
    "E_grey_afm": (0.13, "mouse grey matter AFM ≈ 130 Pa (Koser et al. 2015, Biophys J 108:2137)"),
    "E_white_afm": (0.07, "mouse white matter AFM ≈ 70 Pa (Koser et al. 2015)"),
    "E_cord_tensile": (300.0, "whole-cord tension 0.1–1 MPa (Bilston & Thibault 1996); 0.3 MPa"),
    "nu_cord": (0.45, "0.45–0.49 reported; 0.45 keeps P1 free of volumetric locking"),
}
