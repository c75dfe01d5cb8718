"""Study section ``[axons]``: growth-cone seeding, guidance and growth parameters.

Weights are dimensionless and act per growth step of length ``step_length``
at baseline speed (the heading is the normalised weighted sum of unit cues);
see ``docs/model.md`` §11 for the model.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from scaffoldfem.config.base import Section
from scaffoldfem.regions import CELL_TAGS
from scaffoldfem.units import Q


def _check_regions(names: list[str] | dict[str, float]) -> None:
    bad = [n for n in names if n not in CELL_TAGS]
    if bad:
        raise ValueError(f"unknown region(s) {', '.join(map(repr, bad))}; "
                         f"known: {', '.join(CELL_TAGS)}")


class AxonWeights(Section):
    """Weights of the cues in the heading update (dimensionless, >= 0)."""

    # Persistent random walk with bias (Nguyen et al. 2016 eLife 5:e12248;
    # Katz 1985): persistence of the order of the bias keeps paths smooth.
    persistence: float = Field(1.0, ge=0)
    # Chemotactic bias at full strength (the strength itself is 0..1, see
    # chemotaxis_half_saturation).
    chemotaxis: float = Field(1.0, ge=0)
    # Durotaxis towards softer tissue (Koser et al. 2016 Nat Neurosci 19:1592);
    # weaker than chemotaxis by assumption.
    durotaxis: float = Field(0.3, ge=0)
    # Random turning: 0.15 against persistence 1 gives ~7° rms per 10 µm step,
    # a persistence length of ~1 mm (assumed; axons in vivo are nearly straight
    # over that distance).
    noise: float = Field(0.15, ge=0)
    # Repulsion from CSPG-rich scar at its border (stripe assays: growth cones
    # turn away from CSPG, Snow et al. 1990 Exp Neurol 109:111). It acts in
    # the cells on either side of the scar border, so the total deflection
    # grows with the local cell size / step_length: calibrate on the mesh used.
    # 0.2 turns back most but not all cones (assumed).
    scar_repulsion: float = Field(0.2, ge=0)
    # Contact guidance along the channel / fibre axis per region: strong in
    # channel lumens (axons follow channels, Olson et al. 2009, 7-channel PLGA;
    # Koffler 2019 Nat Med 25:263), weak in an isotropic matrix, moderate in
    # white matter whose tracts run along the cord. Regions not listed: 0.
    guidance: dict[str, float] = Field(
        default_factory=lambda: {"channel": 2.0, "scaffold": 0.2, "white_matter": 0.3})

    @field_validator("guidance")
    @classmethod
    def _regions(cls, v: dict[str, float]) -> dict[str, float]:
        _check_regions(v)
        if any(w < 0 for w in v.values()):
            raise ValueError("guidance weights must be >= 0")
        return v


class AxonsConfig(Section):
    """Growth-cone tracing parameters (internal units mm, day, ng/mL)."""

    enabled: bool = True
    # Number of descending axons seeded at the rostral lesion face (issue default).
    count: int = Field(500, ge=0)
    # Seed of the counter-based random numbers (seeding and noise).
    seed: int = Field(1, ge=0)
    # Regions in which growth cones start (a CST-like white-matter population).
    seeding_regions: list[str] = Field(default_factory=lambda: ["white_matter"])
    # Distance from the lesion face into host tissue of the seeding plane; must clear
    # the scar rim (0.2 mm by default), so growth cones start in intact tissue.
    seed_offset: Q("mm", gt=0) = "0.4 mm"
    # Also seed ascending (sensory) axons at the caudal lesion face.
    sensory: bool = False
    # Number of sensory axons (None: same as count).
    sensory_count: int | None = Field(None, ge=0)
    # Baseline CNS regeneration speed in engineered tissue
    # (Laranjeira et al. 2022 J R Soc Interface).
    speed: Q("mm/day", gt=0) = "0.24 mm/day"
    # Upper bound: ~1 mm/day into permissive grafts (e.g. peripheral nerve grafts).
    max_speed: Q("mm/day", gt=0) = "1 mm/day"
    # Speed gain with trophic receptor occupancy: v = v0 (1 + gain * P_bound),
    # P_bound = 1 - prod(1 - p_i). Neurotrophins accelerate elongation; the
    # size of the effect in vivo is not known (assumed).
    occupancy_speed_gain: float = Field(1.0, ge=0)
    weights: AxonWeights = Field(default_factory=AxonWeights)
    # Receptor dissociation constants by growth factor. 1 nM is the value
    # commonly used in growth-cone gradient models (Goodhill & Urbach 1999
    # J Neurobiol 41:230; Mortimer et al. 2009 PNAS 106:10296); for the
    # ~27 kDa BDNF and NT-3 dimers 1 nM ~ 27 ng/mL, GDNF dimer ~30 kDa.
    # Reported Trk/GFRa1 affinities span 1e-11..1e-9 M: treat as parameters.
    receptor_kd: dict[str, Q("ng/mL", gt=0)] = Field(default_factory=lambda: {
        "BDNF": "27 ng/mL", "NT-3": "27 ng/mL", "NT3": "27 ng/mL", "GDNF": "30 ng/mL"})
    # K_d for growth factors not listed above.
    default_kd: Q("ng/mL", gt=0) = "27 ng/mL"
    # Growth-cone width over which the gradient is sensed (~10 µm; signal
    # averaged over about a third of it, Xu et al. 2005).
    growth_cone_width: Q("mm", gt=0) = "0.01 mm"
    # Smallest occupancy difference across the growth cone that biases growth.
    # Growth cones respond to ~0.1-1 % concentration differences across their
    # width (Rosoff et al. 2004 Nat Neurosci 7:678; Goodhill & Urbach 1999);
    # at c ~ K_d that is dp ~ 2.5e-4..2.5e-3.
    detection_threshold: float = Field(1e-3, ge=0)
    # dp at which the chemotactic bias reaches half strength (saturation in
    # steep gradients, Mortimer 2009); assumed.
    chemotaxis_half_saturation: float = Field(0.01, gt=0)
    # Smallest relative stiffness difference across the growth cone that
    # biases growth (assumed).
    durotaxis_threshold: float = Field(0.01, ge=0)
    # Speed factor in scar: CSPGs slow and arrest growth cones (dystrophic end
    # bulbs, Silver & Miller 2004 Nat Rev Neurosci 5:146); assumed value.
    scar_speed_factor: float = Field(0.3, gt=0, le=1)
    # A cone that has not moved stall_distance in stall_time is stalled (ends).
    stall_time: Q("day", gt=0) = "3 day"
    stall_distance: Q("mm", gt=0) = "0.05 mm"
    # Crossed = reached this depth into host tissue beyond the far lesion face.
    cross_depth: Q("mm", gt=0) = "0.5 mm"
    # Crossed axons stop (True) or keep growing until they stall or exit.
    stop_at_cross: bool = False
    # Longest growth step (at the fastest speed the model allows, one
    # growth-cone width); also the scale on which the weights act.
    step_length: Q("mm", gt=0) = "0.01 mm"
    # Minimum number of growth steps per solver step.
    substeps: int = Field(1, ge=1)
    # Record a trajectory point every this many growth steps (and at the end).
    record_every: int = Field(5, ge=1)
    # Regions growth cones cannot enter (slide along their border): a fluid
    # cyst offers no substrate.
    barrier_regions: list[str] = Field(default_factory=lambda: ["cavity"])
    # Aligned-fibre scaffold: contact guidance in `scaffold` along the fibre
    # axis (the cord axis unless a fibre field is given) with fibre_guidance.
    aligned_fibres: bool = False
    fibre_guidance: float = Field(1.5, ge=0)

    @field_validator("seeding_regions", "barrier_regions")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        _check_regions(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AxonsConfig:
        if self.max_speed < self.speed:
            raise ValueError("max_speed must be >= speed")
        if set(self.seeding_regions) & set(self.barrier_regions):
            raise ValueError("a seeding region cannot also be a barrier region")
        return self

    def kd(self, species: str) -> float:
        """Receptor K_d (ng/mL) for a growth factor."""
        return self.receptor_kd.get(species, self.default_kd)

    def guidance_weight(self, region: str) -> float:
        """Contact-guidance weight in a region (aligned fibres override the matrix)."""
        if region == "scaffold" and self.aligned_fibres:
            return self.fibre_guidance
        return self.weights.guidance.get(region, 0.0)
