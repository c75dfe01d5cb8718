"""The study file: TOML → validated :class:`Study`, with ``--set`` overrides.

A study is read on rank 0 and broadcast (see :func:`load_study_mpi`); bad input
is collected into a :class:`StudyError` whose lines read
``geometry.lesion.length: must be > 0 (got -2 mm)``.

Overrides are dotted keys, the same on the command line and in Python: a list
element is addressed by index or by its ``name`` (``species.BDNF.half_life``).
``--set KEY=VALUE`` reads VALUE as a TOML literal; :meth:`Study.from_toml` and
:meth:`Study.default` take Python values, as a mapping
(``overrides={"species.BDNF.half_life": "2 h"}``) or as keywords with ``__`` for
each dot (``geometry__resolution="coarse"``). Both go through
:func:`override_study`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from scaffoldfem.config.axons import AxonsConfig
from scaffoldfem.config.base import Section, format_errors
from scaffoldfem.config.cells import cohort_problems, default_cohorts
from scaffoldfem.config.cspg import ChABCConfig, CSPGConfig, cspg_problems
from scaffoldfem.config.geometry import GeometryConfig
from scaffoldfem.config.inflammation import (
    EnzymeEntry,
    InflammationConfig,
    ROSConfig,
    default_enzymes,
    enzyme_problems,
)
from scaffoldfem.config.ingrowth import IngrowthConfig
from scaffoldfem.config.physics import (
    CellsConfig,
    ExposureConfig,
    MechanicsConfig,
    ScaffoldConfig,
    Species,
    TimeConfig,
    TissueConfig,
    default_species,
)
from scaffoldfem.config.scavengers import Scavenger
from scaffoldfem.config.study_checks import (
    axon_problems,
    carrier_problems,
    naming_problems,
    region_problems,
    scavenger_problems,
    solver_value_problems,
)
from scaffoldfem.errors import StudyError
from scaffoldfem.mpi import on_rank0
from scaffoldfem.units import Q

Q_day_pos = Q("day", gt=0)


class OutputConfig(Section):
    """What a run writes and how often (simulated time)."""

    # Field snapshots (ParaView) and table rows every ``interval``; writing every step
    # is not the default because it dominates the run on fine meshes.
    interval: Q_day_pos = "2 day"
    # Whole-state checkpoint every ``checkpoint_interval`` and on SIGTERM/SIGINT.
    checkpoint_interval: Q_day_pos = "7 day"
    figures: bool = True


class Study(Section):
    """A complete, validated study. Values are in internal units (mm, day, ng/mL, kPa)."""

    name: str = "baseline"
    description: str = ""
    geometry: GeometryConfig = GeometryConfig()
    tissue: TissueConfig = TissueConfig()
    scaffold: ScaffoldConfig = ScaffoldConfig()
    species: list[Species] = Field(default_factory=default_species, min_length=1)
    # The injury's timeline: neutrophils, macrophages and reactive astrocytes, which
    # drive the enzymes (and reactive oxygen species).
    inflammation: InflammationConfig = InflammationConfig()
    # Matrix metalloproteinases, one transport field each (MMP-9 early, neutrophil-
    # linked; MMP-2 later, astrocyte-linked); an empty list: none.
    enzymes: list[EnzymeEntry] = Field(default_factory=default_enzymes)
    # Reactive oxygen species (H2O2): one transport field made by the timeline's
    # neutrophils and macrophages, cleared in seconds, consumed by scavengers.
    ros: ROSConfig = ROSConfig()
    # ROS scavengers (e.g. polydopamine nanoparticles), placed and dosed like a factor.
    scavengers: list[Scavenger] = []
    # The scar's CSPG level (1 = mature scar): deposited by reactive astrocytes, cleared
    # by MMP-2 and chondroitinase ABC; the growth cones read it instead of the scar tag.
    cspg: CSPGConfig = CSPGConfig()
    # Chondroitinase ABC: dosed like a factor, diffusing, losing activity at 37 °C.
    chabc: ChABCConfig = ChABCConfig()
    cells: CellsConfig = CellsConfig()
    # Host tissue growing into the scaffold pores (front from host and channel lumens;
    # rate by pore size, porosity, stiffness match) and the cavitation risk metric.
    ingrowth: IngrowthConfig = IngrowthConfig()
    mechanics: MechanicsConfig = MechanicsConfig()
    time: TimeConfig = TimeConfig()
    axons: AxonsConfig = AxonsConfig()
    exposure: ExposureConfig = ExposureConfig()
    output: OutputConfig = OutputConfig()
    # PETSc options per field prefix, merged over the solver defaults, e.g. [solver.transport]
    # ksp_rtol = 1e-10; also preset = "mumps" and guess_levels = 0..8 (last solutions
    # the initial guess is projected on; default 3, 0: start from the last level).
    solver: dict[str, dict[str, str | int | float | bool]] = {}

    @field_validator("solver", mode="before")
    @classmethod
    def _finite_options(cls, v: Any) -> Any:
        # Before the type check: an infinite option would otherwise fail all four
        # members of the value union, four lines for one mistake.
        _raise_lines(solver_value_problems(v))
        return v

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Study:
        # Rules across sections (scaffoldfem.config.study_checks), all reported at once.
        machine = (info.context or {}).get("machine_checks", True)
        lines = []
        if self.axons.enabled and self.axons.seed_offset <= self.geometry.scar.thickness:
            lines.append(f"axons.seed_offset: must exceed geometry.scar.thickness "
                         f"({self.geometry.scar.thickness:g} mm) so that growth cones start in "
                         f"host tissue outside the scar rim (got {self.axons.seed_offset:g} mm)")
        lines += region_problems(self.geometry, self.species, self.cells, self.enzymes,
                                 self.inflammation, self.axons)
        lines += enzyme_problems(self.enzymes)
        lines += cohort_problems(self.cells, [sp.name for sp in self.species])
        lines += carrier_problems(self.species, self.enzymes, self.ros.enabled)
        lines += scavenger_problems(self.geometry, self.scavengers)
        lines += cspg_problems(self.cspg, self.chabc, self.geometry.regions())
        lines += naming_problems(self.species, self.axons, self.solver)
        lines += axon_problems(self.axons, len(self.species), self.time,
                               self.geometry.cord.length, machine_memory=machine)
        _raise_lines(lines)
        return self

    @classmethod
    def from_toml(
        cls, path: str | Path, /, overrides: Mapping[str, Any] | None = None, **keywords: Any
    ) -> Study:
        """Read a study file and apply overrides: the Python form of ``--set``.

        Example::

            Study.from_toml("studies/baseline.toml", geometry__resolution="coarse",
                            overrides={"species.BDNF.half_life": "2 h"})

        Args:
            path: The TOML study file.
            overrides: ``{"dotted.key": value}``, keys as for ``--set`` (list elements
                by index or name). Values are Python values as they would be written
                in the file (``"2 h"``, ``0.85``, ``True``, lists); a non-empty dict
                value is merged key by key (``{"scaffold": {"porosity": 0.8}}`` is
                ``scaffold.porosity``).
            **keywords: The same with ``__`` for each dot (``scaffold__porosity=0.8``);
                applied after ``overrides``. Keys that are not identifiers (``NT-3``)
                go in ``overrides``.

        Returns:
            The validated study.

        Raises:
            StudyError: A missing or malformed file, an override that addresses
                nothing, or an invalid value; one line per problem, key first.
        """
        data = read_toml(Path(path), "study")
        return validate_study(override_study(data, override_pairs(overrides, keywords)))

    @classmethod
    def default(cls, /, overrides: Mapping[str, Any] | None = None, **keywords: Any) -> Study:
        """The built-in defaults (``studies/baseline.toml``) with overrides.

        ``Study.default(time__duration="7 day", overrides={"axons.count": 20})``;
        the arguments are those of :meth:`from_toml`.

        Raises:
            StudyError: An override that addresses nothing or an invalid value.
        """
        return validate_study(override_study({}, override_pairs(overrides, keywords)))

    def to_dict(self) -> dict[str, Any]:
        """Study as a TOML-ready dict: every quantity as a string with its internal unit."""
        return _drop_none(self.model_dump(mode="json"))

    def to_toml(self) -> str:
        """The resolved study (every default filled in) as TOML text."""
        return tomli_w.dumps(self.to_dict())

    def digest(self) -> str:
        """SHA-256 of the resolved study (provenance, sweep case ids)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def _raise_lines(lines: list[str]) -> None:
    """Raise ``key: message`` lines as one validation error that
    :func:`format_errors` unpacks into those lines again."""
    if lines:
        raise PydanticCustomError("cross_field", "{msg}", {"msg": "; ".join(lines),
                                                             "lines": lines})


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``dotted.key=value``; the value is read as a TOML literal when it is one
    (numbers, booleans, arrays, quoted strings), else taken as a plain string."""
    if "=" not in text:
        raise StudyError([f"--set {text}: expected dotted.key=value"])
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if not key:
        raise StudyError([f"--set {text}: empty key"])
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data[dotted.key] = value``. A list level is addressed by index or by the
    ``name`` of an element (``species.BDNF.half_life``)."""
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            idx = _list_index(node, part, key)
            if last:
                node[idx] = value
                return
            node = node[idx]
            continue
        if not isinstance(node, dict):
            raise StudyError([f"{'.'.join(parts[:i])}: is a value, cannot set {key}"])
        if last:
            node[part] = value
            return
        if part not in node:
            node[part] = {}
        node = node[part]


def _list_index(node: list[Any], part: str, key: str) -> int:
    if part.isdigit() and int(part) < len(node):
        return int(part)
    for j, item in enumerate(node):
        if isinstance(item, dict) and item.get("name") == part:
            return j
    raise StudyError([f"{key}: no list element {part!r}"])


def expand_lists(data: dict[str, Any]) -> dict[str, Any]:
    """Materialise default lists (species, enzymes, cell cohorts) so that overrides can
    address them."""
    if "species" not in data:
        data["species"] = [s.model_dump(mode="json") for s in default_species()]
    if "enzymes" not in data:
        data["enzymes"] = [e.model_dump(mode="json") for e in default_enzymes()]
    cells = data.setdefault("cells", {})
    if isinstance(cells, dict) and "cohorts" not in cells:  # cells.cohorts.0.transplant_time
        cells["cohorts"] = [c.model_dump(mode="json") for c in default_cohorts()]
    return data


def validate_study(data: dict[str, Any], *, machine_checks: bool = True) -> Study:
    """Validate a study dict; raise StudyError listing every problem.

    ``machine_checks=False`` skips the bounds that depend on this machine (the
    memory the growth cones may take): ranks re-validating the study rank 0 has
    accepted must not disagree with it on a node with less memory.
    """
    try:
        return Study.model_validate(data, context={"machine_checks": machine_checks})
    except ValidationError as err:
        raise StudyError(format_errors(err)) from None


def override_pairs(
    overrides: Mapping[str, Any] | None = None, keywords: Mapping[str, Any] | None = None
) -> list[tuple[str, Any]]:
    """Overrides given in Python as ``(dotted.key, value)`` pairs.

    Args:
        overrides: ``{"dotted.key": value}``; a non-empty dict value is flattened
            into one pair per leaf (merged, not replacing the table).
        keywords: The same with ``__`` for each dot, applied after ``overrides``.

    Raises:
        StudyError: A key given twice.
    """
    pairs: dict[str, Any] = {}
    errors: list[str] = []

    def add(key: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                add(f"{key}.{k}", v)
        elif key in pairs:
            errors.append(f"{key}: given twice (overrides and keywords)")
        else:
            pairs[key] = copy.deepcopy(value)  # the study data never shares the caller's lists

    for key, value in (overrides or {}).items():
        add(str(key), value)
    for key, value in (keywords or {}).items():
        add(key.replace("__", "."), value)
    if errors:
        raise StudyError(errors)
    return list(pairs.items())


def override_study(
    data: dict[str, Any], overrides: Iterable[str | tuple[str, Any]]
) -> dict[str, Any]:
    """Apply overrides to study data, collecting every problem.

    Args:
        data: The study as read from TOML (changed in place).
        overrides: ``"dotted.key=value"`` strings (``--set``; the value is a TOML
            literal) or ``(dotted.key, value)`` pairs (Python values).

    Returns:
        ``data``, lists materialised (when there are overrides) and overrides applied.

    Raises:
        StudyError: One line per override that cannot be applied.
    """
    overrides = list(overrides)
    if not overrides:
        return data
    data = expand_lists(data)
    errors = []
    for item in overrides:
        try:
            key, value = parse_override(item) if isinstance(item, str) else item
            apply_override(data, key, value)
        except StudyError as err:
            errors.extend(err.lines)
    if errors:
        raise StudyError(errors)
    return data


def load_study(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Study:
    """Read, override and validate a study file (``path=None``: the defaults).

    Args:
        path: TOML study file, or None for the built-in defaults.
        overrides: ``dotted.key=value`` strings applied after reading.

    Returns:
        The validated study.

    Raises:
        StudyError: with every problem found, one line each.
    """
    data: dict[str, Any] = {} if path is None else read_toml(Path(path), "study")
    return validate_study(override_study(data, overrides))


def load_study_mpi(
    comm: Any, path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()
) -> Study:
    """:func:`load_study` on rank 0, result (or the error lines) broadcast to all ranks,
    so every rank raises the same StudyError and nothing is printed per rank."""
    return validate_study(on_rank0(comm, lambda: load_study(path, overrides).to_dict()),
                          machine_checks=False)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Read a TOML file; missing, unreadable or malformed files become a StudyError
    line naming the file (``what``: "study", "sweep", ...)."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise StudyError([f"{path}: no such {what} file"]) from None
    except tomllib.TOMLDecodeError as err:
        raise StudyError([f"{path}: not valid TOML ({err})"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise StudyError([f"{path}: cannot read ({err})"]) from None
