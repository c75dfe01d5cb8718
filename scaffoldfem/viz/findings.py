"""docs/findings.md: the review's questions answered from the runs of studies/questions/.

``scaffoldfem findings RUNS --out docs/findings.md`` reads every finished question
sweep under ``RUNS`` (one directory per study, as ``make findings`` writes them)
and writes, per question: the setup in two lines, the wall time, a figure (into
``docs/findings/``), the outcomes of every case with their intervals, the answer
(each expectation of the review held against the results, said plainly when it
came out against), and what in the model the answer depends on. Nothing on the
page is typed by hand: rerun the sweeps and this command to regenerate it.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
import tomllib
from pathlib import Path

import pandas as pd

from scaffoldfem.files import atomic_write_bytes, atomic_write_text
from scaffoldfem.sweep.sensitivity import sweep_sensitivity
from scaffoldfem.viz.findings_data import (
    DETERMINISTIC_TOLERANCE,
    QuestionResults,
    Value,
    fmt_value,
    read_question,
    short_name,
    verdict_lines,
)
from scaffoldfem.viz.report_sweep import draw_sensitivity

__all__ = ["MIN_BASE_N", "write_findings"]

#: Fewest Saltelli base points at which an index's bootstrap interval is judged
#: (below it, SALib's intervals are themselves unreliable).
MIN_BASE_N = 8


def _figure(q: QuestionResults) -> bytes:
    """Bars of each outcome per case (95 % intervals where the outcome has one)."""
    import io

    from matplotlib.figure import Figure

    outcomes = q.sweep.outcomes
    ids = list(q.table["case_id"])
    fig = Figure(figsize=(4.2 * len(outcomes), 0.9 + 0.42 * len(ids)), layout="constrained")
    axes = fig.subplots(1, len(outcomes), squeeze=False).ravel()
    for k, (ax, column) in enumerate(zip(axes, outcomes, strict=True)):
        vals = [q.outcome([cid], column) for cid in ids]
        x = [v.value if v is not None else math.nan for v in vals]
        err = None
        if all(v is not None and v.lo is not None for v in vals):
            err = list(zip(*(v.error_bar() for v in vals), strict=True))
        bars = ax.barh(range(len(ids)), x, xerr=err, capsize=3,
                       color="#4c72b0" if k == 0 else "#8c8c8c")
        # The value at each bar: a bar 1000x shorter than the others is still read.
        ax.bar_label(bars, labels=[f"{v:.4g}" if math.isfinite(v) else "–" for v in x],
                     fontsize=7, padding=3)
        ax.margins(x=0.18)
        ax.set_yticks(range(len(ids)), [q.labels[c] for c in ids] if k == 0 else [""] * len(ids),
                      fontsize=8)
        ax.invert_yaxis()
        ax.set_title(textwrap.fill(short_name(column), 34), fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3, lw=0.5)
    fig.suptitle(q.sweep.question, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _setup(q: QuestionResults, sweep_dir: Path) -> str:
    """Description, size (from the first case's resolved study) and wall time."""
    first = sweep_dir / "cases" / str(q.table["case_id"].iloc[0]) / "study.resolved.toml"
    try:
        study = tomllib.loads(first.read_text())
        g, t, a = study["geometry"], study["time"], study["axons"]
        size = (f"mesh {g['resolution']}, {t['duration']}, "
                f"{a['count'] if a.get('enabled', True) else 0} axons per case")
    except (OSError, ValueError, KeyError):
        size = "size unknown (no resolved study)"
    wall = f"{q.wall_s / 60:.1f} min" if q.wall_s else "unknown"
    ranks = sorted({int(r) for r in q.table["ranks"]}) if "ranks" in q.table else []
    return (f"{q.sweep.description}.  \n{len(q.table)} cases, {size}; wall time {wall} on "
            f"this machine (2 cores, {'/'.join(map(str, ranks)) or '?'} rank(s) per case, "
            "cases side by side).")


def _table(q: QuestionResults) -> list[str]:
    cols = q.sweep.outcomes
    lines = ["| case | " + " | ".join(short_name(c) for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for cid in q.table["case_id"]:
        cells = [fmt_value(c, q.outcome([cid], c)) for c in cols]
        lines.append(f"| {q.labels[cid]} | " + " | ".join(cells) + " |")
    return lines


def _answer(q: QuestionResults) -> list[str]:
    head = q.sweep.outcomes[0]
    ids = list(q.table["case_id"])
    hi = max(ids, key=lambda c: _num(q.outcome([c], head)))
    lo = min(ids, key=lambda c: _low(q, c, head))
    name = short_name(head)
    return [f"- {name[:1].upper() + name[1:]}: largest for **{q.labels[hi]}** "
            f"({fmt_value(head, q.outcome([hi], head))}), smallest for **{q.labels[lo]}** "
            f"({fmt_value(head, q.outcome([lo], head))}).",
            *(f"- {line}" for line in verdict_lines(q))]


def _low(q: QuestionResults, case_id: str, column: str) -> float:
    v = q.outcome([case_id], column)
    return v.value if v is not None and math.isfinite(v.value) else math.inf


def _num(v: Value | None) -> float:
    return v.value if v is not None and math.isfinite(v.value) else -math.inf


def _sensitivity(sweep_dir: Path, figures: Path, name: str, outcomes: list[str]) -> list[str]:
    """The Sobol' indices of the sweep's outcomes (all analysed metrics if it names none)."""
    sens = sweep_sensitivity(sweep_dir)
    if sens is None or sens.table.empty:
        return ["No Sobol' indices: the sweep is not a finished Saltelli design."]
    if outcomes and sens.table["metric"].isin(outcomes).any():
        sens = dataclasses.replace(sens, table=sens.table[sens.table["metric"].isin(outcomes)])
    atomic_write_bytes(figures / f"{name}_sobol.png", draw_sensitivity(sens))
    table = pd.read_csv(sweep_dir / "results.csv")
    lines = [f"![Sobol' indices](findings/{name}_sobol.png)", "",
             f"Saltelli N = {sens.base_n} ({sens.cases} cases); 95 % bootstrap intervals.", "",
             "| metric | parameter | S1 | ST | verdict |", "|---|---|---|---|---|"]
    for _, r in sens.table.iterrows():
        lines.append(f"| {short_name(r['metric'])} | {r['parameter'].split('.')[-1]} | "
                     f"{r['S1']:.2f} ± {r['S1_conf']:.2f} | {r['ST']:.2f} ± {r['ST_conf']:.2f} | "
                     f"{_index_verdict(r, sens.base_n, table)} |")
    return [*lines, "", *(f"- {n}" for n in sens.notes)]


def _index_verdict(r: pd.Series, base_n: int, table: pd.DataFrame) -> str:
    """A parameter matters where its total-order interval stays above 0.1; nothing is
    said of a metric that varies in fewer than two cases, or at N < MIN_BASE_N."""
    values = pd.to_numeric(table.get(r["metric"]), errors="coerce").dropna()
    varied = int((values != values.median()).sum()) if len(values) else 0
    if varied < 2:
        return f"no index: the metric varies in {varied} of {len(values)} cases"
    if base_n < MIN_BASE_N:
        return f"not resolved (N = {base_n} < {MIN_BASE_N}: screening only)"
    if r["ST"] - r["ST_conf"] > 0.1:
        return "matters (ST interval above 0.1)"
    if r["ST"] + r["ST_conf"] < 0.1:
        return "does not matter here (ST interval below 0.1)"
    return "not resolved at this N"


def question_section(sweep_dir: Path, figures: Path) -> str:
    """The findings section of the finished question sweep in ``sweep_dir``."""
    q = read_question(sweep_dir)
    lines = [f'<a id="{q.name}"></a>', "", f"## {q.sweep.question}", "",
             f"Study: `studies/questions/{q.name}.toml` — "
             + (_setup(q, sweep_dir) if len(q.table) else q.sweep.description), ""]
    if q.pending:
        lines += [f"**Not finished**: {q.pending} of {q.pending + len(q.table)} cases have no "
                  "result yet; rerun the sweep (it resumes), then this command.", ""]
    if q.table.empty:
        return "\n".join(lines) + "\n"
    if q.sweep.sample is not None and q.sweep.sample.method == "saltelli":
        lines += _sensitivity(sweep_dir, figures, q.name, q.sweep.outcomes)
    else:
        atomic_write_bytes(figures / f"{q.name}.png", _figure(q))
        lines += [f"![{q.name}](findings/{q.name}.png)", "", *_table(q), "", "**Answer.**", "",
                  *_answer(q)]
    if q.sweep.depends_on:
        lines += ["", "**What the answer depends on** (doubt these first):", ""]
        lines += [f"- {d}" for d in q.sweep.depends_on]
    return "\n".join(lines) + "\n"


def write_findings(runs: Path, out: Path) -> Path:
    """Write ``out`` (and its figures into ``out.parent/findings/``) from every finished
    question sweep under ``runs``; returns ``out``."""
    figures = out.parent / "findings"
    figures.mkdir(parents=True, exist_ok=True)
    dirs = sorted(d for d in runs.iterdir() if (d / "results.csv").exists())
    head = ["# Findings: the review's questions, answered by the model", "",
            "Generated by `scaffoldfem findings` from the sweeps of `studies/questions/` "
            "(`make findings` reruns them all and regenerates this page); no number here is "
            "typed by hand.", "",
            "How to read the intervals: a crossing fraction carries its Wilson 95 % interval "
            "over the traced axons. Concentrations, occupancies and scores are deterministic; "
            f"two of them are told apart only when they differ by more than "
            f"{100 * DETERMINISTIC_TOLERANCE:.0f} % (an assumed discretisation error of the "
            "coarse meshes these studies use, not a measured one). \"Against the review's "
            "expectation\" is said where the model disagrees with the direction the review "
            "reports: the model is not tuned to agree.", ""]
    sections = [question_section(d, figures) for d in dirs]
    atomic_write_text(out, "\n".join(head) + "\n" + "\n".join(sections))
    return out
