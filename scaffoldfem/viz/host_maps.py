"""The host's answer on a sagittal section: CSPG scar, tissue ingrowth, cavitation.

One panel per field the run wrote (``cspg``, ``tissue_fill``, ``cavitation``), each on
the midline sagittal plane (x = 0; u = z along the cord, v = y dorsal up), with the
region borders. The fields are per cell (DG0); they are averaged to the points for
drawing, so a one-cell feature shows as a soft spot, not a hard square.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaffoldfem.viz.slices import _draw_slice, slice_2d
from scaffoldfem.viz.style import FieldScale, agg_pyplot

#: Field → (title, colour-bar label, colormap). Levels are fractions 0-1, except CSPG
#: (1 = mature scar; its capacity can exceed 1).
HOST_FIELDS: dict[str, tuple[str, str, str]] = {
    "cspg": ("CSPG level", "CSPG (1 = mature scar)", "magma"),
    "tissue_fill": ("pore space filled by host tissue", "filled fraction", "viridis"),
    "cavitation": ("cavitated: polymer gone before tissue filled it", "cavitated (0/1)",
                   "Reds"),
}


def host_fields(grid) -> list[str]:
    """The host-response fields present in ``grid`` (cell or point data)."""
    return [f for f in HOST_FIELDS if f in grid.cell_data or f in grid.point_data]


def render_host_maps(grid, png: Path, *, lesion: tuple[float, float] | None = None,
                     t_day: float | None = None, dpi: int = 150) -> Path | None:
    """Draw the host-response fields of ``grid`` on the midline sagittal section.

    Args:
        grid: Final fields (``fields/final.vtu``) with cell data ``region``.
        png: Output picture.
        lesion: (z0, z1) of the lesion faces, drawn as dashed lines.
        t_day: Time of the fields, for the title.
        dpi: Resolution.

    Returns:
        ``png``, or None when the run wrote none of the fields.
    """
    names = host_fields(grid)
    if not names:
        return None
    plt = agg_pyplot()
    # Per-cell values to the points (the slice interpolates point data), regions kept.
    pts = grid.cell_data_to_point_data(pass_cell_data=True)
    lo, hi = np.array(grid.bounds[0::2]), np.array(grid.bounds[1::2])
    fig, axes = plt.subplots(len(names), 1, figsize=(9.0, 2.3 * len(names) + 0.6),
                             squeeze=False, layout="constrained")
    for ax, name in zip(axes[:, 0], names, strict=True):
        title, label, cmap = HOST_FIELDS[name]
        sl = slice_2d(pts, name, "x", (1e-3 * (hi[0] - lo[0]), 0.0, 0.0))
        top = max(1.0, float(sl.values.max()) if len(sl.values) else 1.0)
        m = _draw_slice(ax, sl, FieldScale(name, 0.0, top, log=False, cmap=cmap))
        if m is not None:
            fig.colorbar(m, ax=ax, label=label, shrink=0.9, pad=0.01)
        if lesion is not None:
            for z in lesion:
                ax.axvline(z, color="white", ls=(0, (4, 3)), lw=0.8)
        rng = f"{sl.values.min():.2g}–{sl.values.max():.2g}" if len(sl.values) else "empty"
        ax.set_title(f"{title} (range {rng})", loc="left", fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlim(lo[2], hi[2])
        ax.set_ylim(lo[1] - 0.05, hi[1] + 0.05)
        ax.set_ylabel("y, dorsal (mm)")
    axes[-1, 0].set_xlabel("z, along the cord (mm; rostral at left)")
    when = f" at day {t_day:g}" if t_day is not None else ""
    fig.suptitle(f"The host's answer{when}, midline sagittal section", fontsize=12)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=dpi, facecolor="white")
    plt.close(fig)
    return png


__all__ = ["HOST_FIELDS", "host_fields", "render_host_maps"]
