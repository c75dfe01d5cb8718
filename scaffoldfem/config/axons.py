"""Study section ``[axons]``: growth-cone seeding, guidance and growth parameters.

The growth cone is a persistent random walk per unit arc length s with cue drifts
(``docs/model.md`` §11): every cue is a curvature (1/mm) or a dimensionless gain
times the gradient of a smoothed field, so the path shape does not depend on
the mesh, on the arc step or on the speed; the speed law only sets how fast a
cone moves along its path.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from scaffoldfem.config.base import Section
from scaffoldfem.regions import CELL_TAGS
from scaffoldfem.units import Q

Curvature = Q("1/mm", ge=0)


def _check_regions(names: list[str] | dict[str, float]) -> None:
    bad = [n for n in names if n not in CELL_TAGS]
    if bad:
        raise ValueError(f"unknown region(s) {', '.join(map(repr, bad))}; "
                         f"known: {', '.join(CELL_TAGS)}")


class AxonCues(Section):
    """Strengths of the cue drifts in the heading law (per unit arc length)."""

    # Largest turning curvature from chemotaxis, reached when the receptor
    # response rho -> 1 (steep gradient at c ~ K_d). 5/mm: a cone across a
    # saturating gradient aligns with it within ~0.3 mm; against the rotational
    # noise of persistence_length 1 mm the heading's spread is von Mises-Fisher
    # with concentration 2 l_p kappa_c rho = 10 rho (assumed; the response law
    # itself follows Mortimer et al. 2009 PNAS 106:10296).
    chemotaxis: Curvature = "5 1/mm"
    # Contact guidance along the channel / fibre axis per region (nematic:
    # kappa_g (a.d) P(d) a, never reverses a cone). Near alignment the angle to
    # the axis relaxes over 1/kappa_g. Channel lumens 20/mm (axons run straight
    # along channels: Krych et al. 2009 Acta Biomater 5:2551, 7-channel PLGA;
    # Koffler et al. 2019 Nat Med 25:263); white matter 5/mm (regenerating
    # axons follow the longitudinal tracts); isotropic porous matrix 1/mm; all
    # assumed orders of magnitude. Regions not listed: 0.
    guidance: dict[str, Curvature] = Field(default_factory=lambda: {
        "channel": "20 1/mm", "scaffold": "1 1/mm", "white_matter": "5 1/mm"})
    # Durotaxis towards softer substrate, drift -chi_E P(d) grad q~ with q the
    # saturated log-stiffness (see durotaxis_saturation): a cone crossing a
    # stiffness border turns by about chi_E * delta(ln E). Axons turn towards
    # softer tissue (Koser et al. 2016 Nat Neurosci 19:1592); 0.5 (about 50
    # degrees across the 0.1 vs 1 kPa contrast of Koser's gels) is assumed.
    durotaxis: float = Field(0.5, ge=0)
    # Repulsion from CSPG / scar, drift -chi_s P(d) grad s~ (s~ the smoothed
    # CSPG level, 1 = mature scar): a cone reaching a border at angle theta_0 to
    # its normal leaves with sin(theta_1) = sin(theta_0) exp(chi_s delta s~), so
    # it is turned back if sin(theta_0) > exp(-chi_s delta s~) (growth cones
    # turn away from CSPG borders, Snow et al. 1990 Exp Neurol 109:111). 1.5
    # turns back cones arriving more than ~30 degrees off the normal at the
    # default scar rim (smoothed peak level 0.49; assumed).
    scar_repulsion: float = Field(1.5, ge=0)

    @field_validator("guidance")
    @classmethod
    def _regions(cls, v: dict[str, float]) -> dict[str, float]:
        _check_regions(v)
        return v


class AxonsConfig(Section):
    """Growth-cone tracing parameters (internal units mm, day, ng/mL, kPa)."""

    enabled: bool = True
    # Number of descending axons seeded at the rostral lesion face (issue default).
    count: int = Field(500, ge=0)
    # Seed of the counter-based random numbers (seeding, start times and noise).
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
    # Time after injury (t = 0) at which the first cones start to grow. Cut
    # corticospinal axons form retraction bulbs and die back for weeks before
    # any sprouting (Fishman & Kelley 1984 Neurology 34:1161, mouse
    # transection); one week is an assumption within that range.
    dieback_delay: Q("day", ge=0) = "7 day"
    # Start times are spread uniformly over [dieback_delay, dieback_delay +
    # seeding_window] (stratified, one per axon; 0 = all at once). Assumed.
    seeding_window: Q("day", ge=0) = "7 day"
    # Persistence length l_p of the growth-cone path on a uniform substrate:
    # <d(0).d(s)> = exp(-s/l_p), rotational diffusion D = 1/(2 l_p) per mm.
    # 1 mm: paths are nearly straight over ~1 mm (path / end-to-end distance
    # 1.16 over 1 mm); an assumption (axons in vivo are nearly straight over
    # that distance, Katz 1985 J Neurosci 5:589).
    persistence_length: Q("mm", gt=0) = "1 mm"
    # Arc-length step of the integrator (Heun on the drift, the same projected
    # Gaussian increment in both stages, exponential-map update on the sphere:
    # weak order 1, deterministic order 2): one growth-cone width.
    arc_step: Q("mm", gt=0) = "0.01 mm"
    # Smoothing length l of the cue fields (scar / CSPG level, log-stiffness):
    # (-l^2 Lap + 1) f~ = f. Tissue borders are graded over ~0.1 mm
    # (astrocytic scar borders are a few cells thick, Wanner et al. 2013 J
    # Neurosci 33:12870) and a growth cone samples ~10-50 um with its
    # filopodia: an assumption of that order, 0.15 mm being the smallest the
    # named `coarse` mesh resolves, so coarse, medium and fine meshes see the
    # same cue fields. The mesh must resolve it: a run refuses l < 2 cell
    # sizes where regions meet.
    cue_smoothing: Q("mm", gt=0) = "0.15 mm"
    cues: AxonCues = Field(default_factory=AxonCues)
    # Baseline CNS regeneration speed in engineered tissue
    # (Laranjeira et al. 2022 J R Soc Interface), on a substrate much stiffer
    # than stiffness_half_speed.
    speed: Q("mm/day", gt=0) = "0.24 mm/day"
    # Upper bound: ~1 mm/day into permissive grafts (e.g. peripheral nerve grafts).
    max_speed: Q("mm/day", gt=0) = "1 mm/day"
    # Speed gain with trophic receptor occupancy: v = v0 (1 + gain * P_bound),
    # P_bound = 1 - prod(1 - p_i). Neurotrophins accelerate elongation; the
    # size of the effect in vivo is not known (assumed).
    occupancy_speed_gain: float = Field(1.0, ge=0)
    # Stiffness factor of the speed E/(E + E_half): axons grow faster and
    # straighter on substrates stiffer than ~0.1 kPa (Koser et al. 2016);
    # the saturating form is assumed. 0 kPa switches the factor off.
    stiffness_half_speed: Q("kPa", ge=0) = "0.1 kPa"
    # ... and straighter: the persistence length on a substrate of sensed
    # modulus E is l_p E/(E + E_half) (persistence_length on stiff ones; the
    # form and the value are assumed, the direction is Koser et al. 2016).
    # 0.03 kPa: l_p 0.7 mm on white matter (70 Pa), 0.77 mm in channel lumens
    # (0.1 kPa), 0.97 mm at 1 kPa. 0 kPa switches the dependence off.
    stiffness_half_persistence: Q("kPa", ge=0) = "0.03 kPa"
    # Durotaxis senses q = ln(E / (1 + E/E_sat)): ln E on soft tissue, capped
    # at ln E_sat on stiffer substrates (a growth cone cannot probe a polymer
    # wall 1e5 times stiffer than the cord; the cap is assumed at 1 kPa, the
    # stiff end of Koser 2016's gels). Host (70 Pa) to PLGA is then a jump of
    # 2.7 in q instead of 12 in ln E.
    durotaxis_saturation: Q("kPa", gt=0) = "1 kPa"
    # CSPG level (1 = mature scar) at which the speed is halved:
    # v ~ s_half / (s_half + s~). 0.5 slows cones in mature scar to 1/3
    # (CSPGs slow and arrest growth cones, Silver & Miller 2004 Nat Rev
    # Neurosci 5:146; stripe and spot-gradient assays, e.g. Snow et al. 1990,
    # Tom et al. 2004 J Neurosci 24:6531, show graded slowing then arrest with
    # rising CSPG, but give no level in units of mature scar: assumed value).
    # s~ is the smoothed [cspg] field (model/cspg.py), else scar_cspg below.
    cspg_half_inhibition: float = Field(0.5, gt=0)
    # CSPG level of `scar` cells when no CSPG field is given (GrowthFields.cspg),
    # i.e. when [cspg] is disabled; the [cspg] defaults mature to ~1.
    scar_cspg: float = Field(1.0, ge=0)
    # Receptor dissociation constants by growth factor. 1 nM is the value
    # commonly used in growth-cone gradient models (Goodhill & Urbach 1999
    # J Neurobiol 41:230; Mortimer et al. 2009 PNAS 106:10296); for the
    # ~27 kDa BDNF and NT-3 dimers 1 nM ~ 27 ng/mL, GDNF dimer ~30 kDa.
    # Reported Trk/GFRa1 affinities span 1e-11..1e-9 M: treat as parameters.
    receptor_kd: dict[str, Q("ng/mL", gt=0)] = Field(default_factory=lambda: {
        "BDNF": "27 ng/mL", "NT-3": "27 ng/mL", "NT3": "27 ng/mL", "GDNF": "30 ng/mL"})
    # K_d for growth factors not listed above.
    default_kd: Q("ng/mL", gt=0) = "27 ng/mL"
    # Growth-cone width w over which the occupancy difference dp = w |grad p|
    # is sensed (~10 um; signal averaged over about a third of it, Xu et al.
    # 2005 Development 132:4545).
    growth_cone_width: Q("mm", gt=0) = "0.01 mm"
    # dp at which the chemotactic response rho = dp / (dp + dp_half) is one
    # half: linear in shallow, saturating in steep gradients, no hard
    # threshold (Mortimer et al. 2009; Nguyen et al. 2016 eLife 5:e12248).
    # Growth cones respond to ~1 % concentration differences across their
    # width (Rosoff et al. 2004 Nat Neurosci 7:678): dp = 2.5e-3 at c = K_d,
    # rho = 0.2 with dp_half = 0.01 (assumed).
    chemotaxis_half_saturation: float = Field(0.01, gt=0)
    # Adaptation to the ambient level: each cone keeps an adapted level a per
    # factor, da/dt = (c - a)/tau, and senses with K_eff = K_d + a. Growth
    # cones re-sensitise over tens of minutes (Ming et al. 2002 Nature
    # 417:411); at 0.24 mm/day that memory is ~5 um of path, i.e. Weber-law
    # sensing of |grad c|/c. Off by default.
    adaptation: bool = False
    adaptation_time: Q("day", gt=0) = "30 min"
    # A cone that has not moved stall_distance in stall_time is stalled (ends).
    stall_time: Q("day", gt=0) = "3 day"
    stall_distance: Q("mm", gt=0) = "0.05 mm"
    # Crossed = reached this depth into host tissue beyond the far lesion face.
    cross_depth: Q("mm", gt=0) = "0.5 mm"
    # Crossed axons stop (True) or keep growing until they stall or exit.
    stop_at_cross: bool = False
    # Record a trajectory point every this many arc steps (and at every change of state).
    record_every: int = Field(5, ge=1)
    # Regions growth cones cannot enter (slide along their border): a fluid
    # cyst offers no substrate.
    barrier_regions: list[str] = Field(default_factory=lambda: ["cavity"])
    # Aligned-fibre scaffold: contact guidance in `scaffold` along the fibre
    # axis (the cord axis unless a fibre field is given) with fibre_guidance
    # (electrospun aligned fibres guide neurites about as well as channels;
    # assumed half the channel value).
    aligned_fibres: bool = False
    fibre_guidance: Curvature = "10 1/mm"

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
        if self.arc_step > 0.25 * self.cue_smoothing:
            raise ValueError(f"arc_step ({self.arc_step:g} mm) must be <= cue_smoothing / 4 "
                             f"({0.25 * self.cue_smoothing:g} mm): the step must resolve "
                             "the smoothed borders")
        if self.arc_step > 0.1 * self.persistence_length:
            raise ValueError(f"arc_step ({self.arc_step:g} mm) must be <= persistence_length"
                             f" / 10 ({0.1 * self.persistence_length:g} mm)")
        return self

    def kd(self, species: str) -> float:
        """Receptor K_d (ng/mL) for a growth factor."""
        return self.receptor_kd.get(species, self.default_kd)

    def guidance_curvature(self, region: str) -> float:
        """Contact-guidance curvature (1/mm) in a region (aligned fibres override the matrix)."""
        if region == "scaffold" and self.aligned_fibres:
            return self.fibre_guidance
        return self.cues.guidance.get(region, 0.0)

    @property
    def rotational_diffusion(self) -> float:
        """``D_θ = 1/(2 ℓ_p)`` (1/mm): ⟨d(0)·d(s)⟩ = exp(−2 D_θ s) on the unit sphere."""
        return 0.5 / self.persistence_length
