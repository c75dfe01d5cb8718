"""The crossing curve of a run (matplotlib, Agg): P(an axon reached depth d past
the far lesion face) against d, with its 95 % Wilson band, one panel per
population, at the final time and (faded) a few earlier output times.

Input: the table of :meth:`scaffoldfem.axons.outcomes.Outcomes.crossing_table`
or the ``axons_crossing.csv`` a run writes (columns ``t_day, population,
depth_mm, seeded, reached, P, lo, hi``). No DOLFINx here; call on one rank.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Population colours (Okabe-Ito: colour-blind safe).
POPULATION_COLOURS = {"descending": "#0072B2", "ascending": "#D55E00"}
POPULATION_LABELS = {"descending": "descending (rostral → caudal)",
                     "ascending": "ascending (caudal → rostral)"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _day(t: float) -> str:
    """A time label: at most one decimal (8.39624 -> "8.4", 14.0 -> "14")."""
    return f"{round(float(t), 1):g}"


def _earlier_times(times: np.ndarray, n: int) -> list[float]:
    """Up to ``n`` output times before the last, evenly spread (oldest first)."""
    prior = times[:-1]
    if n <= 0 or prior.size == 0:
        return []
    if prior.size <= n:
        return [float(t) for t in prior]
    pick = np.unique(np.round(np.linspace(0, prior.size - 1, n + 1)[1:]).astype(int))
    return [float(prior[i]) for i in pick]


def plot_crossing(table: pd.DataFrame | str | Path, png: Path | str, *,
                  cross_depth: float | None = None, earlier: int = 3,
                  size: tuple[float, float] | None = None, dpi: int = 150,
                  title: str | None = None) -> Path:
    """Draw the crossing curves.

    Args:
        table: The crossing table, or the path of ``axons_crossing.csv``.
        png: Output picture.
        cross_depth: Depth that counts as crossed (mm): a dashed line and the
            crossing fraction with its interval are marked there.
        earlier: Number of earlier output times drawn faded.
        size: Figure size in inches (default 4.6 in per panel × 3.8 in).
        dpi: Resolution.
        title: Figure title (default: "Will axons cross? ... day T").

    Returns:
        ``png``.
    """
    plt = _plt()
    df = pd.read_csv(table) if isinstance(table, str | Path) else table
    df = df[df["seeded"] > 0]
    png = Path(png)
    pops = [p for p in POPULATION_COLOURS if p in set(df["population"])]
    pops += sorted(set(df["population"]) - set(pops))
    n = max(len(pops), 1)
    fig, axes = plt.subplots(1, n, figsize=size or (4.6 * n, 3.8), sharey=True,
                             layout="constrained", squeeze=False)
    t_final = float(df["t_day"].max()) if len(df) else 0.0
    for ax, pop in zip(axes[0], pops, strict=False):
        d = df[df["population"] == pop]
        times = np.unique(d["t_day"].to_numpy(dtype=float))
        colour = POPULATION_COLOURS.get(pop, "#000000")
        for k, t in enumerate(_earlier_times(times, earlier)):
            e = d[d["t_day"] == t].sort_values("depth_mm")
            alpha = 0.25 + 0.35 * (k + 1) / (earlier + 1)
            ax.plot(e["depth_mm"], 100 * e["P"], color=colour, lw=1.0, alpha=alpha,
                    ls=(0, (4, 2)), label=f"day {_day(t)}")
        last = d[d["t_day"] == times[-1]].sort_values("depth_mm")
        nseed = int(last["seeded"].iloc[0])
        ax.fill_between(last["depth_mm"], 100 * last["lo"], 100 * last["hi"], color=colour,
                        alpha=0.22, lw=0, label="95% Wilson interval")
        ax.plot(last["depth_mm"], 100 * last["P"], color=colour, lw=2.2,
                label=f"day {_day(times[-1])} (n = {nseed})")
        if cross_depth is not None:
            ax.axvline(cross_depth, color="#555555", lw=0.9, ls=(0, (5, 3)))
            at = last.iloc[int(np.argmin(np.abs(last["depth_mm"].to_numpy() - cross_depth)))]
            ax.plot([cross_depth], [100 * at["P"]], "o", color=colour, ms=5, zorder=5)
            ax.annotate(f"crossed {100 * at['P']:.1f}%\n[{100 * at['lo']:.1f}–"
                        f"{100 * at['hi']:.1f}%]", (cross_depth, 100 * at["P"]),
                        xytext=(8, 8), textcoords="offset points", fontsize=8,
                        color="#222222")
        ax.set_title(POPULATION_LABELS.get(pop, pop), fontsize=10)
        ax.set_xlabel("depth past the far lesion face (mm)")
        ax.set_xlim(float(d["depth_mm"].min()), float(d["depth_mm"].max()))
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3, lw=0.5)
        ax.legend(fontsize=7, loc="upper right", frameon=False)
    if not pops:
        axes[0][0].text(0.5, 0.5, "no axons", ha="center", va="center",
                        transform=axes[0][0].transAxes)
    axes[0][0].set_ylabel("axons that reached depth d (%)")
    fig.suptitle(title or f"Will axons cross? Crossing curve at day {_day(t_final)}",
                 fontsize=11)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=dpi, facecolor="white")
    plt.close(fig)
    return png
