"""The report page of a sweep directory: every case in a sortable table, the sweep's
plots, the best and worst case, the failures, and which parameters matter.

Reads ``sweep.json``, ``sweep.toml``, ``results.csv`` and ``figures/`` (drawn by
``scaffoldfem plot``, embedded as they are); for a Saltelli sweep also the Sobol'
indices (:mod:`scaffoldfem.sweep.sensitivity`), drawn here as a bar chart into
``figures/sweep_sensitivity.png`` and embedded.
"""

from __future__ import annotations

import io
import math
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from scaffoldfem.files import atomic_write_bytes, read_json_object
from scaffoldfem.sweep.columns import compact_value
from scaffoldfem.sweep.results import HEADLINE
from scaffoldfem.sweep.sensitivity import Sensitivity, metric_columns, sweep_sensitivity
from scaffoldfem.viz import report_html as h
from scaffoldfem.viz.findings_data import read_question, verdict_lines

#: The metric that ranks the cases (best / worst).
RANK_METRIC = "axons.crossing_fraction"
#: Sweep figures besides the per-metric ones (their caption).
EXTRA_FIGURES = {
    "sweep_benefit_risk.png": "Benefit and risk: axons crossed against the dorsal-horn "
                              "pain-risk score, one point per case",
    "sweep_montage.png": "Best (top) and worst (bottom) case by axon crossing fraction",
}
SENSITIVITY_PNG = "sweep_sensitivity.png"


def _manifest(sweep_dir: Path) -> dict[str, Any]:
    return read_json_object(sweep_dir / "sweep.json")


def _sweep_file(sweep_dir: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((sweep_dir / "sweep.toml").read_text())
    except (OSError, ValueError):
        return {}


def read_results(sweep_dir: Path) -> pd.DataFrame:
    """``results.csv`` (an empty table when there is none yet)."""
    try:
        return pd.read_csv(sweep_dir / "results.csv", keep_default_na=False,
                           na_values=["", "nan", "NaN"])
    except (OSError, pd.errors.EmptyDataError):
        return pd.DataFrame(columns=["case_id", "status"])


def summary_section(sweep_dir: Path, manifest: dict[str, Any], raw: dict[str, Any],
                    df: pd.DataFrame) -> str:
    """Name, description, base study, counts by status, the varied parameters."""
    n = len(manifest.get("cases") or []) or len(df)
    status = df["status"].value_counts().to_dict() if "status" in df else {}
    counts = ", ".join(f"{v} {k}" for k, v in sorted(status.items()))
    pending = n - len(df)
    sample = raw.get("sample") or {}
    design = []
    if raw.get("grid"):
        design.append("grid " + " × ".join(str(len(v)) for v in raw["grid"].values()))
    if raw.get("cases"):
        design.append(f"{len(raw['cases'])} explicit case(s)")
    if sample:
        design.append(f"sample: {sample.get('method', 'lhs')}, n = {sample.get('n')}, "
                      f"seed {sample.get('seed', 0)}")
    rows = [("sweep", manifest.get("name", sweep_dir.name)),
            ("description", raw.get("description") or "(none)"),
            *([("question", raw["question"])] if raw.get("question") else []),
            *([("outcomes", ", ".join(raw["outcomes"]))] if raw.get("outcomes") else []),
            ("base study", manifest.get("base") or "(built-in defaults)"),
            ("design", "; ".join(design) or "–"),
            ("cases", f"{n}: {counts or 'none run'}" + (f", {pending} not run yet"
                                                         if pending > 0 else "")),
            ("scaffoldfem", manifest.get("scaffoldfem", "?"))]
    params = [(p.get("key"), p.get("unit") or "", p.get("column")) for p in
              manifest.get("parameters") or []]
    body = h.table(["", "value"], rows)
    if params:
        body += "<h3>Varied parameters</h3>" + h.table(["key", "unit", "column"], params)
    common = raw.get("set") or {}
    if common:
        body += h.details(f"[set] applied to every case ({len(common)})",
                          h.table(["key", "value"], sorted(common.items())))
    return h.section("summary", "Sweep", body)


def _shown_columns(df: pd.DataFrame, manifest: dict[str, Any]) -> list[str]:
    params = [p["column"] for p in manifest.get("parameters") or [] if p.get("column") in df]
    lead = [c for c in ("case_id", "status") if c in df]
    metrics = [c for c in (*metric_columns(list(df.columns)), *HEADLINE) if c in df]
    tail = [c for c in ("wall_s", "ranks") if c in df]
    return list(dict.fromkeys([*lead, *params, *metrics, *tail]))


def _written_values(df: pd.DataFrame, manifest: dict[str, Any]) -> pd.DataFrame:
    """Varied values that are not numbers (carrier lists, scavengers) as the sweep
    wrote them, shortly, instead of their resolved form (every default spelled out)."""
    written = {c["id"]: c.get("values", {}) for c in manifest.get("cases") or []}
    df = df.copy()
    for p in manifest.get("parameters") or []:
        col, key = p.get("column"), p.get("key")
        if col in df and not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = [compact_value(written[cid][key]) if key in written.get(cid, {}) else v
                       for cid, v in zip(df["case_id"], df[col], strict=True)]
    return df


def cases_section(df: pd.DataFrame, manifest: dict[str, Any]) -> str:
    """Every case: status, varied values, headline metrics; sortable by any column."""
    if df.empty:
        return h.section("cases", "Cases", "<p>No case has finished yet (no results.csv).</p>")
    cols = _shown_columns(df, manifest)
    rows = _written_values(df, manifest)[cols].itertuples(index=False)
    body = ("<p>Click a column header to sort. Every column of results.csv is in the file; "
            "this table shows the varied values and the headline metrics.</p>"
            + h.table(cols, rows, sortable=True))
    return h.section("cases", f"Cases ({len(df)})", body)


def failures_section(df: pd.DataFrame) -> str:
    """Cases not done: status, exit code, the first line of the error."""
    if "status" not in df:
        return ""
    bad = df[df["status"] != "done"]
    if bad.empty:
        return h.section("failures", "Failed cases", h.notes(["Every case finished."], "ok"))
    cols = [c for c in ("case_id", "status", "exit_code", "error") if c in bad]
    body = (h.table(cols, bad[cols].itertuples(index=False))
            + "<p>The traceback of a failed case is in <code>cases/&lt;id&gt;/sweep_error.txt"
              "</code>.</p>")
    return h.section("failures", f"Failed cases ({len(bad)})", h.notes(
        [f"{len(bad)} of {len(df)} cases did not finish."], "bad") + body)


def plots_section(sweep_dir: Path, df: pd.DataFrame) -> str:
    """The sweep figures: the overview (else each metric's), benefit-risk, montage and
    the best and worst cases by the crossing fraction."""
    fig_dir = sweep_dir / "figures"
    body = ""
    if (fig_dir / "sweep_overview.png").is_file():  # holds every per-metric panel: once
        body += h.figure(fig_dir / "sweep_overview.png", "Headline metrics over the varied "
                         "parameters (heatmap for a grid, scatter for a sample, line for one)")
    else:
        for p in sorted(fig_dir.glob("sweep_*.png")):
            if p.name not in EXTRA_FIGURES and p.name != SENSITIVITY_PNG:
                body += h.figure(p, p.stem.removeprefix("sweep_").replace("_", " "))
    for name, caption in EXTRA_FIGURES.items():
        if (fig_dir / name).is_file():
            body += h.figure(fig_dir / name, caption)
    if not body:
        body = "<p>No sweep figures yet: <code>scaffoldfem plot DIR</code> draws them.</p>"
    return h.section("plots", "Plots", body) + _best_worst(df)


def _best_worst(df: pd.DataFrame, k: int = 3) -> str:
    if RANK_METRIC not in df or "status" not in df:
        return ""
    ok = df[(df["status"] == "done") & pd.to_numeric(df[RANK_METRIC], errors="coerce").notna()]
    if ok.empty:
        return ""
    ok = ok.sort_values(RANK_METRIC, ascending=False)
    cols = [c for c in ("case_id", RANK_METRIC) if c in ok]
    best, worst = ok.head(k), ok.tail(k).iloc[::-1]
    body = ("<h3>Best cases</h3>" + h.table(cols, best[cols].itertuples(index=False))
            + "<h3>Worst cases</h3>" + h.table(cols, worst[cols].itertuples(index=False)))
    return h.section("bestworst", f"Best and worst by {RANK_METRIC}", body)


# -- sensitivity -----------------------------------------------------------------------


def draw_sensitivity(sens: Sensitivity) -> bytes:
    """The bar chart of the indices: a panel per metric, S1 and ST per parameter with
    their bootstrap intervals (PNG bytes)."""
    from matplotlib.figure import Figure  # here: matplotlib only for a Saltelli sweep

    metrics = list(dict.fromkeys(sens.table["metric"]))
    ncol = min(len(metrics), 2)
    nrow = math.ceil(len(metrics) / ncol)
    params = list(dict.fromkeys(sens.table["parameter"]))
    fig = Figure(figsize=(6.2 * ncol, 0.5 + (1.0 + 0.45 * len(params)) * nrow),
                 layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        t = sens.table[sens.table["metric"] == metric].set_index("parameter").loc[params]
        y = range(len(params))
        ax.barh([i - 0.2 for i in y], t["S1"], height=0.38, xerr=t["S1_conf"], capsize=3,
                color="#4c72b0", label="first order S1")
        ax.barh([i + 0.2 for i in y], t["ST"], height=0.38, xerr=t["ST_conf"], capsize=3,
                color="#dd8452", label="total order ST")
        ax.set_yticks(list(y), [p.split(".")[-1].replace("_", " ") for p in params])
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.6)
        lo = min((t["S1"] - t["S1_conf"]).min(), (t["ST"] - t["ST_conf"]).min())
        hi = max((t["S1"] + t["S1_conf"]).max(), (t["ST"] + t["ST_conf"]).max())
        ax.set_xlim(min(-0.05, float(lo) - 0.02), max(1.05, float(hi) + 0.02))
        ax.set_title(metric, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3, lw=0.5)
    for ax in axes[len(metrics):]:
        ax.set_axis_off()
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Sobol' indices, Saltelli N = {sens.base_n} ({sens.cases} cases), "
                 "bars: 95 % bootstrap intervals", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def sensitivity_section(sweep_dir: Path, df: pd.DataFrame, raw: dict[str, Any]) -> str:
    """Sobol' indices (table, bar chart, notes) of a Saltelli sweep; why not, otherwise."""
    method = (raw.get("sample") or {}).get("method")
    if method != "saltelli":
        return h.section("sensitivity", "Which parameters matter", (
            "<p>Sobol' sensitivity indices need a Saltelli design: <code>[sample] method = "
            "\"saltelli\"</code> with <code>n = N·(d + 2)</code> cases.</p>"))
    sens = sweep_sensitivity(sweep_dir, df if not df.empty else None)
    if sens is None:
        return h.section("sensitivity", "Which parameters matter",
                         "<p>Not every case of the Saltelli design has a row yet.</p>")
    body = h.notes(sens.notes)
    if not sens.table.empty:
        png = draw_sensitivity(sens)
        fig_dir = sweep_dir / "figures"
        fig_dir.mkdir(exist_ok=True)
        atomic_write_bytes(fig_dir / SENSITIVITY_PNG, png)
        body += ("<p>S1: the share of a metric's variance due to the parameter alone; ST: "
                 "including its interactions (ST − S1). ± the half-width of the 95 % "
                 "bootstrap interval (SALib). Also in <code>sensitivity.csv</code>.</p>"
                 + h.figure_bytes(png, "image/png", "Sobol' indices by metric",
                                  SENSITIVITY_PNG)
                 + h.table(list(sens.table.columns), sens.table.itertuples(index=False),
                           sortable=True))
    return h.section("sensitivity", "Which parameters matter", body)


def expectations_section(sweep_dir: Path, raw: dict[str, Any]) -> str:
    """Each ``[[expect]]`` of a question sweep against its results (docs/findings.md
    gives the same verdicts)."""
    if not raw.get("expect"):
        return ""
    try:
        lines = verdict_lines(read_question(sweep_dir))
    except (OSError, ValueError, KeyError) as err:  # unfinished or unreadable: say so
        return h.section("expect", "Expected directions",
                         h.notes([f"not judged yet ({type(err).__name__}: {err})"]))
    kinds = ["bad" if "against" in line or "no effect" in line
             else "ok" if "as the review" in line else "warn" for line in lines]
    body = "".join(h.notes([line.replace("*", "")], kind) for line, kind in zip(
        lines, kinds, strict=True))
    return h.section("expect", "Expected directions", body or h.notes(["nothing to judge"]))


def sweep_page(sweep_dir: Path) -> str:
    """The report page of a sweep directory."""
    manifest = _manifest(sweep_dir)
    raw = _sweep_file(sweep_dir)
    df = read_results(sweep_dir)
    sections = [summary_section(sweep_dir, manifest, raw, df),
                expectations_section(sweep_dir, raw), cases_section(df, manifest),
                failures_section(df), plots_section(sweep_dir, df),
                sensitivity_section(sweep_dir, df, raw)]
    nav = [("summary", "Sweep"), *([("expect", "Expected")] if raw.get("expect") else []),
           ("cases", "Cases"), ("failures", "Failures"),
           ("plots", "Plots"), ("bestworst", "Best/worst"), ("sensitivity", "Sensitivity")]
    name = manifest.get("name", sweep_dir.name)
    return h.page(f"scaffoldfem sweep: {name}", f"sweep directory {sweep_dir}", nav,
                  "".join(sections))
