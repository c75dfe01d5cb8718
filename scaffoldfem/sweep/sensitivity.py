"""Which parameters matter: Sobol' sensitivity indices of a sweep's headline metrics.

A sweep sampled with ``[sample] method = "saltelli"`` (:mod:`scaffoldfem.sweep.sampling`)
runs Saltelli's design; :func:`sobol_indices` hands its outputs to SALib
(``SALib.analyze.sobol.analyze``, first and total order) and returns, per metric
and parameter, the first-order index S1 (the share of the metric's variance due to
that parameter alone), the total-order index ST (including every interaction it
takes part in) and the half-widths of their bootstrap confidence intervals
(``S1_conf``, ``ST_conf``; 95 % by default). The estimators are SALib's, not ours;
tests/test_sensitivity.py checks the whole path on the Ishigami function (a = 7,
b = 0.1) against its analytic indices: with N = 1024 (5120 evaluations) S1 = 0.314,
0.442, 0.000 (analytic 0.314, 0.442, 0) and ST = 0.566, 0.442, 0.240 (0.558, 0.442,
0.244), intervals ±0.03–0.09; with N = 256, ±0.05–0.2. A sweep of expensive runs
therefore gets rough indices: read them as a ranking, with their intervals.

:func:`write_sensitivity` writes ``DIR/sensitivity.csv`` (``metric, parameter, S1,
S1_conf, ST, ST_conf``) once every case of the sweep has a row; the results writer
(:mod:`scaffoldfem.sweep.results`) calls it. A metric is left out, with the reason
in :attr:`Sensitivity.notes`, when a case has no value for it (failed, not written)
or it is the same in every case (no variance to share out).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from scaffoldfem.files import atomic_write_text
from scaffoldfem.sweep.plan import SweepFile
from scaffoldfem.sweep.sampling import Sample, unit_problem

#: The table's file name in the sweep directory, and its columns.
SENSITIVITY_CSV = "sensitivity.csv"
COLUMNS = ("metric", "parameter", "S1", "S1_conf", "ST", "ST_conf")
#: Metrics whose indices are computed, when the results table has them (plus every
#: ``species.<name>.lesion_auc_ng_day_per_mL``): crossing, mechanics, degradation,
#: pain risk and cavitation risk.
METRICS = (
    "axons.crossing_fraction",
    "mechanics.interface_strain_jump.p95",
    "scaffold.mass_remaining_fraction",
    "pain_risk.score",
    "scaffold.ingrowth.cavitation_fraction_max",
)
_AUC_SUFFIX = ".lesion_auc_ng_day_per_mL"
#: Bootstrap resamples of SALib's confidence intervals (cheap: the runs are the cost).
NUM_RESAMPLES = 1000
#: Below this Saltelli N the indices come with a note that they are rough.
SMALL_N = 32


@dataclass
class Sensitivity:
    """The indices of a sweep: the table and why metrics were left out."""

    #: One row per (metric, parameter): :data:`COLUMNS`.
    table: pd.DataFrame
    #: One line per metric not analysed (``metric: reason``).
    notes: list[str] = field(default_factory=list)
    #: Saltelli's N and the number of cases it used.
    base_n: int = 0
    cases: int = 0


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if i < 2 else float)
                         for i, c in enumerate(COLUMNS)})


def sobol_indices(sample: Sample, outputs: pd.DataFrame, *, num_resamples: int = NUM_RESAMPLES,
                  conf_level: float = 0.95, seed: int = 0) -> Sensitivity:
    """First- and total-order Sobol' indices of each output column, with bootstrap intervals.

    Args:
        sample: The ``[sample]`` of the sweep (method ``saltelli``); its ranges are
            the parameters, in order.
        outputs: One column per metric, one row per point of ``sample.points()``
            in that order (``sample.n`` rows).
        num_resamples: Bootstrap resamples for the intervals.
        conf_level: Confidence level of the intervals (``*_conf`` are half-widths).
        seed: Seed of the bootstrap (reproducible intervals).

    Returns:
        The indices (metrics in column order, parameters in range order) and a note
        for each column left out (missing values or no variance).

    Raises:
        ValueError: ``sample`` is not a Saltelli design, or ``outputs`` has another
            number of rows.
    """
    from SALib.analyze import sobol as salib_sobol  # imported here: heavy, and only for this

    if sample.method != "saltelli":
        raise ValueError(f"Sobol' indices need a Saltelli design ([sample] method = "
                         f"'saltelli'), not {sample.method!r}")
    if len(outputs) != sample.n:
        raise ValueError(f"the design has {sample.n} points but {len(outputs)} outputs were "
                         "given")
    names = list(sample.ranges)
    problem = unit_problem(names)
    rows, notes = [], []
    if sample.base_n < SMALL_N:
        notes.append(f"Saltelli N = {sample.base_n} rows per matrix: with so few the bootstrap "
                     "intervals are themselves unreliable and indices outside [0, 1] are "
                     f"estimator noise; use N >= {SMALL_N} (on the Ishigami function N = 256 "
                     "gives intervals of ±0.05–0.2, N = 1024 ±0.03–0.09)")
    for metric in outputs.columns:
        y = pd.to_numeric(outputs[metric], errors="coerce").to_numpy(dtype=float)
        missing = int((~np.isfinite(y)).sum())
        if missing:
            notes.append(f"{metric}: no value in {missing} of {len(y)} cases (failed or not "
                         "written); not analysed")
            continue
        if np.ptp(y) <= 1e-12 * max(1.0, float(np.abs(y).max())):
            notes.append(f"{metric}: the same in every case ({y[0]:.4g}); no variance to share "
                         "out")
            continue
        res = salib_sobol.analyze(problem, y, calc_second_order=False,
                                  num_resamples=num_resamples, conf_level=conf_level, seed=seed)
        for j, name in enumerate(names):
            rows.append({"metric": str(metric), "parameter": name,
                         "S1": float(res["S1"][j]), "S1_conf": float(res["S1_conf"][j]),
                         "ST": float(res["ST"][j]), "ST_conf": float(res["ST_conf"][j])})
    table = pd.DataFrame(rows, columns=list(COLUMNS)) if rows else _empty()
    return Sensitivity(table=table, notes=notes, base_n=sample.base_n, cases=sample.n)


def sweep_sample(sweep_dir: Path) -> Sample | None:
    """The ``[sample]`` of the sweep in ``sweep_dir`` (its copy ``sweep.toml``) when it is
    a Saltelli design, else None."""
    try:
        raw = tomllib.loads((Path(sweep_dir) / "sweep.toml").read_text())
        sample = SweepFile.model_validate(raw).sample
    except (OSError, ValueError, ValidationError):  # tomllib's errors are ValueErrors
        return None
    return sample if sample is not None and sample.method == "saltelli" else None


def _case_count(sweep_dir: Path) -> int | None:
    """Number of cases of the sweep (its manifest ``sweep.json``), None if unreadable."""
    try:
        cases = json.loads((Path(sweep_dir) / "sweep.json").read_text())["cases"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return len(cases) if isinstance(cases, list) else None


def metric_columns(columns: list[str]) -> list[str]:
    """The metrics analysed among the results-table ``columns``: :data:`METRICS`, with
    the lesion AUC of every growth factor after the crossing fraction."""
    aucs = [c for c in columns if c.startswith("species.") and c.endswith(_AUC_SUFFIX)]
    present = [c for c in METRICS if c in columns]
    return present[:1] + aucs + present[1:]


def sweep_sensitivity(sweep_dir: Path, results: pd.DataFrame | None = None) -> Sensitivity | None:
    """The Sobol' indices of a Saltelli sweep from its results table.

    Args:
        sweep_dir: The sweep directory (``sweep.toml``, ``results.csv``).
        results: The results table (default: read ``results.csv``).

    Returns:
        None when the sweep is not a Saltelli design or the table does not hold
        every case of the design yet; else the indices. The design's cases are the
        last ``sample.n`` of the sweep's cases (``sweep.json``; grid and explicit
        cases come first), found by their ``index``.
    """
    sample = sweep_sample(sweep_dir)
    if sample is None:
        return None
    if results is None:
        try:
            results = pd.read_csv(Path(sweep_dir) / "results.csv")
        except (OSError, pd.errors.EmptyDataError):
            return None
    if "index" not in results or len(results) == 0:
        return None
    total = _case_count(sweep_dir)
    if total is None:
        return None
    index = pd.to_numeric(results["index"], errors="coerce")
    first = total - sample.n  # the sample's cases are the last n of the sweep
    keep = (index >= first).to_numpy()
    order = np.argsort(index[keep].to_numpy(), kind="stable")
    rows = results.loc[keep].iloc[order]
    if first < 0 or list(index[keep].iloc[order]) != list(range(first, first + sample.n)):
        return None  # some case of the design has no row yet
    outputs = rows[metric_columns(list(results.columns))].apply(pd.to_numeric, errors="coerce")
    outputs = outputs.reset_index(drop=True)
    if "status" in rows:  # a failed case's partial metrics are no output of the design
        outputs.loc[(rows["status"] != "done").to_numpy(), :] = np.nan
    return sobol_indices(sample, outputs, seed=sample.seed)


def write_sensitivity(sweep_dir: Path, results: pd.DataFrame | None = None) -> Path | None:
    """Write ``sensitivity.csv`` of a finished Saltelli sweep (rank 0); None if there is
    nothing to write (not Saltelli, cases missing, no metric analysable)."""
    sens = sweep_sensitivity(sweep_dir, results)
    if sens is None or sens.table.empty:
        return None
    path = Path(sweep_dir) / SENSITIVITY_CSV
    atomic_write_text(path, sens.table.to_csv(index=False, float_format="%.6g"))
    return path
