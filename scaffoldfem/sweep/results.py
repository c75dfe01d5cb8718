"""The results table of a sweep: one row per case (status, varied values, metrics).

World rank 0 is the one writer: :class:`ResultsWriter` rewrites ``results.csv`` and
``results.parquet`` through a temporary file and a rename after every case, keyed
by case id, so a rerun replaces a row rather than adding one. Once every case of a
Saltelli sweep has a row it also writes ``sensitivity.csv``, the Sobol' indices of
the headline metrics (:mod:`scaffoldfem.sweep.sensitivity`).
"""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from scaffoldfem.files import atomic_write_bytes, atomic_write_text, read_json_object
from scaffoldfem.sweep.columns import parameter_column, parameter_value
from scaffoldfem.sweep.plan import SweepPlan
from scaffoldfem.sweep.sensitivity import write_sensitivity

#: Headline metrics: always a column (NaN when the run did not write them).
HEADLINE = (
    "axons.crossing_fraction",
    # The 95th percentile of the jump over the interface (converges under refinement;
    # the maximum, at the singular scaffold-pia corner, does not).
    "mechanics.interface_strain_jump.p95",
    "scaffold.mass_remaining_fraction",
)
#: Per-species headline metrics (``species.<name>.<key>``).
SPECIES_HEADLINE = ("lesion_auc_ng_day_per_mL",)
#: metrics.json sections whose numeric values become columns.
METRIC_SECTIONS = ("axons", "species", "scaffold", "mechanics", "pain_risk", "cells", "cspg",
                   "mesh", "timing_s")
#: Row columns before the parameters and metrics.
LEAD_COLUMNS = ("case_id", "index", "status", "exit_code", "error", "wall_s", "ranks")


def _flatten_numbers(tree: Any, prefix: str, out: dict[str, float]) -> None:
    if isinstance(tree, dict):
        for k, v in tree.items():
            _flatten_numbers(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(tree, bool):
        out[prefix] = float(tree)
    elif isinstance(tree, int | float):
        out[prefix] = float(tree)


def metric_columns(metrics: dict[str, Any], species: list[str]) -> dict[str, float]:
    """Numeric metrics as flat ``section.key`` columns; headline keys always present.

    Args:
        metrics: Parsed ``metrics.json`` (may be empty or partial).
        species: Growth-factor names of the case (for the per-species headline).

    Returns:
        Column → value; a missing headline metric is NaN.
    """
    out: dict[str, float] = {k: math.nan for k in HEADLINE}
    out.update({f"species.{s}.{k}": math.nan for s in species for k in SPECIES_HEADLINE})
    for section in METRIC_SECTIONS:
        if section in metrics:
            _flatten_numbers(metrics[section], section, out)
    return out


def read_metrics(case_dir: Path) -> dict[str, Any]:
    """``metrics.json`` of a case, or {} when absent or unreadable."""
    return read_json_object(case_dir / "metrics.json")


def case_row(plan: SweepPlan, pos: int, case_dir: Path, *, exit_code: int, error: str | None,
             wall_s: float, ranks: int) -> dict[str, Any]:
    """The results-table row of a case: status, varied values, metrics."""
    case = plan.cases[pos]
    done = (case_dir / "DONE").exists()
    if exit_code != 0:
        status = "failed"
    elif done:
        status = "done"
    else:
        status = "incomplete"
        error = error or "run returned 0 but wrote no DONE"
    row: dict[str, Any] = {"case_id": case.id, "index": case.index, "status": status,
                           "exit_code": exit_code, "error": error or "", "wall_s": wall_s,
                           "ranks": ranks}
    for key in plan.parameters:
        value, unit = parameter_value(case.study, key)
        row[parameter_column(key, unit)] = value
    row.update(metric_columns(read_metrics(case_dir), [s.name for s in case.study.species]))
    return row


def parameter_columns(plan: SweepPlan) -> list[str]:
    """Results-table columns of the varied values, in sweep order."""
    if not plan.cases:
        return []
    study = plan.cases[0].study
    return [parameter_column(k, parameter_value(study, k)[1]) for k in plan.parameters]


class ResultsWriter:
    """Rows keyed by case id; rewrites results.csv/.parquet atomically (rank 0 only)."""

    def __init__(self, out: Path, plan: SweepPlan, rows: dict[str, dict[str, Any]]):
        self.out = out
        self.plan = plan
        self.rows = rows
        self.lock = threading.Lock()

    @staticmethod
    def load(out: Path) -> dict[str, dict[str, Any]]:
        """Rows of an earlier run of the sweep (keyed by case id)."""
        path = out / "results.csv"
        try:
            df = pd.read_csv(path, keep_default_na=False, na_values=["", "nan", "NaN"])
        except (FileNotFoundError, pd.errors.EmptyDataError):
            return {}
        return {str(r["case_id"]): r for r in df.to_dict("records")}

    def add(self, row: dict[str, Any]) -> None:
        """Insert or replace the row of a case and rewrite both tables."""
        with self.lock:
            self.rows[row["case_id"]] = row
            self.write()

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame: lead columns, parameters (sweep order), metrics (sorted)."""
        order = {c.id: c.index for c in self.plan.cases}
        rows = sorted(self.rows.values(), key=lambda r: order.get(r["case_id"], 1 << 30))
        df = pd.DataFrame(rows) if rows else \
            pd.DataFrame(columns=[*LEAD_COLUMNS, *parameter_columns(self.plan)])
        lead = [c for c in LEAD_COLUMNS if c in df.columns]
        params = [c for c in parameter_columns(self.plan) if c in df.columns]
        metrics = sorted(c for c in df.columns if c not in lead and c not in params)
        df = df[lead + params + metrics]
        if "error" in df:
            df["error"] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                           for v in df["error"]]
        return df

    def write(self) -> None:
        """Rewrite results.csv and results.parquet via temporary files and renames;
        then, when every case has a row, the sensitivity indices."""
        df = self.frame()
        atomic_write_text(self.out / "results.csv", df.to_csv(index=False))
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(self.out / "results.parquet", buf.getvalue())
        if self.plan.cases and all(c.id in self.rows for c in self.plan.cases):
            self.write_sensitivity(df)

    def write_sensitivity(self, df: pd.DataFrame) -> None:
        """``sensitivity.csv`` of a Saltelli sweep (nothing for other designs); a failure
        is a warning: the indices must never cost the sweep its results table."""
        try:
            write_sensitivity(self.out, df)
        except Exception as err:  # SALib missing, a degenerate table, a full disk, ...
            print(f"warning: sensitivity.csv not written: {type(err).__name__}: {err}",
                  flush=True)
