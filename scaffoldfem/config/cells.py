"""Study section for transplanted cell grafts: ``[cells]`` with ``[[cells.cohorts]]``.

Each cohort is one graft: a cell type at a density (cells/mm³) placed in named
regions at its transplant time (day after injury), secreting named factors
(ng/cell/day) while it lives. Its death rate rises with the injury's inflammation
(the prescribed presence of ``[inflammation]``) and falls with trophic support
(receptor occupancy of a named factor):

    k(t, x) = k0 (1 + β I(t, x)) / (1 + γ c/(c + K)),   I = Σ_pop w_pop p_pop(t) χ_pop(x)

(docs/model.md §4, "Cell grafts"; the law in :mod:`scaffoldfem.physics.grafts`).
Internal units: mm, day, ng/mL; densities cells/mm³.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from scaffoldfem.config.base import Section
from scaffoldfem.config.inflammation import Population
from scaffoldfem.units import Q

__all__ = ["CellsConfig", "Cohort", "cohort_problems", "default_cohorts"]

CellRegion = Literal["scaffold", "channel", "cavity", "scar", "white_matter", "grey_matter"]
Weight = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]

#: Keys of the single population before cohorts (issue 12), and where they went.
_MOVED = {
    "density": "cells.cohorts.<name>.density",
    "half_life": "cells.cohorts.<name>.half_life",
    "regions": "cells.cohorts.<name>.regions",
}


class Cohort(Section):
    """One graft: cell type, density, regions, transplant time, what it secretes."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    # A label (MSC, NSPC, Schwann, ...): written to the outputs, not used by the laws.
    cell_type: str = "MSC"
    # Grafts of ~1e5 cells/µL (Koffler et al. 2019 Nat Med 25:263 used 1e5-2e5 cells/µL).
    density: Q("cell/mm**3", ge=0) = "1e5 cell/mm^3"
    # Cells seeded in the scaffold and its channels (default); host regions also work.
    regions: list[CellRegion] = Field(["scaffold", "channel"], min_length=1)
    # Day after injury at which the cells are placed (0: with the scaffold). Subacute
    # grafting (1-2 weeks) is held to be optimal: "the immediately post-traumatic
    # microenvironment ... is not favorable for the survival" of NSC grafts (Okano et al.
    # 2003 Semin Cell Dev Biol 14:191; Okano's group grafts at day 9, e.g. Nori et al.
    # 2011 PNAS 108:16825, not checked here).
    transplant_time: Q("day", ge=0) = "0 day"
    # ng/cell/day per factor; the factor must be a species of the study. MSCs secrete
    # BDNF/GDNF at ~0.1-1 ng per 10^6 cells per day (order of magnitude, to be swept).
    secretion: dict[str, Q("ng/cell/day", ge=0)] = {}
    # Death rate without inflammation or trophic support, k0 = ln 2 / half_life. With
    # sensitivity 3 and the default timeline, 2.3 % of a day-0 graft is left at 8 weeks
    # (4.5 % at 6 weeks) and 9.3 % of a day-14 graft 6 weeks after grafting: poor
    # survival in the acute lesion, better subacute (Okano et al. 2003), with 1-5 % for
    # acute grafts as the review's range (Parr et al. 2008 and Hofstetter et al. 2002
    # PNAS 99:2199 not checked here). Assumed.
    half_life: Q("day", gt=0) = "28 day"
    # β: relative rise of the death rate per unit of inflammation index I (assumed; fewer
    # grafted cells survive in the inflamed acute lesion, Okano et al. 2003; fewer after
    # chronic, 60-day, than subacute, 9-day, grafting, Piltti et al. 2013 Stem Cells
    # Transl Med 2:961: scar, not inflammation, which this law does not model).
    inflammation_sensitivity: float = Field(3.0, ge=0.0)
    # Weights w of the populations in I = Σ w p_pop χ_pop (presence 1 at the peak, in the
    # population's own regions, treatment applied): neutrophils and macrophages, equal
    # (assumed).
    inflammation_drivers: dict[Population, Weight] = {"neutrophils": 1.0, "macrophages": 1.0}
    # Trophic support: receptor occupancy c/(c + K) of this species (cell mean at the
    # start of each step) divides the death rate by (1 + γ occ); none by default. Grafts
    # given a growth-factor cocktail filled the lesion (Lu et al. 2012 Cell 150:1264, not
    # checked here).
    trophic_factor: str | None = None
    # K: of the order of the receptor K_d used by the growth cones (axons.receptor_kd).
    trophic_half_saturation: Q("ng/mL", gt=0) = "27 ng/mL"
    # γ: full occupancy halves the death rate at γ = 1 (assumed, to be swept).
    trophic_protection: float = Field(1.0, ge=0.0)


def default_cohorts() -> list[Cohort]:
    """One graft at t = 0 in the scaffold and channels, secreting GDNF (the baseline)."""
    return [Cohort(name="graft", secretion={"GDNF": "5e-7 ng/cell/day"})]


class CellsConfig(Section):
    """Transplanted cell grafts: cohorts with their own time, place, secretion and survival."""

    # false: no graft at all (every cohort off).
    enabled: bool = True
    cohorts: list[Cohort] = Field(default_factory=default_cohorts)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            old = [k for k in _MOVED if k in data]
            if old:
                raise PydanticCustomError(
                    "moved", "cells.{key} is now per cohort: {new} (one [[cells.cohorts]] "
                             "table per graft, issue 12)",
                    {"key": old[0], "new": _MOVED[old[0]]})
        return data


def cohort_problems(cells: CellsConfig, species: list[str]) -> list[str]:
    """Duplicate cohort names; secreted or trophic factors that are not species of the
    study (the default cohort's default GDNF is not held against a study without GDNF)."""
    out = []
    seen: set[str] = set()
    default = {c.name: c for c in default_cohorts()}
    for i, c in enumerate(cells.cohorts):
        if c.name in seen:
            out.append(f"cells.cohorts[{i}].name: duplicate cohort name {c.name!r}")
        seen.add(c.name)
        ref = default.get(c.name)
        for name, rate in c.secretion.items():
            if name in species or (ref is not None and ref.secretion.get(name) == rate):
                continue
            out.append(f"cells.cohorts[{i}].secretion.{name}: no species {name!r} in this "
                       f"study (got {rate:g} ng/cell/day; species: {', '.join(species)})")
        if c.trophic_factor is not None and c.trophic_factor not in species:
            out.append(f"cells.cohorts[{i}].trophic_factor: no species {c.trophic_factor!r} "
                       f"in this study (species: {', '.join(species)})")
    return out
