"""The results of one finished question sweep, read for docs/findings.md.

Everything here is read from the sweep directory (``sweep.toml``, ``sweep.json``,
``results.csv`` and each case's ``metrics.json``, ``run.json`` and ``DONE``), so the
findings page is a function of the runs alone: no number is typed by hand.

Intervals: the crossing fraction of a case carries its Wilson 95 % interval (from
the crossed / seeded counts); a group of cases pools the counts. Concentrations,
occupancies, pain and cavitation scores are deterministic outputs of one solve:
they carry no sampling interval, and two of them are told apart only when they
differ by more than :data:`DETERMINISTIC_TOLERANCE`, the discretisation error
assumed for the coarse meshes the question studies use.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scaffoldfem.axons.crossing import wilson_interval
from scaffoldfem.files import read_json_object
from scaffoldfem.sweep.columns import case_label, compact_value
from scaffoldfem.sweep.expectations import Expectation, select_cases
from scaffoldfem.sweep.plan import SweepFile

__all__ = ["DETERMINISTIC_TOLERANCE", "Judged", "QuestionResults", "Value", "fmt_value",
           "pooled_proportion", "read_question", "short_name", "verdict_lines"]

#: Relative difference under which two deterministic outcomes are "not resolved"
#: (an assumed coarse-mesh discretisation error, not a measured one).
DETERMINISTIC_TOLERANCE = 0.05

#: Relative difference under which two outcomes are the same number (rounding).
IDENTICAL = 1e-9

#: Outcomes that are binomial proportions of the traced axons: (crossed, seeded) keys.
PROPORTIONS = {"axons.crossing_fraction": ("axons.crossed", "axons.seeded")}


@dataclass
class Value:
    """An outcome of a case or a group of cases, with its 95 % interval if it has one."""

    value: float
    lo: float | None = None
    hi: float | None = None

    def separated_from(self, other: Value) -> bool:
        """Whether the two are told apart: disjoint intervals, or (deterministic) a
        relative difference above :data:`DETERMINISTIC_TOLERANCE`."""
        if None not in (self.lo, self.hi, other.lo, other.hi):
            return self.lo > other.hi or other.lo > self.hi
        scale = max(abs(self.value), abs(other.value))
        return scale > 0 and abs(self.value - other.value) > DETERMINISTIC_TOLERANCE * scale

    def error_bar(self) -> tuple[float, float]:
        """(below, above): the interval as matplotlib's ``xerr``/``yerr`` want it."""
        return self.value - self.lo, self.hi - self.value


def pooled_proportion(rows: pd.DataFrame, column: str) -> Value | None:
    """A proportion outcome (:data:`PROPORTIONS`) of ``rows`` from their pooled counts,
    with its Wilson 95 % interval; None for other columns or without the counts."""
    keys = PROPORTIONS.get(column)
    if keys is None or not set(keys) <= set(rows.columns):
        return None
    k, n = float(rows[keys[0]].sum()), float(rows[keys[1]].sum())
    lo, hi = wilson_interval(k, n)
    return Value(k / n if n else math.nan, lo, hi)


@dataclass
class Judged:
    """One expectation held against the results."""

    expectation: Expectation
    higher: Value
    lower: Value
    higher_ids: list[str]
    lower_ids: list[str]

    @property
    def verdict(self) -> str:
        """``"as expected"``, ``"against the expectation"``, ``"not resolved"`` or
        ``"no effect"`` (equal to rounding: nothing in the model links the varied
        input to this outcome)."""
        a, b = self.higher.value, self.lower.value
        if abs(a - b) <= IDENTICAL * max(abs(a), abs(b)):
            return "no effect"
        if not self.higher.separated_from(self.lower):
            return "not resolved"
        return "as expected" if self.higher.value > self.lower.value else "against the expectation"


@dataclass
class QuestionResults:
    """A finished question sweep: its file, its table and its cases' metrics."""

    name: str
    sweep: SweepFile
    table: pd.DataFrame
    metrics: dict[str, dict[str, Any]]
    labels: dict[str, str]
    values: dict[str, dict[str, Any]]
    wall_s: float | None
    #: Cases of the sweep without a finished result.
    pending: int = 0

    def __post_init__(self) -> None:
        self._by_id = self.table.set_index("case_id")  # indexed once, read per outcome

    def outcome(self, case_ids: list[str], column: str) -> Value | None:
        """``column`` of one case, or of a group (proportions pooled, others averaged)."""
        rows = self._by_id.loc[case_ids]
        pooled = pooled_proportion(rows, column)
        if pooled is not None:
            return pooled
        if column not in rows:
            return None
        vals = pd.to_numeric(rows[column], errors="coerce").dropna()
        return Value(float(vals.mean())) if len(vals) else None

    def judged(self) -> list[Judged]:
        """Every ``[[expect]]`` of the sweep against the results."""
        cases = [(cid, self.values[cid]) for cid in self.table["case_id"]]
        out = []
        for e in self.sweep.expect:
            hi_ids, lo_ids = select_cases(e.higher, cases), select_cases(e.lower, cases)
            hi, lo = self.outcome(hi_ids, e.outcome), self.outcome(lo_ids, e.outcome)
            if hi_ids and lo_ids and hi is not None and lo is not None:
                out.append(Judged(e, hi, lo, hi_ids, lo_ids))
        return out


def _wall_time(case_dirs: list[Path]) -> float | None:
    """Time during which some case ran: the union of the cases' [start (run.json
    ``created``), DONE] intervals (a sweep resumed later does not count the pause)."""
    spans = []
    for d in case_dirs:
        created = read_json_object(d / "run.json").get("created")
        if created and (d / "DONE").exists():
            spans.append((dt.datetime.fromisoformat(created).timestamp(),
                          (d / "DONE").stat().st_mtime))
    if not spans:
        return None
    total, (lo, hi) = 0.0, sorted(spans)[0]
    for a, b in sorted(spans)[1:]:
        if a > hi:
            total, lo = total + hi - lo, a
        hi = max(hi, b)
    return total + hi - lo


def read_question(sweep_dir: Path) -> QuestionResults:
    """Read the finished sweep in ``sweep_dir``.

    Raises:
        FileNotFoundError: ``sweep_dir`` holds no finished sweep (no results.csv).
    """
    sweep = SweepFile.model_validate(tomllib.loads((sweep_dir / "sweep.toml").read_text()))
    manifest = read_json_object(sweep_dir / "sweep.json")
    table = pd.read_csv(sweep_dir / "results.csv")
    table = table[table["status"] == "done"].reset_index(drop=True)
    named = {str(c["id"]) for c in sweep.cases if "id" in c}  # [[cases]] with an id
    values = {c["id"]: c.get("values", {}) for c in manifest.get("cases", [])}
    labels = {cid: case_label(cid, values.get(cid, {}), named) for cid in table["case_id"]}
    metrics = {cid: read_json_object(sweep_dir / "cases" / cid / "metrics.json")
               for cid in table["case_id"]}
    return QuestionResults(
        name=manifest.get("name") or sweep_dir.name, sweep=sweep, table=table, metrics=metrics,
        labels=labels, values={cid: values.get(cid, {}) for cid in table["case_id"]},
        wall_s=_wall_time([sweep_dir / "cases" / cid for cid in table["case_id"]]),
        pending=max(len(manifest.get("cases", [])) - len(table), 0))


def fmt_value(column: str, v: Value | None) -> str:
    """``v`` as the page shows it: a proportion in % with its interval."""
    if v is None or not math.isfinite(v.value):
        return "–"
    if column in PROPORTIONS:
        return f"{100 * v.value:.1f} % [{100 * v.lo:.1f}, {100 * v.hi:.1f}]"
    return f"{v.value:.4g}"


def short_name(column: str) -> str:
    """A column's short name: ``species.BDNF.evaluation_window.lesion_auc_ng_day_per_mL``
    → ``BDNF lesion auc ng day per mL (wk 2–8)``."""
    parts = column.split(".")
    window = " (wk 2–8)" if "evaluation_window" in parts else ""
    parts = [p for p in parts if p not in ("species", "evaluation_window", "axons", "scaffold")]
    return " ".join(parts).replace("_", " ") + window


def verdict_lines(q: QuestionResults) -> list[str]:
    """One sentence per ``[[expect]]`` of the sweep: what was expected, what was found,
    and whether that is as the review expects, against it, or not resolved."""
    lines = []
    for j in q.judged():
        e = j.expectation
        verdict = j.verdict
        mark = {"as expected": "as the review expects",
                "no effect": "**no effect at all in the model** (equal to rounding: nothing in "
                             "it links the varied input to this outcome)",
                "against the expectation": "**against the review's expectation**",
                "not resolved": "not resolved (the difference is inside the uncertainty)"}[verdict]
        hi_lab = _group_label(q, e.higher, j.higher_ids)
        lo_lab = _group_label(q, e.lower, j.lower_ids)
        lines.append(f"Expected ({e.source}): {short_name(e.outcome)} higher for *{hi_lab}* than "
                     f"for *{lo_lab}*. Found {fmt_value(e.outcome, j.higher)} vs "
                     f"{fmt_value(e.outcome, j.lower)}: {mark}.")
    return lines


def _group_label(q: QuestionResults, selector: Any, ids: list[str]) -> str:
    """One case by its label; a group by what selects it and its size."""
    if len(ids) == 1:
        return q.labels[ids[0]]
    what = ("; ".join(f"{k.split('.')[-1]} {compact_value(v)}" for k, v in selector.items())
            if isinstance(selector, dict) else f"'{selector}'")
    return f"{what} ({len(ids)} cases; counts pooled, other outcomes averaged)"
