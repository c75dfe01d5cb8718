"""Sweep files: a base study and the values to vary → a validated list of cases.

A sweep is a TOML file::

    name = "porosity_modulus"
    base = "baseline.toml"              # study file, relative to this file
    [set]                               # applied to every case
    "geometry.resolution" = "coarse"
    [grid]                              # full factorial, first key varies slowest
    "scaffold.porosity" = [0.6, 0.7, 0.8, 0.9]
    "scaffold.solid_modulus" = ["1 kPa", "10 kPa", "100 kPa"]
    [[cases]]                           # explicit cases (optional ``id``)
    id = "stiff"
    "scaffold.solid_modulus" = "1e6 kPa"
    [sample]                            # Latin hypercube or Sobol sample
    method = "lhs"
    n = 16
    seed = 1
    [sample.ranges]
    "scaffold.porosity" = [0.6, 0.95]
    "scaffold.solid_modulus" = { low = "1 kPa", high = "1000 kPa", log = true }

Keys are dotted study keys (quoted or as nested TOML tables; list elements by
name, e.g. ``species.BDNF.half_life``). Grid, explicit cases and sample are
concatenated in that order. Every case is validated before anything runs; the
problems of all invalid cases are reported at once, each line prefixed with the
case id.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from scaffoldfem.config.base import Section
from scaffoldfem.config.study import (
    Study,
    StudyError,
    apply_override,
    expand_lists,
    format_errors,
    parse_override,
    read_toml,
    validate_study,
)
from scaffoldfem.sweep.columns import parameter_value
from scaffoldfem.sweep.expectations import Expectation, check_expectations
from scaffoldfem.sweep.names import NAME_PATTERN, case_id, check_name, short_names
from scaffoldfem.sweep.sampling import Range, Sample, flatten_tables

#: Most cases a sweep may have (each is a run directory and a study file).
MAX_CASES = 10_000

#: Top-level keys only a sweep file has (a study file with one of them is invalid).
SWEEP_KEYS = frozenset({"base", "set", "grid", "cases", "sample"})


def is_sweep_file(path: str | Path) -> bool:
    """Whether the TOML file ``path`` is a sweep (it has ``base``, ``[set]``,
    ``[grid]``, ``[[cases]]`` or ``[sample]``) rather than a study.

    Raises:
        StudyError: The file is missing, unreadable or not TOML.
    """
    return bool(SWEEP_KEYS & read_toml(Path(path), "study or sweep").keys())


class SweepFile(Section):
    """The sweep TOML file (see the module docstring)."""

    # Directory, job and file name of the sweep (default: the file's stem).
    name: str | None = None
    description: str = ""
    # Base study, relative to the sweep file; omitted = the built-in defaults.
    base: str | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    cases: list[dict[str, Any]] = Field(default_factory=list)
    sample: Sample | None = None
    # The two parameters the heatmaps use (x, y); default: the first two varied.
    plot: list[str] = Field(default_factory=list, max_length=2)
    # The question the sweep answers (studies/questions/), in the reader's words.
    question: str = ""
    # The results.csv columns it compares, headline first (e.g.
    # "axons.crossing_fraction"); each must carry its uncertainty where it has one.
    outcomes: list[str] = Field(default_factory=list)
    # The directions the literature expects (scaffoldfem.sweep.expectations).
    expect: list[Expectation] = Field(default_factory=list)
    # What in the model the answer depends on: the assumptions to doubt first
    # (docs/findings.md prints them under the answer).
    depends_on: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _flatten_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "set" in data:
            data["set"] = flatten_tables(data["set"], lambda v: False)
        if "grid" in data:
            data["grid"] = flatten_tables(data["grid"], lambda v: False)
        if isinstance(data.get("cases"), list):
            data["cases"] = [flatten_tables(c, lambda v: False) for c in data["cases"]]
        return data

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        return v if v is None else check_name(v, "a sweep name")

    @field_validator("cases")
    @classmethod
    def _safe_ids(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, entry in enumerate(v):
            if "id" in entry:
                if not isinstance(entry["id"], str):
                    raise ValueError(f"cases[{i}].id must be a string (got {entry['id']!r})")
                check_name(entry["id"], f"cases[{i}].id")
        return v

    @field_validator("grid")
    @classmethod
    def _grid_not_empty(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"grid value list of {key} is empty")
        return v

    @model_validator(mode="after")
    def _has_cases(self) -> SweepFile:
        if not (self.grid or self.cases or self.sample):
            raise ValueError("a sweep needs [grid], [[cases]] or [sample]")
        return self


@dataclass
class Case:
    """One validated case of a sweep."""

    index: int
    id: str
    #: The varied values exactly as written in the sweep (dotted key → value).
    overrides: dict[str, Any]
    study: Study


@dataclass
class SweepPlan:
    """A validated sweep: every case with its study, ready to run."""

    name: str
    path: Path
    base: Path | None
    cases: list[Case]
    #: Varied dotted keys in order of appearance.
    parameters: list[str]
    #: Heatmap axes (x, y) or one key for line plots.
    plot: list[str] = field(default_factory=list)
    source: str = ""
    #: The question it answers and the results.csv columns it compares.
    question: str = ""
    outcomes: list[str] = field(default_factory=list)
    #: ``--set KEY=VALUE`` overrides applied to every case after the file's ``[set]``.
    overrides: list[str] = field(default_factory=list)
    expect: list[Expectation] = field(default_factory=list)

    def digest(self) -> str:
        """Hash of all case ids and studies (detects an edited sweep on resume)."""
        h = hashlib.sha256()
        for c in self.cases:
            h.update(c.id.encode())
            h.update(c.study.digest().encode())
        return h.hexdigest()


def _case_items(sweep: SweepFile) -> list[tuple[dict[str, Any], str | None]]:
    """Every case as (varied values, explicit label) in sweep order."""
    items: list[tuple[dict[str, Any], str | None]] = []
    if sweep.grid:
        keys = list(sweep.grid)
        for combo in itertools.product(*(sweep.grid[k] for k in keys)):
            items.append((dict(zip(keys, combo, strict=True)), None))
    for entry in sweep.cases:
        entry = dict(entry)
        label = entry.pop("id", None)
        items.append((entry, None if label is None else str(label)))
    if sweep.sample is not None:
        pts = sweep.sample.points()
        cols = [r.values(pts[:, j]) for j, r in enumerate(sweep.sample.ranges.values())]
        keys = list(sweep.sample.ranges)
        for i in range(sweep.sample.n):
            items.append(({k: cols[j][i] for j, k in enumerate(keys)}, None))
    return items


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepPlan:
    """Read a sweep file, expand its cases and validate every one of them.

    Args:
        path: The sweep TOML file.
        overrides: ``dotted.key=value`` strings applied to every case after the
            file's ``[set]`` (e.g. the full-size version of a question study:
            ``geometry.resolution=medium``). A key the sweep varies is refused.

    Returns:
        The plan: every case with its validated study.

    Raises:
        StudyError: every problem of the sweep file, or of every invalid case
            (lines prefixed with the case id), all at once.
    """
    path = Path(path)
    raw = read_toml(path, "sweep")
    try:
        sweep = SweepFile.model_validate(raw)
    except ValidationError as err:
        raise StudyError([f"{path}: {line}" for line in format_errors(err)]) from None
    name = sweep.name or path.stem
    if not NAME_PATTERN.match(name):
        raise StudyError([f"{path}: name: the sweep is named after its file, {name!r}, which is "
                          "not a plain word of letters, digits, '.', '_' or '-': set name = "
                          '"..." in the sweep file'])
    n_cases = _count_cases(sweep)
    if n_cases > MAX_CASES:
        raise StudyError([f"{path}: the sweep has {n_cases:,} cases, over the limit of "
                          f"{MAX_CASES:,}: split it, or sample it ([sample] n = ...)"])
    base_path = None
    base_data: dict[str, Any] = {}
    if sweep.base is not None:
        base_path = (path.parent / sweep.base).resolve()
        base_data = read_toml(base_path, "base study")
    base_data = expand_lists(base_data)

    errors: list[str] = []
    common = _copy(base_data)
    for key, value in sweep.set.items():
        try:
            apply_override(common, key, _copy(value))
        except StudyError as err:
            errors.extend(f"{path}: [set] {line}" for line in err.lines)
    items = _case_items(sweep)
    parameters = list(dict.fromkeys(k for it, _ in items for k in it))
    errors.extend(_apply_overrides(common, overrides, parameters))
    if errors:
        raise StudyError(errors)

    short = short_names(parameters)
    width = max(3, len(str(len(items) - 1)))
    cases: list[Case] = []
    bad: dict[str, list[str]] = {}  # case id -> its problems
    seen: dict[str, int] = {}
    studies: dict[str, str] = {}  # study digest -> first case id
    for index, (values, label) in enumerate(items):
        cid = case_id(index, width, values, short, label)
        data = _copy(common)
        case_errors: list[str] = []
        for key, value in values.items():
            try:
                apply_override(data, key, _copy(value))
            except StudyError as err:
                case_errors.extend(err.lines)
        if not case_errors:
            try:
                study = validate_study(data)
            except StudyError as err:
                case_errors.extend(err.lines)
        if cid in seen:
            case_errors.append(f"duplicate case id (same as case {seen[cid]})")
        seen[cid] = index
        if not case_errors:
            # Equal once units are converted ("1 MPa" and "1000 kPa"): one run, not two.
            digest = study.digest()
            if digest in studies:
                case_errors.append(f"same study as case {studies[digest]} (the values are equal "
                                   "after unit conversion): remove one of them")
            studies.setdefault(digest, cid)
        if case_errors:
            bad[cid] = case_errors
            continue
        cases.append(Case(index=index, id=cid, overrides=values, study=study))
    expect_errors = check_expectations(sweep.expect, sweep.outcomes,
                                       [(c.id, c.overrides) for c in cases])
    if expect_errors and not bad:
        raise StudyError([f"{path}: {line}" for line in expect_errors])
    if bad:
        raise StudyError([f"{path}: {len(bad)} of {len(items)} cases are invalid; nothing was run",
                          *_case_error_lines(bad, len(items))])
    # Explicit cases only: a bar per case (their values need not span a plane).
    only_cases = not sweep.grid and sweep.sample is None
    plot = sweep.plot or ([] if only_cases else
                          [p for p in parameters if _is_numeric_param(cases, p)][:2])
    return SweepPlan(name=name, path=path.resolve(), base=base_path,
                     cases=cases, parameters=parameters, plot=plot, source=path.read_text(),
                     question=sweep.question, outcomes=list(sweep.outcomes),
                     overrides=list(overrides), expect=list(sweep.expect))


def _case_error_lines(bad: dict[str, list[str]], n_items: int) -> list[str]:
    """One line per problem: a problem every case has (a bad ``[set]`` or ``--set``
    value) once, as "every case: ...", the others prefixed with their case id."""
    every = len(bad) == n_items > 1  # one case: its own lines, with its id
    common = set.intersection(*(set(v) for v in bad.values())) if every else set()
    lines = [f"every case: {line}" for line in next(iter(bad.values())) if line in common]
    for cid, problems in bad.items():
        lines.extend(f"{cid}: {line}" for line in problems if line not in common)
    return lines


def _apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...],
                     varied: list[str]) -> list[str]:
    """Apply ``--set`` strings to the common study data; the problems, one line each."""
    errors: list[str] = []
    for text in overrides:
        try:
            key, value = parse_override(text)
            if key in varied:
                raise StudyError([f"--set {text}: {key} is varied by the sweep; every case would "
                                  "override it (edit [grid], [[cases]] or [sample] instead)"])
            apply_override(data, key, value)
        except StudyError as err:
            errors.extend(line if line.startswith("--set") else f"--set {text}: {line}"
                          for line in err.lines)
    return errors


def _count_cases(sweep: SweepFile) -> int:
    """Number of cases, counted before any is made (a grid's product may be huge)."""
    grid = math.prod(len(v) for v in sweep.grid.values()) if sweep.grid else 0
    return grid + len(sweep.cases) + (sweep.sample.n if sweep.sample is not None else 0)


def _copy(obj: Any) -> Any:
    """Deep copy of plain TOML data (dicts, lists, scalars)."""
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    return obj


def _is_numeric_param(cases: list[Case], key: str) -> bool:
    vals = [parameter_value(c.study, key)[0] for c in cases]
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)


__all__ = ["MAX_CASES", "Case", "Range", "Sample", "SweepFile", "SweepPlan", "case_id",
           "is_sweep_file", "load_sweep"]
