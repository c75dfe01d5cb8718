"""``scaffoldfem plot DIR`` on a sweep: heatmaps / line plots of the headline metrics.

Reads ``DIR/results.csv`` and ``DIR/sweep.json`` and writes into ``DIR/figures/``:

* ``sweep_<metric>.png`` — per headline metric: a heatmap over the two main
  parameters (grid sweeps; a scatter coloured by the metric for samples), or a
  line plot for a one-parameter sweep;
* ``sweep_overview.png`` — all of them side by side;
* ``sweep_montage.png`` — the PyVista pictures of the best and the worst case (by
  axon crossing fraction) side by side; drawn from the case files with
  :func:`scaffoldfem.viz.plots.plot_run` when the sweep ran with ``output.figures = false``;
* ``sweep_benefit_risk.png`` — axons crossed against the dorsal-horn pain-risk score,
  one point per case (when the results have both).

Matplotlib only through :class:`matplotlib.figure.Figure` (no pyplot state, no
display); call on one rank.
"""

from __future__ import annotations

import logging
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from scaffoldfem.files import read_json_object
from scaffoldfem.sweep.columns import case_label
from scaffoldfem.viz.findings_data import pooled_proportion
from scaffoldfem.viz.plots import plot_run

#: Headline metrics drawn (column prefix → title); species AUCs are added per species.
HEADLINE_PLOTS: dict[str, str] = {
    "axons.crossing_fraction": "axon crossing fraction",
    "mechanics.interface_strain_jump.p95": "interface strain jump (95th percentile)",
    # Benefit-risk: the relative pain-risk score (uncalibrated KCC2 index, run/pain.py).
    "pain_risk.score": "dorsal-horn pain-risk score (relative)",
    "scaffold.mass_remaining_fraction": "scaffold mass remaining",
    # [ingrowth] on: cavitation risk (lesion fraction where the polymer went first).
    "scaffold.ingrowth.cavitation_fraction_max": "cavitation risk (max lesion fraction)",
    "scaffold.ingrowth.filled_fraction_final": "scaffold pores filled by tissue (final)",
}
_AUC = "lesion_auc_ng_day_per_mL"


def _metrics_to_plot(columns: list[str]) -> list[tuple[str, str]]:
    """(column, title): crossing fraction, growth-factor AUCs (study order), strain
    jump, mass remaining — those present in the table."""
    out = [(c, t) for c, t in HEADLINE_PLOTS.items() if c in columns]
    aucs = [(c, f"{c[len('species.'):-len(_AUC) - 1]} lesion AUC (ng·day/mL)")
            for c in columns if c.startswith("species.") and c.endswith("." + _AUC)]
    return out[:1] + aucs + out[1:]


def _param_info(manifest: dict[str, Any], df: Any) -> tuple[list[str], dict[str, str]]:
    """The plotted parameter columns (x[, y]) and a label per column (``manifest``:
    the sweep's ``sweep.json``, {} when absent)."""
    labels: dict[str, str] = {}
    plot_cols: list[str] = []
    params = manifest.get("parameters", [])
    by_key = {p["key"]: p for p in params}
    for p in params:
        unit = f" ({p['unit']})" if p.get("unit") else ""
        labels[p["column"]] = p["key"].split(".")[-1].replace("_", " ") + unit
    for key in manifest.get("plot", []):
        if key in by_key and by_key[key]["column"] in df.columns:
            plot_cols.append(by_key[key]["column"])
    if not plot_cols and "plot" not in manifest:  # no manifest: the first parameters
        plot_cols = [p["column"] for p in params if p["column"] in df.columns][:2]
    return plot_cols, labels


def _case_labels(sweep_dir: Path, manifest: dict[str, Any], case_ids: list[str]
                 ) -> list[str]:
    """Short labels of the cases: an explicit case's name, else its values as written."""
    written = {c["id"]: c.get("values", {}) for c in manifest.get("cases") or []}
    try:
        raw = tomllib.loads((sweep_dir / "sweep.toml").read_text())
    except (OSError, ValueError):
        raw = {}
    named = {str(c["id"]) for c in raw.get("cases") or [] if isinstance(c, dict) and "id" in c}
    return [case_label(cid, written.get(cid, {}), named) for cid in case_ids]


def _is_log(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    return v.size > 1 and v.min() > 0 and v.max() / v.min() > 50


def _fmt(v: float) -> str:
    """Three significant digits, without an exponent between 1e-3 and 1e5."""
    if v == 0 or not np.isfinite(v):
        return f"{v:g}"
    mag = math.floor(math.log10(abs(v)))
    if -3 <= mag < 3:
        return f"{v:.3g}"
    if 3 <= mag < 5:
        return f"{v:.0f}"
    return f"{v:.2e}"


def _tick(v: float) -> str:
    short = f"{v:g}"
    return short if len(short) <= 6 else _fmt(v)


def _heatmap(ax: Any, df: Any, x: str, y: str, col: str, labels: dict[str, str]) -> Any:
    """Mean of ``col`` on the (x, y) grid; NaN cells (failed cases) hatched grey."""
    xs = np.sort(df[x].astype(float).unique())
    ys = np.sort(df[y].astype(float).unique())
    grid = np.full((ys.size, xs.size), np.nan)
    table = df.groupby([y, x])[col].mean()
    for (yv, xv), v in table.items():
        grid[np.searchsorted(ys, float(yv)), np.searchsorted(xs, float(xv))] = v
    ax.set_facecolor("0.85")
    masked = np.ma.masked_invalid(grid)
    im = ax.imshow(masked, origin="lower", aspect="auto", cmap="viridis")
    finite = grid[np.isfinite(grid)]
    mid = 0.5 * (finite.min() + finite.max()) if finite.size else 0.0
    for i in range(ys.size):
        for j in range(xs.size):
            v = grid[i, j]
            text = "n/a" if not np.isfinite(v) else _fmt(v)
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if np.isfinite(v) and v < mid else "black")
    ax.set_xticks(range(xs.size), [_tick(v) for v in xs])
    ax.set_yticks(range(ys.size), [_tick(v) for v in ys])
    ax.set_xlabel(labels.get(x, x))
    ax.set_ylabel(labels.get(y, y))
    return im


def _scatter(ax: Any, df: Any, x: str, y: str, col: str, labels: dict[str, str]) -> Any:
    """Sampled (non-grid) sweeps: points coloured by the metric."""
    xv, yv = df[x].astype(float).to_numpy(), df[y].astype(float).to_numpy()
    cv = df[col].astype(float).to_numpy()
    ok = np.isfinite(cv)
    ax.scatter(xv[~ok], yv[~ok], marker="x", color="0.5", label="n/a")
    sc = ax.scatter(xv[ok], yv[ok], c=cv[ok], cmap="viridis", s=40, edgecolors="k", linewidths=0.3)
    if _is_log(xv):
        ax.set_xscale("log")
    if _is_log(yv):
        ax.set_yscale("log")
    ax.set_xlabel(labels.get(x, x))
    ax.set_ylabel(labels.get(y, y))
    return sc


def _proportions(df: Any, col: str, by: str | None = None
                 ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray] | None:
    """A proportion column such as the crossing fraction from its counts, per case or
    pooled per value of ``by``: (the sorted values of ``by`` or None, the proportions,
    their Wilson 95 % error bars as 2 x n below/above); None for other columns or
    without the counts."""
    groups = ([(None, df.iloc[[i]]) for i in range(len(df))] if by is None
              else list(df.groupby(df[by].astype(float))))
    pooled = [pooled_proportion(rows, col) for _, rows in groups]
    if not pooled or pooled[0] is None:
        return None
    err = np.nan_to_num(np.transpose([v.error_bar() for v in pooled]))  # n = 0: no bar
    return (None if by is None else np.array([g for g, _ in groups]),
            np.array([v.value for v in pooled]), err)


def _line(ax: Any, df: Any, x: str, col: str, labels: dict[str, str]) -> None:
    prop = _proportions(df, col, by=x)
    if prop is None:
        d = df[[x, col]].astype(float).groupby(x)[col].mean().sort_index()
        xs, ys, err = d.index.to_numpy(), d.to_numpy(), None
    else:  # pooled counts: the pooled proportion, with its interval
        xs, ys, err = prop
    ax.errorbar(xs, ys, yerr=err, fmt="o-", color="tab:blue", capsize=3)
    if _is_log(xs):
        ax.set_xscale("log")
    ax.set_xlabel(labels.get(x, x))
    ax.grid(True, alpha=0.3)


def _is_grid(df: Any, x: str, y: str) -> bool:
    nx, ny = df[x].nunique(), df[y].nunique()
    pairs = df[[x, y]].drop_duplicates().shape[0]
    return pairs == nx * ny and nx * ny <= len(df)


def _draw(ax: Any, fig: Any, df: Any, cols: list[str], col: str, title: str,
          labels: dict[str, str]) -> None:
    if len(cols) >= 2:
        x, y = cols[0], cols[1]
        art = (_heatmap if _is_grid(df, x, y) else _scatter)(ax, df, x, y, col, labels)
        fig.colorbar(art, ax=ax, shrink=0.85)
    elif cols:
        _line(ax, df, cols[0], col, labels)
        ax.set_ylabel(title)
    else:  # explicit cases without a numeric parameter: one bar per case
        vals = df[col].astype(float).to_numpy()
        prop = _proportions(df, col)
        ax.bar(range(len(vals)), np.nan_to_num(vals), color="tab:blue",
               yerr=None if prop is None else prop[2], capsize=4, ecolor="0.2")
        ax.set_xticks(range(len(vals)), df.attrs.get("labels") or df["case_id"].tolist(),
                      rotation=60, ha="right", fontsize=6)
    ax.set_title(title, fontsize=10)
    if df[col].astype(float).isna().all():
        ax.text(0.5, 0.5, "not computed", transform=ax.transAxes, ha="center", va="center",
                color="tab:red")


#: Case pictures shown in the montage, in this order when present (scaffoldfem.viz.plots).
_PREFERRED = ["cutaway.png", "cross_sections.png", "timecourses.png"]


def _draw_case_figures(case_dir: Path) -> None:
    """Draw a case's pictures from its files when the sweep ran with figures off."""
    if not (case_dir / "fields").is_dir():
        return  # nothing to draw from
    try:
        plot_run(case_dir, scale=0.6)
    except Exception as err:  # a montage is a bonus: never fail the sweep plots for it
        logging.getLogger(__name__).warning("montage: cannot draw %s (%s)", case_dir.name, err)


def _montage(sweep_dir: Path, df: Any, metric: str, out: Path) -> Path | None:
    """Best and worst case pictures side by side (PNG figures the cases drew)."""
    import imageio.v3 as iio
    from matplotlib.figure import Figure

    ok = df[df["status"] == "done"]
    ok = ok[np.isfinite(ok[metric].astype(float))] if metric in ok else ok.iloc[0:0]
    if len(ok) < 2:
        return None
    best = ok.loc[ok[metric].astype(float).idxmax()]
    worst = ok.loc[ok[metric].astype(float).idxmin()]
    pics = {}
    for tag, row in (("best", best), ("worst", worst)):
        case_dir = sweep_dir / "cases" / str(row["case_id"])
        if not list((case_dir / "figures").glob("*.png")):
            _draw_case_figures(case_dir)
        pics[tag] = {p.name: p for p in sorted((case_dir / "figures").glob("*.png"))}
    common = [n for n in pics["best"] if n in pics["worst"]]
    names = sorted(common, key=lambda n: (_PREFERRED.index(n) if n in _PREFERRED else 99, n))[:3]
    if not names:
        return None
    fig = Figure(figsize=(4 * len(names), 7), layout="constrained")
    axes = fig.subplots(2, len(names), squeeze=False)
    for i, (tag, row) in enumerate((("best", best), ("worst", worst))):
        for j, name in enumerate(names):
            ax = axes[i, j]
            ax.imshow(iio.imread(pics[tag][name]))
            ax.set_axis_off()
            ax.set_title(f"{tag}: {row['case_id']}\n{metric} = {_fmt(float(row[metric]))} — {name}",
                         fontsize=7)
    fig.savefig(out, dpi=120)
    return out


def plot_sweep(dir: Path) -> list[Path]:
    """Draw the sweep figures of ``dir`` into ``dir/figures``.

    Args:
        dir: A sweep directory (with ``results.csv``).

    Returns:
        The PNG files written.
    """
    import pandas as pd
    from matplotlib.figure import Figure

    sweep_dir = Path(dir)
    df = pd.read_csv(sweep_dir / "results.csv")
    manifest = read_json_object(sweep_dir / "sweep.json")  # {} if absent
    df.attrs["labels"] = _case_labels(sweep_dir, manifest, df["case_id"].tolist())
    cols, labels = _param_info(manifest, df)
    cols = [c for c in cols if pd.api.types.is_numeric_dtype(df[c])]
    metrics = _metrics_to_plot(list(df.columns))
    fig_dir = sweep_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    written: list[Path] = []
    for col, title in metrics:
        fig = Figure(figsize=(5.2, 4.2), layout="constrained")
        _draw(fig.add_subplot(), fig, df, cols, col, title, labels)
        path = fig_dir / f"sweep_{col.replace('.', '_')}.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    if metrics:
        n = len(metrics)
        ncol = min(n, 3)
        nrow = math.ceil(n / ncol)
        fig = Figure(figsize=(5 * ncol, 4 * nrow), layout="constrained")
        axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
        for ax, (col, title) in zip(axes, metrics, strict=False):
            _draw(ax, fig, df, cols, col, title, labels)
        for ax in axes[n:]:
            ax.set_axis_off()
        fig.suptitle(f"sweep {manifest.get('name') or sweep_dir.name}: {len(df)} cases "
                     f"({int((df['status'] == 'done').sum())} done)", fontsize=12)
        path = fig_dir / "sweep_overview.png"
        fig.savefig(path, dpi=100)
        written.append(path)
    montage = _montage(sweep_dir, df, "axons.crossing_fraction", fig_dir / "sweep_montage.png")
    if montage is not None:
        written.append(montage)
    risk = _benefit_risk(df, cols, labels, fig_dir / "sweep_benefit_risk.png")
    if risk is not None:
        written.append(risk)
    return written


def _benefit_risk(df: Any, cols: list[str], labels: dict[str, str], path: Path) -> Path | None:
    """Crossing fraction (benefit) against the dorsal-horn pain-risk score, one point
    per case coloured by the first swept parameter: a design's trade-off in one plot."""
    from matplotlib.figure import Figure

    need = ("axons.crossing_fraction", "pain_risk.score")
    if not all(c in df for c in need):
        return None
    done = df[(df["status"] == "done") & df[list(need)].notna().all(axis=1)]
    if done.empty:
        return None
    fig = Figure(figsize=(5.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    x, y = done["pain_risk.score"], 100 * done["axons.crossing_fraction"]
    if cols:
        pts = ax.scatter(x, y, c=done[cols[0]], cmap="viridis", s=45, edgecolors="black",
                         linewidths=0.5)
        fig.colorbar(pts, ax=ax, label=labels.get(cols[0], cols[0]))
    else:  # no numeric parameter to colour by: name each point
        ax.scatter(x, y, s=45, edgecolors="black", linewidths=0.5)
        names = dict(zip(df["case_id"], df.attrs.get("labels") or df["case_id"], strict=True))
        for cid, xi, yi in zip(done["case_id"], x, y, strict=True):
            ax.annotate(names[cid], (xi, yi), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")
    ax.set_xlabel("dorsal-horn pain-risk score (KCC2 index, relative, uncalibrated)")
    ax.set_ylabel("axons crossed (%)")
    ax.set_title("Benefit and risk of each design", loc="left", fontsize=11)
    ax.grid(alpha=0.3, lw=0.5)
    fig.savefig(path, dpi=110)
    return path
