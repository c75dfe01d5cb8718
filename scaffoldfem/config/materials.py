"""Scaffold material presets: degradation kinetics and solid modulus, with sources.

A preset fills the ``[scaffold]`` values a study leaves out; anything the study
sets wins. Values are study strings (with units) so they go through the same
validation as user input and appear in the resolved study.
"""

from __future__ import annotations

MATERIAL_PRESETS: dict[str, dict[str, object]] = {
    # PLGA 50:50: bulk hydrolysis with acid autocatalysis. Electrospun PLGA falls to
    # ~20 % of its molar mass in 20-30 days (Gil-Castell 2019); with autocatalysis
    # a = 2 (Wang et al. 2008 Biomaterials 29:3393, Pan group model) k_h ≈ 0.03/day
    # gives ~20 % remaining mass near day 35. Solid modulus ~1-2 GPa
    # (Middleton & Tipton 2000 Biomaterials 21:2335).
    "plga_50_50": {
        "hydrolysis_rate": "0.03 1/day",
        "autocatalysis": 2.0,
        "enzymatic_rate": "0 1/day",
        "solid_modulus": "1.5e6 kPa",
        "poisson": 0.35,
    },
    # PCL: hydrolysis over years (background: "PCL lasts years"; Woodruff & Hutmacher
    # 2010 Prog Polym Sci 35:1217, 2-4 years); E_s ~ 0.4 GPa (same review).
    "pcl": {
        "hydrolysis_rate": "0.001 1/day",
        "autocatalysis": 0.0,
        "enzymatic_rate": "0 1/day",
        "solid_modulus": "4.0e5 kPa",
        "poisson": 0.3,
    },
    # Ionically crosslinked alginate: loses mass over 2-4 weeks in vivo as Ca2+
    # exchanges (background: "alginate releases NTFs over 2-4 weeks"; Lee & Mooney
    # 2012 Prog Polym Sci 37:106); hydrogel network modulus 1-100 kPa (same review).
    "alginate": {
        "hydrolysis_rate": "0.06 1/day",
        "autocatalysis": 0.0,
        "enzymatic_rate": "0 1/day",
        "solid_modulus": "50 kPa",
        "poisson": 0.45,
    },
    # Gelatin / GelMA: MMP-2/9-cleavable; slow hydrolysis, fast enzymatic cleavage
    # (Yue et al. 2015 Biomaterials 73:254); network modulus ~ 5-30 kPa.
    "gelma": {
        "hydrolysis_rate": "0.005 1/day",
        "autocatalysis": 0.0,
        "enzymatic_rate": "0.3 1/day",
        "solid_modulus": "20 kPa",
        "poisson": 0.45,
    },
    # PEG hydrogel crosslinked with MMP-cleavable peptides (Lutolf & Hubbell 2003
    # PNAS 100:5413): essentially no hydrolysis, degradation on demand by MMPs.
    "peg_mmp": {
        "hydrolysis_rate": "0.001 1/day",
        "autocatalysis": 0.0,
        "enzymatic_rate": "0.5 1/day",
        "solid_modulus": "10 kPa",
        "poisson": 0.45,
    },
}
