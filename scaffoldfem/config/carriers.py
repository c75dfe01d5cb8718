"""Carriers of a growth factor: the release law belongs to the carrier (issue 11).

Internal units ng/mL and day; molar constants (k_on, K_D, k_cat/K_M, k_ROS) are read in
the literature's units and converted with the molar masses below. The updates are in
:mod:`scaffoldfem.physics.carriers`; the laws:

* ``passive``: first order, db/dt = −k0 b (well-mixed gel).
* ``microspheres``: burst + slow: a fraction f_b at k_burst, the rest at k0 (optionally
  coupled to matrix loss).
* ``affinity``: reversible binding to immobilised sites, db/dt = k_on c (S − b) − k_off b,
  c the free, diffusing factor; K_D = k_off/k_on.
* ``mmp_cleavable``: tether cut by enzymes, db/dt = −[k0 + Σ_j (k_cat/K_M)_j [E_j]] b:
  first order in each enzyme (Lutolf et al. 2003 PNAS 100:5413), valid while the
  tether concentration is far below K_M (µM for MMP substrates).
* ``ros_cleavable``: linker cut by ROS, db/dt = −(k0 + k_ROS [ROS]) b.
* ``degradation``: freed with the matrix, db/dt = −k0 b − ρ (−dw/dt/w) b.
* ``sequential_ros_mmp``: ROS opens the gel and frees particles (b → p at k_ROS [ROS]),
  enzymes free the factor from them (p → released at k0 + Σ (k_cat/K_M)[E]); the
  design of Chen et al. 2025 Biomaterials 316:122995 (ROS first, then MMP).

Parameters default to 0 (off); the numbers with sources are in :data:`PRESETS`.
:data:`PRESET_CURVES` holds, per preset, the cumulative release it is tested against
and its ``basis``: ``text`` (numbers stated in the sources' text), ``qualitative`` (a
time scale stated in the source, as points with wide bands), ``derived`` (computed from
published constants under stated conditions; not a measured curve) or ``assumed`` (no
published numbers found: a regression curve). See /tmp/research/carriers.md.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from scaffoldfem.config.base import Section
from scaffoldfem.units import Q, parse_quantity

Law = Literal["passive", "microspheres", "affinity", "mmp_cleavable", "ros_cleavable",
              "degradation", "sequential_ros_mmp"]
PresetName = Literal["alginate_gel", "heparin_fibrin", "plga_microspheres",
                     "mmp_cleavable_peg", "ros_responsive", "sequential_ros_mmp"]
Rate = Q("1/day", ge=0)
Conc = Q("ng/mL", ge=0)
Specificity = Q("1/(nM*day)", ge=0)

#: Molar masses (kDa = kg/mol) of the tether-cleaving enzymes. The gelatinases are named
#: by their pro-forms, 92 kDa (MMP-9, gelatinase B) and 72 kDa (MMP-2, gelatinase A);
#: active forms are ~82 and ~62 kDa. Immunoassays report totals, so pro-forms are used.
ENZYME_MOLAR_MASS_KDA: dict[str, float] = {"MMP9": 92.0, "MMP2": 72.0}
def enzyme_key(name: str) -> str:
    """Enzyme names compared without case, ``-`` or ``_`` (``MMP-9`` = ``MMP9``)."""
    return name.replace("-", "").replace("_", "").upper()


#: ROS fields are H2O2-equivalent ng/mL (H2O2 34.01 g/mol): 1 µM = 34.01 ng/mL.
ROS_MOLAR_MASS: float = 34.01

#: Parameters each law uses; turning another one on is refused.
USES: dict[str, tuple[str, ...]] = {
    "passive": ("first_order_rate", "degradation_coupling"),
    "microspheres": ("first_order_rate", "burst_fraction", "burst_rate",
                     "degradation_coupling"),
    "affinity": ("site_density", "k_on", "k_off", "molar_mass"),
    "mmp_cleavable": ("specificity", "first_order_rate", "degradation_coupling"),
    "ros_cleavable": ("ros_rate_constant", "first_order_rate", "degradation_coupling"),
    "degradation": ("degradation_coupling", "first_order_rate"),
    "sequential_ros_mmp": ("ros_rate_constant", "specificity", "first_order_rate"),
}
#: Parameters each law needs > 0 (``specificity``: at least one enzyme > 0).
NEEDS: dict[str, tuple[str, ...]] = {
    "passive": ("first_order_rate",),
    "microspheres": ("burst_fraction", "burst_rate", "first_order_rate"),
    "affinity": ("site_density", "k_on", "k_off"),
    "mmp_cleavable": ("specificity",),
    "ros_cleavable": ("ros_rate_constant",),
    "degradation": ("degradation_coupling",),
    "sequential_ros_mmp": ("ros_rate_constant", "specificity"),
}
PARAMETERS = tuple(sorted({k for keys in USES.values() for k in keys}))

# GPLG↓IAGQ, the MMP-2/MMP-9 substrate of many MMP-responsive gels: k_cat/K_M 2.0 ± 0.5
# (MMP-2) and 1.7 ± 0.2 (MMP-9) 1/(µM·min), K_M 14.8 and 8.1 µM (PMC9714689 Table 2, as
# quoted by a vendor page; the original was not read).
_GPLGIAGQ = {"MMP2": "2.0 1/(uM*min)", "MMP9": "1.7 1/(uM*min)"}
# No published ROS cleavage constant of a thioketal (or other) linker was found: 0.01
# 1/(µM·day), i.e. 1/day at 100 µM H2O2-equivalent, is an assumption to be swept.
_K_ROS = "0.01 1/(uM*day)"

#: Carrier presets: study values (with units) and the source of each.
PRESETS: dict[str, dict[str, Any]] = {
    "alginate_gel": {
        "law": "passive", "first_order_rate": "0.08 1/day",
        "references": {"first_order_rate": (
            "protein (VEGF) from calcium-alginate beads: 5 %/day for up to 14 days (Peters "
            "et al. 1998 J Biomater Sci Polym Ed 9:1267, abstract), i.e. 35 % at 7 d and "
            "70 % at 14 d; the first-order least-squares fit is k0 = 0.08 /day (43 / 67 %; "
            "89 % at 28 d, within the review's 'over 2-4 weeks'). First order is the "
            "well-mixed limit of diffusive release; a neurotrophin, less bound to alginate "
            "than VEGF, may leave faster (chitosan-coated alginate: 90 % of VEGF in 5 d, "
            "Lee et al. 2004 Transplant Proc). GDNF in alginate for SCI: Ansorena et al. "
            "2013 Int J Pharm 455:148 (qualitative only)")},
    },
    "heparin_fibrin": {
        "law": "affinity", "site_density": "5000 ng/mL", "k_on": "1e4 1/(M*s)",
        "k_off": "0.4 1/day", "molar_mass": "27 kg/mol",
        "references": {
            "design": "ATIII-peptide/heparin in fibrin (Sakiyama-Elbert & Hubbell 2000 J "
                      "Control Release 69:149; NT-3: Taylor, McDonald & Sakiyama-Elbert "
                      "2004 J Control Release 98:281); no release numbers of these papers "
                      "were available here",
            "site_density, k_on, k_off": "assumed: capacity 5000 ng/mL (185 nM of a 27 kDa "
                      "dimer), k_on 1e4 /(M s) (slow end of protein-heparin association), "
                      "K_D = 0.46 nM (12.5 ng/mL) << S, the regime that gives two-stage "
                      "release: free factor out over days, bound factor over months (Vo & "
                      "Meere, arXiv:1112.0464)",
            "molar_mass": "neurotrophin dimers ~27 kDa (background: NGF)"},
    },
    "plga_microspheres": {
        "law": "microspheres", "burst_fraction": 0.115, "burst_rate": "5 1/day",
        "first_order_rate": "0.0147 1/day",
        "references": {
            "burst_fraction, burst_rate": "NGF from PLA/PLGA (75/25) microspheres: burst "
                      "12.7 %, release for 90 d (Sun et al. 2014 Drug Dev Ind Pharm 40:452, "
                      "abstract); burst over ~1 day (5 /day)",
            "first_order_rate": "after the burst 0.6-1.6 % of the load per day over 23 d "
                      "(NGF/PLGA microspheres, de Boer et al. 2010 J Biomed Mater Res A, "
                      "PMC2989534, abstract): 1.1 %/day -> 0.0147 /day on the rest"},
    },
    "mmp_cleavable_peg": {
        "law": "mmp_cleavable", "specificity": _GPLGIAGQ, "first_order_rate": "0 1/day",
        "references": {"specificity": "GPLGIAGQ tether (PMC9714689 Table 2, via a vendor "
                       "page); first order in [MMP] (Lutolf et al. 2003 PNAS 100:5413)"},
    },
    "ros_responsive": {
        "law": "ros_cleavable", "ros_rate_constant": _K_ROS, "first_order_rate": "0 1/day",
        "references": {"ros_rate_constant": "assumed (no published constant found)"},
    },
    "sequential_ros_mmp": {
        "law": "sequential_ros_mmp", "ros_rate_constant": _K_ROS, "specificity": _GPLGIAGQ,
        "first_order_rate": "0 1/day",
        "references": {"design": "ROS-responsive gel releasing MMP-responsive particles "
                       "(Chen et al. 2025 Biomaterials 316:122995; no curve numbers used)",
                       "ros_rate_constant": "assumed", "specificity": "GPLGIAGQ, as "
                       "mmp_cleavable_peg"},
    },
}

# Drivers of the curves (ng/mL): 1 nM MMP-2 = 72 ng/mL, 100 µM H2O2 = 3401 ng/mL.
_MMP2_1NM, _ROS_100UM = 72.0, 3401.0
#: The cumulative release (% of loading) each preset reproduces, with its basis.
PRESET_CURVES: dict[str, dict[str, Any]] = {
    "alginate_gel": {
        "basis": "text", "source": "Peters et al. 1998: 5 %/day for up to 14 days, i.e. "
        "35 % at 7 d and 70 % at 14 d (VEGF, calcium alginate); bands cover the first-order "
        "shape against the stated constant rate",
        "days": [7.0, 14.0], "released_pct": [35.0, 70.0], "band_pct": [10.0, 5.0],
        "loading": "1000 ng/mL", "escape_rate": None, "drivers": {},
    },
    "heparin_fibrin": {
        "basis": "qualitative", "source": "two-stage release (Vo & Meere, arXiv:1112.0464): "
        "free factor out over days, the bound fraction over months. Loading 1.5 x capacity, "
        "gel escape rate 1 /day (assumed): day 3 25-41 % (about the free third), day 56 "
        "48-72 % (bound factor still leaving after two months)",
        "days": [3.0, 56.0], "released_pct": [33.0, 60.0], "band_pct": [8.0, 12.0],
        "loading": "7500 ng/mL", "escape_rate": 1.0, "drivers": {},
    },
    "plga_microspheres": {
        "basis": "text", "source": "day 1: burst 12.7 % (Sun et al. 2014); day 23: 12.7 + 22 "
        "days x 0.6-1.6 %/day = 25.9-47.9 % (de Boer et al. 2010); band = that range "
        "(two PLGA formulations, one curve); day 90: still releasing (Sun: 'release for "
        "90 d'), i.e. 55-95 % out",
        "days": [1.0, 23.0, 90.0], "released_pct": [12.7, 36.9, 75.0],
        "band_pct": [3.0, 11.0, 20.0],
        "loading": "1000 ng/mL", "escape_rate": None, "drivers": {},
    },
    "mmp_cleavable_peg": {
        "basis": "derived", "source": "1 nM MMP-2 (72 ng/mL) held constant: 1 - exp(-2.88 "
        "t/day) from the GPLGIAGQ k_cat/K_M (checks the ng/mL -> nM chain)",
        "days": [0.25, 0.5, 1.0], "released_pct": [51.3, 76.3, 94.4], "band_pct": [1.0] * 3,
        "loading": "1000 ng/mL", "escape_rate": None,
        "drivers": {"enzymes": {"MMP2": _MMP2_1NM, "MMP9": 0.0}},
    },
    "ros_responsive": {
        "basis": "assumed", "source": "100 µM H2O2-equivalent held constant: 1 - exp(-t/day)",
        "days": [1.0, 3.0], "released_pct": [63.2, 95.0], "band_pct": [1.0, 1.0],
        "loading": "1000 ng/mL", "escape_rate": None, "drivers": {"ros": _ROS_100UM},
    },
    "sequential_ros_mmp": {
        "basis": "assumed", "source": "100 µM ROS on days 0-3, then 1 nM MMP-2 from day 3: "
        "nothing before the enzyme arrives, then the particles freed by ROS release",
        "days": [3.0, 3.5, 5.0], "released_pct": [0.0, 72.5, 94.7], "band_pct": [1.0] * 3,
        "loading": "1000 ng/mL", "escape_rate": None,
        "drivers": {"ros": [[0.0, _ROS_100UM], [3.0, _ROS_100UM], [3.0001, 0.0]],
                    "enzymes": {"MMP2": [[0.0, 0.0], [3.0, 0.0], [3.0001, _MMP2_1NM]],
                                "MMP9": 0.0}},
    },
}


class Carrier(Section):
    """A carrier of one species: release law, loading and the law's parameters."""

    # Carrier preset (config/carriers.py PRESETS: every number with its source and the
    # published curve it is tested against); fills the law and its parameters.
    preset: PresetName | None = None
    # Release law. A species' default carrier is passive (issue 11): nothing is enzyme-
    # or ROS-responsive unless its carrier is.
    law: Law = "passive"
    # Factor loaded per mL of scaffold.
    loading: Conc = "0 ng/mL"
    # First-order release k0: passive rate, slow phase of microspheres, basal leak of
    # the cleavable laws (0 = none; alginate_gel: 0.08 /day).
    first_order_rate: Rate = "0 1/day"
    # Microspheres: fraction of the load in the burst (0 = none; PLGA: 0.115).
    burst_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    # Microspheres: rate of the burst (0 = none; PLGA: 5 /day, about a day).
    burst_rate: Rate = "0 1/day"
    # Affinity: binding-site capacity S as ng/mL of factor (a molar value such as
    # "185 nM" is converted with molar_mass); 0 = none.
    site_density: Conc = "0 ng/mL"
    # Affinity: association rate k_on (e.g. "1e4 1/(M*s)"); 0 = none.
    k_on: Specificity = "0 1/(nM*day)"
    # Affinity: dissociation rate k_off; K_D = k_off/k_on. 0 = none.
    k_off: Rate = "0 1/day"
    # Molar mass of the factor: neurotrophin dimers ~27 kDa (background: NGF 27 kDa).
    molar_mass: Q("kg/mol", gt=0) = "27 kg/mol"
    # Cleavage specificity k_cat/K_M per enzyme name (as the study's enzymes); rate
    # Σ (k_cat/K_M)_j [E_j], first order in enzyme (Lutolf et al. 2003). Empty = none.
    specificity: dict[str, Specificity] = {}
    # ROS cleavage: rate constant per µM H2O2-equivalent (0 = none).
    ros_rate_constant: Q("1/(uM*day)", ge=0) = "0 1/(uM*day)"
    # Degradation coupling ρ: fraction freed per fraction of matrix lost (0 = none,
    # 1 = in proportion; docs/model.md §4).
    degradation_coupling: float = Field(0.0, ge=0.0)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        name = data.get("preset")
        if isinstance(name, str) and name in PRESETS:
            preset = PRESETS[name]
            if "law" in data and data["law"] != preset["law"]:
                raise PydanticCustomError(
                    "preset_law", "preset {p} has law {law}; law = {got} contradicts it",
                    {"p": name, "law": preset["law"], "got": repr(data["law"])})
            for key, value in preset.items():
                if key != "references":
                    data.setdefault(key, dict(value) if isinstance(value, dict) else value)
        site = data.get("site_density")
        if isinstance(site, str):
            try:
                nm = parse_quantity(site, "nM")
            except PydanticCustomError:
                return data  # not molar: validated as ng/mL
            kda = parse_quantity(data.get("molar_mass", "27 kg/mol"), "kg/mol")
            data["site_density"] = f"{nm * kda!r} ng/mL"
        return data

    @field_validator("specificity")
    @classmethod
    def _enzyme_names(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k in v if not (k[:1].isalpha() and k.replace("_", "").replace("-", "")
                                    .isalnum())]
        if bad:
            raise PydanticCustomError("enzyme_name", "enzyme names are letters, digits, _ "
                                      "and - (got {bad})", {"bad": bad})
        return v

    @model_validator(mode="after")
    def _law_parameters(self) -> Self:
        law = self.law
        # A parameter of another law is refused once it is on (a written-out default,
        # 0 or empty, as in the template, is fine; molar_mass belongs to the factor).
        stray = sorted(k for k in set(PARAMETERS) - set(USES[law]) - {"molar_mass"}
                       if getattr(self, k))
        if stray:
            raise PydanticCustomError(
                "carrier_unused", "{keys} not used by law {law} (it uses {uses})",
                {"keys": ", ".join(stray), "law": law, "uses": ", ".join(USES[law])})
        for key in NEEDS[law]:
            value = getattr(self, key)
            ok = any(s > 0 for s in value.values()) if isinstance(value, dict) else value > 0
            if not ok:
                raise PydanticCustomError(
                    "carrier_needs", "law {law} needs {key} > 0 (or a preset: {presets})",
                    {"law": law, "key": key, "presets": ", ".join(
                        n for n, p in PRESETS.items() if p["law"] == law) or "none"})
        return self

    @property
    def k_on_ml_per_ng_day(self) -> float:
        """``k_on`` in mL/(ng·day): 1/(nM·day) divided by the ng/mL of 1 nM (M in kDa)."""
        return self.k_on / self.molar_mass

    @property
    def dissociation_constant(self) -> float:
        """K_D = k_off/k_on in ng/mL (inf without binding)."""
        kon = self.k_on_ml_per_ng_day
        return self.k_off / kon if kon > 0 else float("inf")
