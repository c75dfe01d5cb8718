"""Study sections ``[cspg]`` (the scar's chondroitin sulfate proteoglycans) and
``[chabc]`` (chondroitinase ABC, the enzyme that digests them).

The CSPG level ``s`` is dimensionless, 1 = the mature scar the growth cones were
calibrated on (``axons.scar_cspg``); it is immobile (per cell) and obeys

    ds/dt = k_dep A(t) χ (1 − s/s_max) − (Σ_j k_j m_j + k_ch c_ch) s

with ``A`` the presence of reactive astrocytes (``[inflammation.astrocytes]``),
``χ`` the indicator of the deposition regions, ``m_j`` the enzymes named in
``clearance`` (ng/mL, first order in each) and ``c_ch`` the active ChABC (ng/mL).
ChABC is dosed like a growth factor, diffuses and loses its activity at first order
(its thermal instability at 37 °C). Laws: :mod:`scaffoldfem.physics.cspg`; the
equations and sources: docs/model.md, "CSPG scar and chondroitinase ABC".
Internal units: mm, day, ng/mL.
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from scaffoldfem.config.base import Section
from scaffoldfem.config.inflammation import Population, Region, fill_transport_by_mass
from scaffoldfem.config.physics import Dose, DoseKind, DoseRegion
from scaffoldfem.units import Q

SecondOrder = Q("mL/ng/day", ge=0)


class CSPGConfig(Section):
    """The CSPG level of the scar: deposited by reactive astrocytes, cleared by enzymes."""

    # Off: no CSPG field; the growth cones see the static tag axons.scar_cspg in
    # `scar` cells (the behaviour before this section existed).
    enabled: bool = True
    # The cells whose presence drives deposition: reactive astrocytes, a source of
    # neurocan after SCI (GFAP+ cells, in situ hybridisation: Jones, Margolis &
    # Tuszynski 2003 Exp Neurol 182:399).
    driver: Population = "astrocytes"
    # Where CSPGs are laid down: the scar rim, the parenchyma surrounding the lesion
    # (Jones et al. 2003).
    regions: list[Region] = Field(["scar"], min_length=1)
    # Half-width of the band around scaffold_interface when that region is listed.
    interface_band: Q("mm", gt=0) = "0.1 mm"
    # Deposition rate k_dep at driver presence 1. Neurocan, brevican and versican rise
    # within days around the lesion and peak at 2 weeks (Jones et al. 2003): with the
    # default astrocyte course (onset day 3-5, peak day 10) k_dep/s_max = 0.35 /day
    # gives 3 % of s_max at day 3, 49 % at day 7, 95 % at day 14 (fitted to that window).
    deposition_rate: Q("1/day", ge=0) = "0.4375 1/day"
    # Capacity s_max (level the deposition saturates at without clearance). MMP-2-null
    # mice form scars with more CSPG immunoreactivity (Hsu et al. 2006 J Neurosci
    # 26:9841): 1.25 assumed, so that with the default MMP-2 clearance the mature scar
    # sits near 1 = axons.scar_cspg (the level the growth-cone defaults assume).
    capacity: float = Field(1.25, gt=0)
    # Clearance k_j per enzyme (first order in the enzyme and in s). MMP-2 deficiency
    # raises CSPG in the scar (Hsu et al. 2006); the value is assumed: ~0.06 /day at the
    # 3-5 ng/mL of MMP-2 the default timeline leaves in the rim (coarse baseline mesh,
    # days 14-28), which holds the plateau at ~1.0 instead of s_max = 1.25. Enzymes
    # named here but absent from [[enzymes]] clear nothing.
    clearance: dict[str, SecondOrder] = Field(
        default_factory=lambda: {"MMP-2": "0.015 mL/ng/day"})
    # Level at t = 0 in the deposition regions (0: an acute injury; 1: a mature scar,
    # e.g. a chronic injury treated later).
    initial: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _initial_below_capacity(self) -> CSPGConfig:
        if self.initial > self.capacity:
            raise PydanticCustomError(
                "cspg_initial", "initial level {i} exceeds the capacity {c}",
                {"i": self.initial, "c": self.capacity})
        return self


class ChABCDose(Dose):
    """One delivery of chondroitinase ABC (ng of active enzyme): bolus or infusion."""

    region: DoseRegion = "scaffold"
    kind: DoseKind = "bolus"


class ChABCConfig(Section):
    """Chondroitinase ABC: dosed, diffusing, losing activity at 37 °C, digesting CSPG."""

    # Deliveries (none by default: no ChABC field is solved). A bolus of `amount` ng at
    # `start` or an infusion of `rate` ng/day over [start, end], spread over `region`.
    doses: list[ChABCDose] = []
    # Proteus vulgaris chondroitinase ABC I, ~120 kDa (the size usually quoted;
    # not checked here).
    molar_mass: Q("kDa", gt=0) = "120 kDa"
    # When omitted: Stokes-Einstein scaling from NGF (as for [[enzymes]]), 7.6e-7 cm²/s.
    diffusivity_free: Q("mm**2/day", gt=0) | None = None
    # When omitted: by size (tortuosity_for_mass), 2.28 at 120 kDa (extrapolated).
    tortuosity: float | None = Field(None, ge=1.0)
    # Loss of activity at 37 °C, first order. ChABC is thermally unstable at body
    # temperature (Tester, Plaas & Howland 2007 J Neurosci Res 85:1110, not checked
    # here; Raspa et al. 2019 CNS Neurosci Ther 25:86, which stabilised it with
    # sucrose), and trehalose kept its activity for weeks in vitro (Lee, McKeon &
    # Bellamkonda 2010 PNAS 107:3340). 1 day assumed (3 % left after 5 days); a
    # thermostabilised formulation: e.g. "10 day".
    half_life: Q("day", gt=0) = "1 day"
    # Digestion k_ch (first order in active ChABC and in s). Assumed: 0.1 mL/(ng day),
    # i.e. the scar's CSPG digested at 1 /day per 10 ng/mL of active enzyme.
    digestion_rate: SecondOrder = "0.1 mL/ng/day"

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_size(cls, data: object) -> object:
        return fill_transport_by_mass(data, default_mass="120 kDa")


def cspg_problems(cspg: CSPGConfig, chabc: ChABCConfig, present: Collection[str]) -> list[str]:
    """``key: message`` lines: ChABC dosed into a region the geometry does not build.

    Args:
        cspg: The ``[cspg]`` section.
        chabc: The ``[chabc]`` section.
        present: The cell regions the geometry builds.
    """
    lines = [f"chabc.doses[{i}].region: region {d.region!r} is not built by this geometry"
             for i, d in enumerate(chabc.doses) if d.region not in present]
    if chabc.doses and not cspg.enabled:
        lines.append("chabc.doses: ChABC digests the CSPG field, which is off "
                     "(set cspg.enabled = true)")
    return lines
