"""Checks across the sections of a study, run by ``scaffoldfem check`` before anything else.

Each section validates itself; these rules need two or more of them, and each
problem is one line ``key: message`` with the value found:

* every region a study names (doses, cell seeding, growth-cone seeding and
  barriers, enzyme sources) exists in the geometry the study builds, decided
  from the geometry configuration (a dose into a ``cavity`` that a zero gap
  never makes would vanish silently);
* species names are unique, per-species keys (``axons.receptor_kd``) name a
  species of the study and ``[solver.*]`` sections name a field that has a
  solver;
* the growth cones fit in memory.

A list or table still at its documented default is not held against a geometry
without one of its regions (the default barrier ``cavity`` with no cavity, or
K_d for NT-3 with no NT-3): only what the study changed must exist.
"""

from __future__ import annotations

import math
import os
from functools import cache
from typing import Any

from pydantic import BaseModel

from scaffoldfem.config.axons import AxonsConfig
from scaffoldfem.config.carriers import USES, enzyme_key
from scaffoldfem.config.cells import Cohort
from scaffoldfem.config.geometry import GeometryConfig
from scaffoldfem.config.inflammation import EnzymeEntry, InflammationConfig, default_enzymes
from scaffoldfem.config.physics import CellsConfig, Species, TimeConfig

__all__ = ["GUESS_KEY", "MAX_AXONS", "MAX_GUESS_LEVELS", "SOLVER_SECTIONS",
           "axon_bytes_per_cone", "axon_problems", "naming_problems", "region_problems",
           "solver_value_problems"]

#: ``[solver.NAME]`` sections the model reads: the transport solvers (every
#: growth factor, MMP and the cue smoothing) and the elasticity solver.
SOLVER_SECTIONS = {"transport": "every growth factor and MMP", "mechanics": "elasticity"}
#: The ``[solver.<field>]`` key that is not a PETSc option: how many of the field's
#: last solutions its initial guess is projected on (``fem/guess.py``; 0: the plain
#: warm start from the last level).
GUESS_KEY = "guess_levels"
#: At most this many levels (more only adds nearly dependent directions).
MAX_GUESS_LEVELS = 8

#: Most growth cones a study may trace, whatever the memory.
MAX_AXONS = 10_000_000
#: Share of this machine's memory the growth cones may take.
AXON_MEMORY_SHARE = 0.5
#: Cone state: 38 float64/int64 columns, held about three times over while
#: packed for migration and gathered for output.
_STATE_BYTES = 3 * 38 * 8

#: Why a region can be missing: the key that removes it.
_WHY_ABSENT = {"grey_matter": "geometry.grey_matter.enabled = false",
               "scar": "geometry.scar.thickness = 0 mm",
               "channel": "geometry.channels.count = 0",
               "cavity": "geometry.cavity.gap = 0 mm"}
_FACETS = ("scaffold_interface",)  # facet regions every geometry has


@cache
def _default(cls: type[BaseModel]) -> BaseModel:
    return cls()


def _is_default(model: BaseModel, name: str) -> bool:
    if isinstance(model, Cohort):  # no bare default: the field's own default
        return getattr(model, name) == Cohort.model_fields[name].default
    if isinstance(model, EnzymeEntry):  # no bare default: the default entry of its name
        ref = {e.name: e for e in default_enzymes()}.get(model.name)
        return ref is not None and getattr(model, name) == getattr(ref, name)
    return getattr(model, name) == getattr(_default(type(model)), name)


def _absent(region: str, present: list[str]) -> str:
    why = f" ({_WHY_ABSENT[region]})" if region in _WHY_ABSENT else ""
    return (f"{region!r} is not a region of this geometry{why}; its regions: "
            f"{', '.join([*present, *_FACETS])}")


def region_problems(geometry: GeometryConfig, species: list[Species], cells: CellsConfig,
                    enzymes: list[EnzymeEntry], timeline: InflammationConfig,
                    axons: AxonsConfig) -> list[str]:
    """Regions named by the study that its geometry does not build."""
    present = geometry.regions()
    have = set(present) | set(_FACETS)
    out = []
    for i, sp in enumerate(species):
        for j, dose in enumerate(sp.doses):
            if dose.region not in have:
                out.append(f"species[{i}].doses[{j}].region: {_absent(dose.region, present)} "
                           f"(a dose of {sp.name})")
    named: list[tuple[str, BaseModel, str, bool]] = [
        *((f"cells.cohorts[{i}].regions", c, "regions", cells.enabled)
          for i, c in enumerate(cells.cohorts)),
        *((f"enzymes[{i}].regions", e, "regions", True) for i, e in enumerate(enzymes)),
        *((f"inflammation.{p}.regions", timeline.course(p), "regions", True)
          for p in ("neutrophils", "macrophages", "astrocytes")),
        ("axons.seeding_regions", axons, "seeding_regions", axons.enabled),
        ("axons.barrier_regions", axons, "barrier_regions", axons.enabled),
    ]
    # "lesion" (the scaffold with its channels and any cavity) is always built.
    have_or_lesion = have | {"lesion"}
    for key, model, name, used in named:
        if not used or _is_default(model, name):
            continue
        for region in getattr(model, name):
            if region not in have_or_lesion:
                out.append(f"{key}: {_absent(region, present)} (got {getattr(model, name)!r})")
    return out


def naming_problems(species: list[Species], axons: AxonsConfig,
                    solver: dict[str, Any]) -> list[str]:
    """Duplicate species, K_d for a species the study lacks, unknown solver sections."""
    out = []
    first: dict[str, int] = {}
    for i, sp in enumerate(species):
        if sp.name in first:
            out.append(f"species[{i}].name: duplicate species name {sp.name!r} (also "
                       f"species[{first[sp.name]}]); each growth factor is one field")
        first.setdefault(sp.name, i)
    names = ", ".join(first)
    default_kd = _default(AxonsConfig).receptor_kd
    for name, kd in axons.receptor_kd.items():
        if name in first or default_kd.get(name) == kd:
            continue  # a species of the study, or the untouched documented default
        out.append(f"axons.receptor_kd.{name}: no species {name!r} in this study (got "
                   f"{kd:g} ng/mL; species: {names})")
    for section in solver:
        if section not in SOLVER_SECTIONS:
            known = "; ".join(f"{k} ({v})" for k, v in SOLVER_SECTIONS.items())
            out.append(f"solver.{section}: unknown solver section (got [solver.{section}]); "
                       f"known: {known}")
    return out


def solver_value_problems(solver: Any) -> list[str]:
    """Non-finite numbers among PETSc options (one line each, before type checks)."""
    out = []
    if isinstance(solver, dict):
        for section, opts in solver.items():
            if isinstance(opts, dict):
                for key, v in opts.items():
                    if isinstance(v, float) and not math.isfinite(v):
                        out.append(f"solver.{section}.{key}: must be a finite number (got {v})")
                    elif key == GUESS_KEY and not (
                            isinstance(v, int) and not isinstance(v, bool)
                            and 0 <= v <= MAX_GUESS_LEVELS):
                        out.append(f"solver.{section}.{key}: must be a whole number from 0 "
                                   f"to {MAX_GUESS_LEVELS} (got {v!r})")
    return out


def _memory_bytes() -> float:
    """Physical memory of this machine (16 GB if the system does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16e9


def axon_bytes_per_cone(axons: AxonsConfig, n_species: int, time: TimeConfig,
                        cord_length: float) -> tuple[float, float]:
    """Estimated memory per growth cone (bytes) and the path length it assumes (mm).

    A cone's state, plus its trajectory: a row of 9 + n_species float64 every
    ``record_every`` arc steps, kept by its rank and gathered once more for the
    output, over at most the path it can grow (``max_speed`` for the time after
    the die-back, capped at twice the cord: it leaves the segment or stalls).
    """
    growing = max(time.duration - axons.dieback_delay, 0.0)
    path = min(axons.max_speed * growing, 2 * cord_length)
    rows = 1 + path / (axons.arc_step * axons.record_every)
    return _STATE_BYTES + 2 * 8 * (9 + n_species) * rows, path


def axon_problems(axons: AxonsConfig, n_species: int, time: TimeConfig, cord_length: float,
                  machine_memory: bool = True) -> list[str]:
    """More growth cones than :data:`MAX_AXONS` or (``machine_memory``) than fit in
    :data:`AXON_MEMORY_SHARE` of this machine's memory."""
    if not axons.enabled:
        return []
    sensory = (axons.count if axons.sensory_count is None else axons.sensory_count)
    cones = axons.count + (sensory if axons.sensory else 0)
    per_cone, path = axon_bytes_per_cone(axons, n_species, time, cord_length)
    need, ram = cones * per_cone, (_memory_bytes() if machine_memory else math.inf)
    fits = min(AXON_MEMORY_SHARE * ram / per_cone, MAX_AXONS)
    key = "axons.sensory_count" if axons.sensory and sensory > axons.count else "axons.count"
    over = []
    if cones > MAX_AXONS:
        over.append(f"the limit of {MAX_AXONS:,} cones")
    if need > AXON_MEMORY_SHARE * ram:
        over.append(f"half of the {ram / 1e9:.0f} GB of this machine")
    if not over:
        return []
    return [f"{key}: {cones:,} growth cones would need about {need / 1e9:,.1f} GB "
            f"(~{per_cone / 1e3:.0f} kB per cone: its state and a trajectory point every "
            f"{axons.arc_step * axons.record_every:g} mm of up to {path:g} mm of path), over "
            f"{' and '.join(over)}: use at most {int(fits):,} cones "
            "(or a larger record_every)"]


def carrier_problems(species: list[Species], enzymes: list[EnzymeEntry],
                     ros_enabled: bool) -> list[str]:
    """Carriers that cannot work in this study: a cleavable carrier whose enzymes the
    study does not have, a ROS-cleavable one with ``ros.enabled = false``."""
    have = {enzyme_key(e.name): e.name for e in enzymes}
    out = []
    for i, sp in enumerate(species):
        for j, car in enumerate(sp.carriers):
            key = f"species[{i}].carriers[{j}]"
            if "ros_rate_constant" in USES[car.law] and not ros_enabled:
                out.append(f"{key}.law: {car.law!r} needs the ROS field, but ros.enabled = "
                           f"false (a carrier of {sp.name})")
            if "specificity" not in USES[car.law]:
                continue
            named = [k for k, v in car.specificity.items() if v > 0]
            found = [k for k in named if enzyme_key(k) in have]
            if not found:
                out.append(f"{key}.specificity: none of its enzymes ({', '.join(named)}) is in "
                           f"this study's [[enzymes]] ({', '.join(have.values()) or 'none'}); "
                           f"a cleavable carrier of {sp.name} would never release")
    return out


def scavenger_problems(geometry: GeometryConfig, scavengers: list) -> list[str]:
    """Scavengers dosed into a region the geometry does not build."""
    present = geometry.regions()
    return [f"scavengers[{i}].region: {_absent(s.region, present)} (scavenger {s.name})"
            for i, s in enumerate(scavengers) if s.region not in present]
