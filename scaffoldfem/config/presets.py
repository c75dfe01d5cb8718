"""Material presets as plain data, every number with its source (internal units:
mm, day, ng/mL, kPa). The study config picks one and lets the user override any
field; the laws that use these numbers live in :mod:`scaffoldfem.physics.materials`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from scaffoldfem.units import parse_quantity

DiffusivityLaw = Literal["bruggeman", "mackie_meares", "archie"]


@dataclass(frozen=True)
class PolymerPreset:
    """Degradation and stiffness parameters of one scaffold material.

    Attributes:
        name: Preset key.
        k_h: Hydrolysis rate (1/day) at w = 1.
        a_auto: Autocatalysis factor (-): rate ``k_h(1 + a_auto(1 − w))``.
        k_e, K_e: Enzymatic cleavage: the rate is first order in the enzymes,
            ``(k_e/K_e) Σ m_j`` (1/day and ng/mL; ``k_e/K_e`` the specificity).
        phi0: Initial porosity (-).
        E_s: Solid (or back-calculated) modulus for Gibson–Ashby (kPa).
        nu: Poisson ratio (-).
        n_ga: Gibson–Ashby exponent (-).
        law: Default effective-diffusivity law.
        pore_size: Mean macropore size (mm), for tissue ingrowth (``[ingrowth]``).
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
    pore_size: float = 0.15
    references: dict[str, str] = field(default_factory=dict)


POLYMERS: dict[str, PolymerPreset] = {
    "plga_50_50": PolymerPreset(
        name="plga_50_50", k_h=0.01, a_auto=5.0, k_e=0.0, K_e=50.0, phi0=0.9,
        E_s=2.0e6, nu=0.3, law="bruggeman", pore_size=0.15,
        references={
            "pore_size": "salt-leached / gas-foamed PLGA foams have ~100-300 um pores "
                         "(Karageorgiou & Kaplan 2005, Biomaterials 26:5474); 150 um assumed",
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
        E_s=4.0e5, nu=0.3, law="bruggeman", pore_size=0.3,
        references={
            "pore_size": "printed / fused-deposition PCL: strand gaps of a few hundred um; "
                         "300 um assumed",
            "k_h": "resorption over 2–4 years (Woodruff & Hutmacher 2010, Prog Polym Sci "
                   "35:1217): half-life ~2 years -> 1e-3 /day",
            "E_s": "bulk PCL 0.21–0.44 GPa (Woodruff & Hutmacher 2010); 0.4 GPa",
            "phi0": "electrospun/printed PCL scaffolds 70–90 % porous; 0.8 assumed",
        },
    ),
    "alginate": PolymerPreset(
        name="alginate", k_h=0.05, a_auto=0.0, k_e=0.0, K_e=50.0, phi0=0.98,
        E_s=1.25e4, nu=0.45, law="mackie_meares", pore_size=0.1,
        references={
            "pore_size": "macroporous (freeze-dried) alginate, ~100 um assumed; a bulk ionic "
                         "gel is nanoporous and admits cells only as it degrades",
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
        E_s=500.0, nu=0.45, law="mackie_meares", pore_size=0.1,
        references={
            "pore_size": "gelatin cryogels / freeze-dried sponges, ~100 um assumed",
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
        E_s=300.0, nu=0.45, law="mackie_meares", pore_size=0.05,
        references={
            "pore_size": "nanoporous network invaded by cell-driven proteolysis (Lutolf et al. "
                         "2003, PNAS 100:5413); an effective 50 um assumed",
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
    "D_free_ngf": (parse_quantity("12.6e-7 cm^2/s", "mm^2/day"),
                   "NGF free diffusivity 12.6e-7 cm²/s (Stroh et al. 2003) = 10.89 mm²/day"),
    "D_star_ngf_striatum": (parse_quantity("2.75e-7 cm^2/s", "mm^2/day"),
                            "NGF apparent diffusivity in striatum 2.75e-7 cm²/s "
                            "(Stroh et al. 2003) = 2.376 mm²/day"),
    "E_grey_afm": (0.13, "mouse grey matter AFM ≈ 130 Pa (Koser et al. 2015, Biophys J 108:2137)"),
    "E_white_afm": (0.07, "mouse white matter AFM ≈ 70 Pa (Koser et al. 2015)"),
    "E_cord_tensile": (300.0, "whole-cord tension 0.1–1 MPa (Bilston & Thibault 1996); 0.3 MPa"),
    "nu_cord": (0.45, "0.45–0.49 reported; 0.45 keeps P1 free of volumetric locking"),
}
