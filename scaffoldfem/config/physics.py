"""Study sections for the coupled physics: tissue, scaffold, species (with their
carriers), cells, mechanics and time stepping (the enzymes and the injury timeline:
:mod:`scaffoldfem.config.inflammation`; carriers: :mod:`scaffoldfem.config.carriers`).
Internal units: mm, day, ng/mL, kPa.

Every default names its source in a comment; where the literature gives only a
range, the value is a documented starting point meant to be swept.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from scaffoldfem.config.base import Section
from scaffoldfem.config.carriers import Carrier
from scaffoldfem.config.cells import CellsConfig  # noqa: F401  (re-exported)
from scaffoldfem.config.dorsal_horn import DorsalHornConfig
from scaffoldfem.config.inflammation import species_tortuosity
from scaffoldfem.config.presets import POLYMERS
from scaffoldfem.units import Q

Length = Q("mm", gt=0)
Time = Q("day", gt=0)
Rate = Q("1/day", ge=0)
Diffusivity = Q("mm**2/day", gt=0)
Conc = Q("ng/mL", ge=0)
Modulus = Q("kPa", gt=0)


class RegionMechanics(Section):
    """Linear-elastic constants of one host region."""

    modulus: Modulus
    poisson: float = Field(ge=0.0, lt=0.5)


class LumenConfig(Section):
    """Host-derived tissue that fills the channel lumens of an implanted scaffold.

    Channels of 7-channel PLGA scaffolds in the transected rat cord hold, at the first
    (1-month) end point, a fibrous rim of fibroblasts and collagen around a
    regenerative core with axons and Schwann cells (Krych et al. 2009 Acta Biomater
    5:2551, 450/660 um channels; the study cited elsewhere as "Olson 2009 Acta
    Biomater"); host axons and cells grow into the channels of 3D-printed scaffolds
    (Koffler et al. 2019 Nat Med 25:263). The lumen is modelled as that soft cellular
    tissue from the start, not as the cavity fluid.
    """

    # Loose, cell-infiltrated tissue: extracellular space larger than intact CNS
    # (0.2, Syková & Nicholson 2008 Physiol Rev 88:1277); 0.3 assumed.
    volume_fraction: float = Field(0.3, gt=0.0, le=1.0)
    # Less hindered than CNS neuropil (1.6, Syková & Nicholson 2008); 1.5 assumed,
    # isotropic.
    tortuosity: float = Field(1.5, ge=1.0)
    # Soft cellular tissue of the order of CNS tissue at AFM scale (white 70 Pa, grey
    # 130 Pa, Koser et al. 2015 Biophys J 108:2137; growth cones sense this local
    # stiffness, Koser 2016 Nat Neurosci 19:1592); 0.1 kPa assumed.
    modulus: Modulus = "0.1 kPa"
    # Soft tissue, 0.45-0.49 (background).
    poisson: float = Field(0.45, ge=0.0, lt=0.5)
    # (Contact guidance of growth cones in the lumen is an axon parameter:
    # axons.cues.guidance.channel.)


class TissueConfig(Section):
    """Host tissue (white/grey matter, scar, cavity fluid).

    Stiffness scale: AFM indentation (~0.1 kPa), not whole-cord tension (~0.1-1 MPa):
    growth cones sense the local, micro-scale stiffness (Koser 2016 Nat Neurosci
    19:1592), and the scaffold-tissue mismatch at the interface is what the literature
    links to cavitation. Whole-cord values can be set per study.
    """

    # Brain extracellular volume fraction α ≈ 0.2 (Syková & Nicholson 2008 Physiol Rev 88:1277).
    volume_fraction: float = Field(0.2, gt=0.0, le=1.0)
    # Tortuosity λ ≈ 1.6 (Syková & Nicholson 2008); white-matter tracts run axially, so
    # an anisotropic host uses a smaller axial λ (e.g. 1.4) than transverse.
    tortuosity_axial: float = Field(1.6, ge=1.0)
    tortuosity_transverse: float = Field(1.6, ge=1.0)
    # AFM indentation, mouse spinal cord: white ≈ 70 Pa, grey ≈ 130 Pa (Koser 2015 Biophys J
    # 108:2137); Poisson 0.45-0.49 (background).
    white_matter: RegionMechanics = RegionMechanics(modulus="0.07 kPa", poisson=0.45)
    grey_matter: RegionMechanics = RegionMechanics(modulus="0.13 kPa", poisson=0.45)
    # Glial scar is softer than healthy CNS tissue (Moeendarbary 2017 Nat Commun 8:14787).
    scar: RegionMechanics = RegionMechanics(modulus="0.05 kPa", poisson=0.45)
    # Fluid-filled cavity: nearly incompressible, very soft placeholder solid.
    cavity: RegionMechanics = RegionMechanics(modulus="0.005 kPa", poisson=0.49)
    # What fills the channel lumens (the `channel` region), not the cavity fluid.
    lumen: LumenConfig = LumenConfig()


class ScaffoldConfig(Section):
    """Scaffold material: porosity, solid modulus and degradation kinetics.

    ``preset`` fills every value the study leaves out (see config/materials.py).
    Degradation: dw/dt = -[k_h (1 + a (1-w)) + k_e m/(K_e+m)] g(ε_vol) w,
    g = 1 + β max(ε_vol, 0); porosity φ = 1 - (1-φ0) w; E = E_s (1-φ)^n.
    """

    #: Keys a preset fills; the template shows them as comments so that changing
    #: ``preset`` alone changes them.
    preset_keys: ClassVar[tuple[str, ...]] = (
        "porosity",
        "solid_modulus",
        "poisson",
        "modulus_exponent",
        "diffusivity_law",
        "hydrolysis_rate",
        "autocatalysis",
        "enzymatic_rate",
        "enzyme_half_saturation",
        "pore_size",
    )

    # Material preset (scaffoldfem/config/presets.py: every number with its source);
    # fills the commented keys below unless the study sets them.
    preset: Literal["plga_50_50", "pcl", "alginate", "gelatin", "peg_mmp"] = "plga_50_50"
    porosity: float = Field(gt=0.0, lt=1.0)
    solid_modulus: Modulus
    poisson: float = Field(ge=0.0, lt=0.5)
    modulus_exponent: float = Field(gt=0.0)
    diffusivity_law: Literal["bruggeman", "mackie_meares", "archie"]
    archie_exponent: float = Field(2.0, gt=0.0)
    hydrolysis_rate: Rate
    autocatalysis: float = Field(ge=0.0)
    # Enzymatic cleavage of the matrix, first order in the enzymes (Lutolf et al. 2003
    # PNAS 100:5413): rate (enzymatic_rate / enzyme_half_saturation) × Σ [enzyme].
    enzymatic_rate: Rate
    enzyme_half_saturation: Q("ng/mL", gt=0)
    # Strain-accelerated degradation β: every rate × (1 + β max(ε_vol, 0)). Off (0) by
    # default, for want of a number: sustained or cyclic load speeds polylactide
    # hydrolysis in vitro (PDLLA foam, Fan et al. 2008 Polym Degrad Stab 93:677;
    # electrospun PLGA under tension, Acta Biomater), but at 0.1-1 MPa, 10^4-10^5 times
    # the stress the soft cord passes to the scaffold here (von Mises ~0.01 kPa), and none
    # gives a rate per unit strain. The sign depends on the material: strain slows
    # collagenase on collagen (Flynn et al. 2010 PLoS ONE 5:e12337), which β ≥ 0
    # cannot express.
    strain_acceleration: float = Field(0.0, ge=0.0)
    # Mean macropore size (for tissue ingrowth, [ingrowth]; the preset's value and
    # source: config/presets.py).
    pore_size: Q("mm", gt=0)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("preset", "plga_50_50") in POLYMERS:
            p = POLYMERS[data.get("preset", "plga_50_50")]
            filled = {
                "porosity": p.phi0,
                "solid_modulus": f"{p.E_s!r} kPa",
                "poisson": p.nu,
                "modulus_exponent": p.n_ga,
                "diffusivity_law": p.law,
                "hydrolysis_rate": f"{p.k_h!r} 1/day",
                "autocatalysis": p.a_auto,
                "enzymatic_rate": f"{p.k_e!r} 1/day",
                "enzyme_half_saturation": f"{p.K_e!r} ng/mL",
                "pore_size": f"{p.pore_size!r} mm",
            }
            for key, value in filled.items():
                data.setdefault(key, value)
        return data


class Boundary(Section):
    """Condition at one cord end: none (no flux), dirichlet (fixed c) or robin (clearance)."""

    kind: Literal["none", "dirichlet", "robin"] = "none"
    value: Conc = "0 ng/mL"
    # Robin transfer coefficient h in -D∇c·n = h (c - value).
    transfer: Q("mm/day", ge=0) = "0 mm/day"


#: Regions a dose (or a scavenger) can go into, and the two kinds of dose.
DoseRegion = Literal["scaffold", "channel", "cavity", "scar", "white_matter", "grey_matter"]
DoseKind = Literal["bolus", "infusion"]


class Dose(Section):
    """A bolus (amount at ``start``) or an infusion (rate over [start, end]) into a region."""

    region: DoseRegion
    kind: DoseKind = "infusion"
    start: Q("day", ge=0) = "0 day"
    end: Q("day", ge=0) = "0 day"
    amount: Q("ng", ge=0) = "0 ng"
    rate: Q("ng/day", ge=0) = "0 ng/day"

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.kind == "infusion" and self.end <= self.start:
            raise PydanticCustomError(
                "dose_window",
                "infusion must end after it starts (start {s} day, end {e} day)",
                {"s": self.start, "e": self.end},
            )
        return self


class Uptake(Section):
    """Saturable receptor uptake in host tissue V_max c / (K_d + c)."""

    enabled: bool = False
    vmax: Q("ng/mL/day", ge=0) = "10 ng/mL/day"
    # ~1 nM receptor affinity ≈ 27 ng/mL for a ~27 kDa dimer (background).
    kd: Q("ng/mL", gt=0) = "27 ng/mL"


class Species(Section):
    """One neurotrophic factor."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    # NGF in free solution 12.6e-7 cm²/s (Stroh et al. 2003 Biophys J 85:581); BDNF,
    # NT-3 and GDNF are dimers of similar size, no direct spinal-cord measurement.
    diffusivity_free: Diffusivity = "12.6e-7 cm^2/s"
    # Tissue half-lives of NTFs are uncertain (minutes to hours, background): sweep it.
    half_life: Time = "4 h"
    # Tortuosity of this molecule in host tissue and channel lumens (D = D_free/λ²
    # scaled from the tissue's small-molecule λ): neurotrophins (BDNF, NT-3, NT-4,
    # GDNF by size) 2.14, the NGF value in tissue (Stroh et al. 2003 Biophys J 85:581);
    # other names: the tissue's own (tissue.tortuosity_*, small molecules).
    tortuosity: float | None = Field(None, ge=1.0)
    # Carriers the factor is loaded in (each its own law and loading; presets with the
    # published curve each reproduces: config/carriers.py). None: nothing loaded.
    carriers: list[Carrier] = []
    uptake: Uptake = Uptake()
    doses: list[Dose] = []
    rostral_end: Boundary = Boundary()
    caudal_end: Boundary = Boundary()
    # Therapeutic window for the lesion mean (metrics.time_in_window_day).
    window_low: Conc = "1 ng/mL"
    window_high: Conc = "100 ng/mL"

    @model_validator(mode="before")
    @classmethod
    def _secretion_moved(cls, data: Any) -> Any:
        # Secretion belongs to the cells now: each graft cohort names what it secretes.
        if isinstance(data, dict) and "secretion" in data:
            raise PydanticCustomError(
                "moved", "species.secretion is now per graft: cells.cohorts.<name>.secretion."
                         "{name} (ng/cell/day, issue 12)", {"name": data.get("name", "<species>")})
        return data

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.window_high <= self.window_low:
            raise PydanticCustomError(
                "window",
                "window_high must exceed window_low ({lo} vs {hi} ng/mL)",
                {"lo": self.window_low, "hi": self.window_high},
            )
        return self

    def tissue_tortuosity(self) -> float | None:
        """``tortuosity``, else the default by name (None: the tissue's own)."""
        if self.tortuosity is not None:
            return self.tortuosity
        return species_tortuosity(self.name, default=None)


def default_species() -> list[Species]:
    """BDNF loaded in PLGA microspheres in the scaffold, NT-3 infused from day 14
    (stage-specific delivery), GDNF secreted by the transplanted cells."""
    return [
        Species(name="BDNF", carriers=[Carrier(preset="plga_microspheres",
                                               loading="2e4 ng/mL")]),
        Species(
            name="NT3",
            doses=[
                Dose(
                    region="scaffold",
                    kind="infusion",
                    start="14 day",
                    end="28 day",
                    rate="10 ng/day",
                )
            ],
        ),
        Species(name="GDNF"),  # secreted by the default graft (config/cells.py)
    ]


class MechanicsConfig(Section):
    """Quasi-static small-strain elasticity of the segment."""

    enabled: bool = True
    degree: Literal[1, 2] = 1
    # Flexion stretches the cord by ~5-10 % (issue 3); positive = stretch.
    axial_strain: float = Field(0.05, ge=-0.3, le=0.3)
    # Swelling pressure on the pia (0 = off).
    pia_pressure: Q("kPa", ge=0) = "0 kPa"
    # Re-solve when the scaffold modulus changed by more than this (relative) ... A
    # degrading scaffold's E falls by orders of magnitude over weeks; 25 % steps keep
    # the strain within ~25 % between solves at a few tens of solves per run.
    update_tolerance: float = Field(0.25, gt=0.0)
    # ... and at least this often.
    update_interval: Time = "7 day"
    # Scaffold porosity seen by α, D and E taken in the deformed configuration,
    # φ_def = 1 − (1 − φ)/J with J = 1 + ε_vol per cell (incompressible solid phase;
    # docs/model.md, mechanics). Off by default: every preset scaffold is stiffer than
    # the cord, so at the default 5 % stretch it moves φ by < 1e-7 (PLGA) or < 2e-4
    # (gelatin, 5 kPa) (measured); it matters only for scaffolds softer than the host.
    deformed_porosity: bool = False
    # The interface strain jump's 95th percentile is taken of the jump averaged over
    # the interface within this radius (assumed: a few cell diameters). Unaveraged it
    # sits in rings narrower than a cell at the pia and channel rims and grew 14 %
    # from "medium" to "fine"; averaged over 0.1 mm it changed 0.4 % (docs/model.md §5).
    interface_averaging_length: Q("mm", ge=0) = "0.1 mm"


class TimeConfig(Section):
    """Time stepping: operator splitting, implicit transport, adaptive step."""

    # 2-8 weeks post-injury is the window to optimise (background).
    duration: Time = "56 day"
    # Converged: lesion AUCs at 0.5 day are within 0.1 % of those at 0.25 day and
    # 0.3 % of 0.125 day (scaffoldfem bench dt, coarse mesh, 8 weeks).
    dt: Time = "0.5 day"
    dt_min: Time = "1e-4 day"
    dt_max: Time = "1 day"
    scheme: Literal["backward_euler", "bdf2"] = "backward_euler"
    # Transport matrices are refreshed (re-assembled) when the scaffold porosity has
    # changed by more than this since the last refresh: porosity moves slowly, so
    # most steps reuse the matrix and its preconditioner.
    coefficient_tolerance: float = Field(0.005, gt=0.0, le=0.2)
    # A concentration below -tolerance × (max of that field) stops the step as failed.
    negative_tolerance: float = Field(1e-3, gt=0.0)

    @model_validator(mode="after")
    def _steps(self) -> Self:
        if not self.dt_min <= self.dt <= self.dt_max:
            raise PydanticCustomError(
                "dt_order",
                "needs dt_min <= dt <= dt_max (got {a}, {b}, {c} day)",
                {"a": self.dt_min, "b": self.dt, "c": self.dt_max},
            )
        return self


class ExposureConfig(Section):
    """What a biologist reads: exposure over an evaluation window, near the lesion."""

    # The window in which exposure counts, from the injury: weeks 2-8, the window for
    # cell-factor dose and timing the review names (its "2-8 week window").
    window_start: Q("day", ge=0) = "14 day"
    window_end: Q("day", gt=0) = "56 day"
    # Host tissue within this distance (along the cord) of the lesion faces is the
    # "near host" over which exposure and receptor occupancy are also averaged
    # (assumed: about the depth axons must cross, see axons.cross_depth).
    host_band: Q("mm", gt=0) = "1 mm"
    # Off-target exposure of the dorsal horn near the lesion and the KCC2 (pain-risk)
    # index it drives (config/dorsal_horn.py; constants uncalibrated).
    dorsal_horn: DorsalHornConfig = DorsalHornConfig()

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.window_end <= self.window_start:
            raise PydanticCustomError(
                "window", "window_end must be after window_start ({a} vs {b} day)",
                {"a": self.window_start, "b": self.window_end})
        return self
