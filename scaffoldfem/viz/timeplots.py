"""Time plots of a run (matplotlib, Agg backend) from ``timeseries.csv``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

#: Species colours (Okabe-Ito, colour-blind safe), in study order.
SPECIES_COLOURS = ("#0072B2", "#E69F00", "#CC79A7", "#009E73", "#D55E00", "#56B4E9", "#000000")


#: ROS, then the enzymes: colours apart from the growth factors' palette.
INJURY_COLOURS = ("#d62728", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf")
#: The host's response (scar, grafts, ingrowth).
HOST_COLOURS = ("#6a3d9a", "#33a02c", "#b15928", "#1f78b4", "#e31a1c", "#ff7f00")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_timecourses(ts, species: Sequence[str], png: Path, *,
                     windows: Mapping[str, tuple[float, float]] | None = None,
                     seeded: int | None = None, size: tuple[float, float] = (7.5, 8.5),
                     dpi: int = 150) -> Path:
    """Stacked panels over time.

    When the table has them, first the injury's own fields: lesion means of ROS and
    of each enzyme (log axis), and the host's answer (scar CSPG, graft survival,
    ingrowth and cavitation, as fractions); then the lesion-mean concentration per species (log
    axis when it spans decades) with the therapeutic windows shaded; scaffold mass
    fraction and mean modulus on twin axes; axons crossed (and the percentage of
    those seeded).

    Args:
        ts: ``timeseries.csv`` as a pandas DataFrame.
        species: Species names in study order.
        png: Output picture.
        windows: Therapeutic window (low, high) in ng/mL per species.
        seeded: Number of axons seeded (adds a percentage axis to panel c).
        size: Figure size in inches.
        dpi: Resolution.

    Returns:
        ``png``.
    """
    plt = _plt()
    windows = dict(windows or {})
    t = np.asarray(ts["t_day"], dtype=float)
    injury = [c for c in ts.columns if c.startswith("lesion_mean_")
              and c.removeprefix("lesion_mean_").removesuffix("_ng_per_mL") not in species]
    host = _host_columns(ts)
    n = 3 + bool(injury) + bool(host)
    fig, axes = plt.subplots(n, 1, figsize=(size[0], size[1] * n / 3), sharex=True,
                             layout="constrained",
                             height_ratios=[1.0, 1.0, 1.4, 1.0, 1.0][5 - n:])
    if injury:
        _injury(axes[0], ts, t, injury)
    if host:
        _host(axes[int(bool(injury))], ts, t, host)
    ax_c, ax_s, ax_a = axes[-3:]
    _concentrations(ax_c, ts, t, species, windows)
    _scaffold(ax_s, ts, t)
    _axons(ax_a, ts, t, seeded)
    ax_a.set_xlabel("time after implantation (day)")
    ax_a.set_xlim(t.min() if t.size else 0, t.max() if t.size > 1 else 1)
    for ax, letter in zip(axes, "abcde", strict=False):
        ax.text(-0.1, 1.0, f"({letter})", transform=ax.transAxes, fontweight="bold", va="top")
        ax.grid(alpha=0.3, lw=0.5)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=dpi, facecolor="white")
    plt.close(fig)
    return png


def _injury(ax, ts, t, columns) -> None:
    from matplotlib.ticker import FuncFormatter
    for i, col in enumerate(columns):
        y = np.asarray(ts[col], dtype=float)
        name = col.removeprefix("lesion_mean_").removesuffix("_ng_per_mL")
        ax.plot(t, np.maximum(y, 1e-12), lw=2, ls="-" if name == "ROS" else (0, (4, 2)),
                color=INJURY_COLOURS[i % len(INJURY_COLOURS)], label=name)
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(1e-3, ax.get_ylim()[0]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylabel("lesion mean (ng/mL)")
    ax.set_title("The injury: reactive oxygen species and enzymes", loc="left", fontsize=11)
    ax.legend(loc="best", fontsize=8, ncols=3, framealpha=0.85)


def _host_columns(ts) -> dict[str, str]:
    """Label → column of the host's response, as fractions 0-1: scar CSPG level
    (1 = mature scar), graft cells surviving (of the most a cohort held), cavitated
    share of the lesion."""
    out = {"CSPG in the scar (1 = mature)": "cspg_mean_scar"} if "cspg_mean_scar" in ts else {}
    for col in ts.columns:
        if col.startswith("cells_") and col.endswith("_count"):
            name = col.removeprefix("cells_").removesuffix("_count")
            out[f"graft cells '{name}' surviving (of its peak)"] = col
    if "cavitation_lesion_fraction" in ts:
        out["cavitated share of the lesion"] = "cavitation_lesion_fraction"
    if "tissue_fill_mean" in ts:
        out["pore space filled by tissue"] = "tissue_fill_mean"
    return out


def _host(ax, ts, t, columns: Mapping[str, str]) -> None:
    for i, (label, col) in enumerate(columns.items()):
        y = np.asarray(ts[col], dtype=float)
        if col.endswith("_count"):
            y = y / y.max() if y.size and y.max() > 0 else y
        ax.plot(t, y, lw=2, color=HOST_COLOURS[i % len(HOST_COLOURS)], label=label,
                ls="-" if i % 2 == 0 else (0, (4, 2)))
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("fraction")
    ax.set_title("The host's answer: scar, grafts, ingrowth", loc="left", fontsize=11)
    ax.legend(loc="best", fontsize=8, ncols=2, framealpha=0.85)


def _concentrations(ax, ts, t, species, windows) -> None:
    from matplotlib.ticker import FuncFormatter
    series = {s: np.asarray(ts[f"lesion_mean_{s}_ng_per_mL"], dtype=float) for s in species
              if f"lesion_mean_{s}_ng_per_mL" in ts}
    colours = {s: SPECIES_COLOURS[i % len(SPECIES_COLOURS)] for i, s in enumerate(species)}
    # One grey band when every species shares the window; otherwise each window's
    # edges as dashed lines in its species' colour (overlapping tints turn to mud).
    wins = {s: windows[s] for s in series if s in windows}
    if len({tuple(w) for w in wins.values()}) == 1:
        lo, hi = next(iter(wins.values()))
        ax.axhspan(lo, hi, color="#9e9e9e", alpha=0.18, lw=0,
                   label=f"therapeutic window {lo:g}–{hi:g} ng/mL")
    else:
        for s, (lo, hi) in wins.items():
            for k, edge in enumerate((lo, hi)):
                ax.axhline(edge, color=colours[s], ls=(0, (5, 3)), lw=1.0, alpha=0.8,
                           label=f"{s} window {lo:g}–{hi:g}" if k == 0 else None)
    for s, y in series.items():
        ax.plot(t, y, color=colours[s], lw=2, label=s if np.any(y > 0) else f"{s} (zero)")
    pos = np.concatenate([y[y > 0] for y in series.values()]) if series else np.zeros(0)
    ax.set_ylabel("lesion mean (ng/mL)")
    ax.set_title("Growth factors in the lesion", loc="left", fontsize=11)
    if pos.size and pos.max() / pos.min() > 30:
        ax.set_yscale("log")
        lows = [w[0] for w in wins.values()]
        bottom = max(pos.min(), pos.max() * 1e-5)
        if lows:
            bottom = min(bottom, 0.3 * min(lows))
        top = max([pos.max(), *[w[1] for w in wins.values()]]) * 2
        ax.set_ylim(bottom, top)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    elif pos.size:
        ax.set_ylim(bottom=0)
    if series or wins:
        ax.legend(loc="best", fontsize=8, ncols=2, framealpha=0.85)


def _scaffold(ax, ts, t) -> None:
    ax.set_title("Scaffold degradation and stiffness", loc="left", fontsize=11)
    handles = []
    if "scaffold_mass_fraction" in ts:
        (h,) = ax.plot(t, 100 * np.asarray(ts["scaffold_mass_fraction"], dtype=float),
                       color="#0072B2", lw=2, label="polymer mass remaining")
        handles.append(h)
        ax.set_ylim(0, 105)
    ax.set_ylabel("mass remaining (%)", color="#0072B2")
    if "modulus_mean_kPa" in ts:
        twin = ax.twinx()
        (h,) = twin.plot(t, np.asarray(ts["modulus_mean_kPa"], dtype=float), color="#D55E00",
                         lw=2, ls="--", label="mean scaffold modulus")
        handles.append(h)
        twin.set_ylabel("modulus (kPa)", color="#D55E00")
        twin.set_ylim(bottom=0)
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.85)


def _axons(ax, ts, t, seeded) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.set_title("Axons across the lesion", loc="left", fontsize=11)
    if "axons_crossed" not in ts:
        ax.text(0.5, 0.5, "no axons traced", transform=ax.transAxes, ha="center", color="grey")
        return
    n = np.asarray(ts["axons_crossed"], dtype=float)
    # Sampled at output times only: a line between samples, dots on them.
    ax.plot(t, n, color="#1a9e3a", lw=2, marker="o" if len(t) <= 40 else None, ms=3)
    ax.fill_between(t, n, color="#1a9e3a", alpha=0.15, lw=0)
    ax.set_ylabel("axons crossed")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(1.0, float(n.max()) * 1.1 if n.size else 1.0))
    if seeded:
        sec = ax.secondary_yaxis("right", functions=(lambda v: 100 * v / seeded,
                                                     lambda p: p * seeded / 100))
        sec.set_ylabel(f"% of {seeded} seeded")


__all__ = ["SPECIES_COLOURS", "plot_timecourses"]
