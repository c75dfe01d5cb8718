"""Study list ``[[scavengers]]``: agents that consume reactive oxygen species.

A scavenger (e.g. polydopamine nanoparticles, which scavenge ROS and inflammatory
signals in the review this tool serves) is placed in a region and dosed like a
growth factor (a bolus at ``start`` or an infusion over ``[start, end]``); it does
not move. Its capacity ``S`` (ng of H2O2 it can still consume per mL of tissue)
removes ROS at the second-order rate ``k_s S [ROS]`` and is used up by exactly what
it removed (docs/model.md §10). Internal units: mm, day, ng/mL.
"""

from __future__ import annotations

from pydantic import Field

from scaffoldfem.config.physics import Dose, DoseKind, DoseRegion
from scaffoldfem.units import Q


class Scavenger(Dose):
    """One ROS scavenger: where, when (a dose of capacity), how fast it consumes ROS."""

    name: str = Field("scavenger", pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    region: DoseRegion = "scaffold"
    kind: DoseKind = "bolus"
    # Capacity delivered, as ng of H2O2 it can consume (bolus). Assumed: 20 ug in the
    # scaffold (~7 mm^3 at the baseline) is ~2.7 mg/mL of capacity, about the H2O2 the
    # default timeline makes there in its first week.
    amount: Q("ng", ge=0) = "20000 ng"
    # Second-order rate constant k_s of ROS consumption. Assumed: 30 mL/(ng day) makes
    # k_s S ~ 8e7 /day at the capacity above, far above H2O2's own clearance
    # (ln 2 / 2.2 s = 2.7e4 /day), so the scavenger dominates while it lasts.
    rate_constant: Q("mL/ng/day", ge=0) = "30 mL/ng/day"
