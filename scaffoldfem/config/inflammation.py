"""Study sections for the injury's inflammatory timeline, reactive oxygen species and the
list of matrix metalloproteinases: ``[inflammation]``, ``[ros]``, ``[[enzymes]]``.

Internal units: mm, day, ng/mL, kPa; molar masses in kDa. t = 0 is the injury.
Cell presence is dimensionless, 1 at the population's peak, prescribed in time and
uniform in its regions (``lesion`` = scaffold ∪ channel ∪ cavity, the lesion of
docs/model.md §10; ``scar``; a band on both sides of ``scaffold_interface``):

    p(t) = g(t)                 for t ≤ t_p
    p(t) = f + (1 − f) g(t)     for t > t_p,   g(t) = (t/t_p)^(s−1) exp(−(s−1)(t/t_p − 1))

(peak 1 at t_p, decaying to the persistent fraction f), or a (day, presence) table.
A treatment multiplies neutrophil and macrophage presence by (1 − reduction) over
[start, end). Sources: ROS ``P_n p_n + P_m p_m``, enzyme ``A p_driver`` (ng/mL/day);
the laws are in :mod:`scaffoldfem.physics.inflammation`. Every default names its
source in a comment; "assumed" marks the numbers no source fixes.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from scaffoldfem.config.base import Section
from scaffoldfem.units import Q, format_quantity, parse_quantity

Time = Q("day", gt=0)
Rate = Q("1/day", ge=0)
Diffusivity = Q("mm**2/day", gt=0)
ConcRate = Q("ng/mL/day", ge=0)
MolarMass = Q("kDa", gt=0)

Population = Literal["neutrophils", "macrophages", "astrocytes"]
Region = Literal["lesion", "scar", "scaffold_interface"]

# --- size-dependent transport defaults ---------------------------------------------------

#: NGF (β dimer, 26 kDa): free diffusivity 12.6e-7 cm²/s and tortuosity 2.14 in rat
#: striatum slices at 34 °C (Stroh et al. 2003, Biophys J 85:581).
NGF_MASS_KDA = 26.0
NGF_D_FREE = parse_quantity("12.6e-7 cm^2/s", "mm**2/day")
NGF_TORTUOSITY = 2.14
#: Tetramethylammonium (74 Da): λ ≈ 1.6 in brain ECS (Syková & Nicholson 2008,
#: Physiol Rev 88:1277), the small-molecule value.
TMA_MASS_KDA = 0.074
SMALL_TORTUOSITY = 1.6

#: Tortuosity of growth-factor classes in CNS tissue, with sources.
GROWTH_FACTOR_TORTUOSITY: dict[str, tuple[float, str]] = {
    "neurotrophin": (NGF_TORTUOSITY, "NGF in rat striatum, Stroh et al. 2003 Biophys J 85:581"),
    "small_molecule": (SMALL_TORTUOSITY, "TMA in brain ECS, Syková & Nicholson 2008 "
                                         "Physiol Rev 88:1277"),
}
#: Class of common factors: BDNF, NT-3 and NT-4 are neurotrophin dimers of NGF's size;
#: GDNF (TGF-β family, ~30 kDa dimer) is given the same hindrance (assumed, by size).
SPECIES_CLASS: dict[str, str] = {
    name: "neurotrophin" for name in ("NGF", "BDNF", "NT3", "NT-3", "NT4", "NT-4", "GDNF")
}


def stokes_einstein_diffusivity(mass_kda: float) -> float:
    """Free diffusivity (mm²/day) of a globular protein, scaled from NGF.

    Stokes–Einstein ``D ∝ 1/R_h`` with ``R_h ∝ M^(1/3)``: ``D = D_NGF (M_NGF/M)^(1/3)``.

    Args:
        mass_kda: Molar mass (kDa), > 0.
    """
    return NGF_D_FREE * (NGF_MASS_KDA / mass_kda) ** (1.0 / 3.0)


def fill_transport_by_mass(data: object, default_mass: str | None = None) -> object:
    """Raw section data with omitted ``diffusivity_free`` and ``tortuosity`` filled from
    ``molar_mass`` (or ``default_mass`` when it is omitted too; None: leave them).

    A bad mass is left for its own field to report (one line); the rest stays None.
    """
    if not isinstance(data, dict):
        return data
    raw = data.get("molar_mass", default_mass)
    if raw is None:
        return data
    try:
        mass = parse_quantity(raw, "kDa")
    except PydanticCustomError:
        return data
    if not mass > 0:
        return data
    data = dict(data)
    if data.get("diffusivity_free") is None:
        data["diffusivity_free"] = format_quantity(stokes_einstein_diffusivity(mass),
                                                   "mm**2/day")
    if data.get("tortuosity") is None:
        data["tortuosity"] = tortuosity_for_mass(mass)
    return data


def tortuosity_for_mass(mass_kda: float) -> float:
    """Tissue tortuosity by size: log-linear in M through TMA (74 Da, 1.6) and NGF
    (26 kDa, 2.14); 1.6 below 74 Da.

    Hindrance grows with molecular size in brain ECS (Thorne & Nicholson 2006, PNAS
    103:5567); above 26 kDa the line is an extrapolation (assumed), e.g. 2.23 at 72 kDa
    and 2.26 at 92 kDa.

    Args:
        mass_kda: Molar mass (kDa), > 0.
    """
    if mass_kda <= TMA_MASS_KDA:
        return SMALL_TORTUOSITY
    slope = (NGF_TORTUOSITY - SMALL_TORTUOSITY) / math.log(NGF_MASS_KDA / TMA_MASS_KDA)
    return SMALL_TORTUOSITY + slope * math.log(mass_kda / TMA_MASS_KDA)


def species_tortuosity(name: str, default: float = SMALL_TORTUOSITY) -> float:
    """Default tortuosity of a growth factor by name (``BDNF`` → 2.14), else ``default``."""
    cls = SPECIES_CLASS.get(name)
    return GROWTH_FACTOR_TORTUOSITY[cls][0] if cls else default


def _table_checked(table: list[tuple[float, float]], what: str) -> None:
    days = [d for d, _ in table]
    if len(days) < 2 or any(b <= a for a, b in pairwise(days)) or days[0] < 0 \
            or any(v < 0 for _, v in table):
        raise PydanticCustomError(
            "table", "needs at least two (day, {what}) rows with increasing days from 0 "
                     "and non-negative values (got {got})",
            {"what": what, "got": [list(r) for r in table]})


# --- cell presence --------------------------------------------------------------------------


class CellCourse(Section):
    """Presence of one cell population (1 at its peak): gamma peak then persistent fraction."""

    profile: Literal["gamma", "table"] = "gamma"
    peak_day: Time
    shape: float = Field(gt=1.0)
    persistent_fraction: float = Field(ge=0.0, lt=1.0)
    # (day, presence) rows for profile = "table": linear in between, 0 before the first
    # row, the last value after the last.
    table: list[tuple[float, float]] = []
    regions: list[Region] = Field(min_length=1)

    @field_validator("table")
    @classmethod
    def _table(cls, v: list[tuple[float, float]], info: ValidationInfo
               ) -> list[tuple[float, float]]:
        if info.data.get("profile") == "table":
            _table_checked(v, "presence")
        return v


class NeutrophilCourse(CellCourse):
    """Neutrophils: peak ~1 day after injury, cleared within ~1 week."""

    # Neutrophils peak ~24 h after rat SCI and decrease over the next 7-10 days (Hellenbrand
    # et al. 2021 J Neuroinflammation 18:284, Figs 4-5).
    peak_day: Time = "1 day"
    # s = 2: 41 % of peak at day 3, 1.7 % at day 7 (assumed shape within the above).
    shape: float = Field(2.0, gt=1.0)
    # Cleared: no persistent neutrophils (assumed; late neutrophil phases not modelled).
    persistent_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    # Infiltrate the injury site and its rim (Hellenbrand et al. 2021).
    regions: list[Region] = Field(["lesion", "scar"], min_length=1)


class MacrophageCourse(CellCourse):
    """Macrophages and activated microglia: peak ~1 week, persist for weeks."""

    # Macrophage/microglial responses peak at 5-7 days (rat TBI, Turtzo et al. 2014
    # J Neuroinflammation 11:82); 7 days assumed for the cord.
    peak_day: Time = "7 day"
    # s = 2: 34 % at day 1 (microglia respond early, Hellenbrand et al. 2021), 82 % at day 14.
    shape: float = Field(2.0, gt=1.0)
    # They persist: the M1 response is "rapidly induced and then maintained" (Kigerl et al.
    # 2009 J Neurosci 29:13435); CD68+ macrophages are maximal over the first 4 weeks and
    # still phagocytose at 16 weeks in rat SCI (Kwiecien et al. 2020 PLoS One
    # 15:e0226584). 0.3 assumed: 44 % of peak at day 28.
    persistent_fraction: float = Field(0.3, ge=0.0, lt=1.0)
    regions: list[Region] = Field(["lesion", "scar"], min_length=1)


class AstrocyteCourse(CellCourse):
    """Reactive astrocytes, as the drive of MMP-2: from day ~3-5, highest over weeks 1-2."""

    # MMP-2 rises at 5 days (de Castro et al. 2000 Neuroreport 11:3551) and increases between
    # 7 and 14 d in reactive astrocytes bordering the lesion (Hsu et al. 2006 J Neurosci
    # 26:9841); peak of the drive at 10 days (assumed, mid-window).
    peak_day: Time = "10 day"
    # s = 5: 13 % at day 3, 46 % at day 5, 80 % at day 7 (assumed shape).
    shape: float = Field(5.0, gt=1.0)
    # Active MMP-2 stays elevated for at least 21 days (mouse, Goussev et al. 2003
    # J Neurosurg Spine 99:188); 0.5 assumed: 62 % of peak at day 21.
    persistent_fraction: float = Field(0.5, ge=0.0, lt=1.0)
    # The astrocytic scar rim around the lesion (Hsu et al. 2006).
    regions: list[Region] = Field(["scar", "scaffold_interface"], min_length=1)


class TreatmentConfig(Section):
    """Anti-inflammatory treatment: neutrophil and macrophage presence × (1 − reduction)."""

    enabled: bool = False
    # High-dose methylprednisolone is given within 8 h of SCI (NASCIS trials, Hall 2011
    # Neurotherapeutics 8:152); it lowered H2O2 after rat SCI without scavenging it in
    # vitro (Liu et al. 2013 BMC Neurosci 14:23): a production, not a scavenger, effect.
    start: Q("day", ge=0) = "0 day"
    # 24-48 h regimens (NASCIS, not checked here): 2 days assumed.
    end: Time = "2 day"
    # Reduction of presence while on treatment (assumed, to be swept).
    neutrophil_reduction: float = Field(0.5, ge=0.0, le=1.0)
    macrophage_reduction: float = Field(0.5, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.end <= self.start:
            raise PydanticCustomError(
                "window", "treatment must end after it starts (start {s} day, end {e} day)",
                {"s": self.start, "e": self.end})
        return self


class InflammationConfig(Section):
    """Prescribed presence (1 = peak) of inflammatory cells and reactive astrocytes."""

    neutrophils: NeutrophilCourse = NeutrophilCourse()
    macrophages: MacrophageCourse = MacrophageCourse()
    astrocytes: AstrocyteCourse = AstrocyteCourse()
    # Presence in scaffold_interface acts in a band of this half-width on both sides
    # (a volume source, so its total does not depend on the mesh).
    interface_band: Q("mm", gt=0) = "0.1 mm"
    treatment: TreatmentConfig = TreatmentConfig()

    def course(self, population: Population) -> CellCourse:
        """The time course of ``population``."""
        return getattr(self, population)


# --- reactive oxygen species ----------------------------------------------------------------


class ROSConfig(Section):
    """Reactive oxygen species as H2O2: made by neutrophils and macrophages, fast decay.

    Decay length sqrt(D*/k) = sqrt(216 mm²/day / 27 200 /day) ≈ 0.09 mm with the defaults:
    a mesh of 0.1 mm does not resolve it, so ROS is then effectively local (production ≈
    decay, c ≈ source/k) and spreads only by about one cell.
    """

    enabled: bool = True
    # H2O2, 34.01 g/mol: 1 µM = 34 ng/mL.
    molar_mass: MolarMass = "34.01 Da"
    # Effective diffusivity of H2O2 in rat brain in vivo, D* = 2.5e-5 cm²/s (Ledo et al. 2022
    # Redox Biol 50:102250), entered with tortuosity 1 so that the tissue value is the
    # measured one (it exceeds free-solution values of ~1.4-1.8e-5 cm²/s, not checked here).
    diffusivity_free: Diffusivity = "2.5e-5 cm^2/s"
    tortuosity: float = Field(1.0, ge=1.0)
    # Extracellular H2O2 is removed with t½ = 2.2 s in rat brain in vivo (Ledo et al. 2022).
    half_life: Time = "2.2 s"
    # Production at neutrophil presence 1: ~1 µM (34 ng/mL) H2O2 at their peak, P = k × 34
    # ng/mL (assumed level; H2O2 rises after rat SCI, Liu et al. 2013 BMC Neurosci 14:23).
    neutrophil_production: ConcRate = "9.3e5 ng/mL/day"
    # Macrophages (M1 cells produce ROS, Kigerl et al. 2009): half the neutrophil rate per
    # presence unit (assumed).
    macrophage_production: ConcRate = "4.6e5 ng/mL/day"


# --- enzymes ------------------------------------------------------------------------------


class EnzymeEntry(Section):
    """One matrix metalloproteinase: transport, decay, TIMP sink, cell-driven source."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    # MMP-9 92 kDa, MMP-2 72 kDa (latent forms; active ~82 and ~62 kDa).
    molar_mass: MolarMass
    # When omitted: Stokes-Einstein scaling of NGF's 12.6e-7 cm²/s at 26 kDa (Stroh et al. 2003
    # Biophys J 85:581), D ∝ M^(-1/3): MMP-9 8.3e-7, MMP-2 9.0e-7 cm²/s.
    diffusivity_free: Diffusivity | None = None
    # When omitted: by size (tortuosity_for_mass), between TMA 1.6 (Syková & Nicholson 2008) and
    # NGF 2.14 (Stroh 2003), larger for larger molecules (Thorne & Nicholson 2006 PNAS
    # 103:5567): MMP-9 2.26, MMP-2 2.23 (extrapolated, assumed).
    tortuosity: float | None = Field(None, ge=1.0)
    # Loss of activity in tissue; not measured: MMP-9 2 h so that it follows neutrophils
    # (maximum at 24 h, markedly reduced by 72 h, gone at 7 d: Noble et al. 2002 J Neurosci
    # 22:7526), MMP-2 1 day (assumed).
    half_life: Time
    # Optional first-order TIMP inhibition, added to the decay (0 = off): TIMP levels are
    # unchanged after SCI (Noble et al. 2002; de Castro et al. 2000), so by default it is
    # lumped into the half-life.
    timp_rate: Rate = "0 1/day"
    # The cells that make it: MMP-9 neutrophils (their principal source after SCI, de Castro
    # et al. 2000), MMP-2 reactive astrocytes (Hsu et al. 2006 J Neurosci 26:9841).
    driver: Population
    # Production at driver presence 1; levels are not known in cord tissue: peaks of ~50
    # ng/mL MMP-9 (0.5 nM) and ~20 ng/mL MMP-2 assumed (pro-MMP-2 is 5.6 ng/mL in normal
    # dog CSF, Bergman et al. 2002 Am J Vet Res 63:1359).
    amplitude: ConcRate
    regions: list[Region] = Field(min_length=1)
    # Half-width of the source band on both sides of scaffold_interface.
    interface_band: Q("mm", gt=0) = "0.1 mm"

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_size(cls, data: object) -> object:
        return fill_transport_by_mass(data)


def default_enzymes() -> list[EnzymeEntry]:
    """MMP-9 (early, neutrophils) and MMP-2 (later, reactive astrocytes); sources in the
    field comments of :class:`EnzymeEntry`."""
    return [
        EnzymeEntry(name="MMP-9", molar_mass="92 kDa", half_life="2 h", driver="neutrophils",
                    amplitude="420 ng/mL/day", regions=["lesion", "scar"]),
        EnzymeEntry(name="MMP-2", molar_mass="72 kDa", half_life="1 day", driver="astrocytes",
                    amplitude="14 ng/mL/day", regions=["scar", "scaffold_interface"]),
    ]


def enzyme_problems(enzymes: list[EnzymeEntry]) -> list[str]:
    """One ``key: message`` line per duplicated enzyme name in an ``[[enzymes]]`` list."""
    seen: set[str] = set()
    lines = []
    for i, e in enumerate(enzymes):
        if e.name in seen:
            lines.append(f"enzymes[{i}].name: duplicate enzyme name {e.name!r}")
        seen.add(e.name)
    return lines
