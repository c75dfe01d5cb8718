"""Physics of scaffoldfem as pure functions: UFL forms and pointwise NumPy ODEs.

No PETSc objects are created here (that is :mod:`scaffoldfem.fem.solver`). Units
are internal (mm, day, ng/mL, kPa); the model is written out in docs/model.md.

Modules:
    transport: growth-factor / enzyme transport forms and mass-balance terms.
    degradation: exact pointwise updates of polymer fraction, reservoir, cells.
    mechanics: linear elasticity forms and derived quantities.
    materials: diffusivity and stiffness laws, material presets with sources.
    schedules: time courses of sources (MMP profile, doses).
"""

from scaffoldfem.physics.degradation import (
    cell_survival_step,
    deformed_porosity,
    degrade_step,
    porosity,
    release_step,
)
from scaffoldfem.physics.materials import (
    POLYMERS,
    TISSUE,
    PolymerPreset,
    flux_diffusivity,
    gibson_ashby,
    half_life_to_rate,
)
from scaffoldfem.physics.mechanics import (
    elasticity_forms,
    epsilon,
    normal_strain_jump,
    sigma,
    strain_jump,
    volumetric_strain,
    von_mises,
)
from scaffoldfem.physics.schedules import (
    dose_amount,
    gamma_profile,
    table_profile,
    window_amount,
)
from scaffoldfem.physics.transport import (
    MM3_PER_ML,
    NG_PER_NGML_MM3,
    Robin,
    Uptake,
    balance_error,
    balance_forms,
    host_diffusivity,
    to_ng,
    transport_forms,
    transport_residual,
)

__all__ = [
    "MM3_PER_ML",
    "NG_PER_NGML_MM3",
    "POLYMERS",
    "TISSUE",
    "PolymerPreset",
    "Robin",
    "Uptake",
    "balance_error",
    "balance_forms",
    "cell_survival_step",
    "deformed_porosity",
    "degrade_step",
    "dose_amount",
    "elasticity_forms",
    "epsilon",
    "flux_diffusivity",
    "gamma_profile",
    "gibson_ashby",
    "half_life_to_rate",
    "host_diffusivity",
    "normal_strain_jump",
    "porosity",
    "release_step",
    "sigma",
    "strain_jump",
    "table_profile",
    "to_ng",
    "transport_forms",
    "transport_residual",
    "volumetric_strain",
    "von_mises",
    "window_amount",
]
