"""``scaffoldfem plot DIR``: draw the figures of a run directory from its files.

Call on one rank (rank 0). Reads ``fields/final.vtu``, ``fields/sagittal/t_*.vtp``,
``axons.vtp``, ``timeseries.csv``, ``metrics.json`` and ``study.resolved.toml``;
a picture whose sources are missing is skipped with a logged note.
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaffoldfem.regions import CELL_TAGS, IMPLANT_REGIONS

log = logging.getLogger(__name__)

#: Files written into ``DIR/figures``.
FIGURES = ("cutaway.png", "cross_sections.png", "timecourses.png", "growth.gif")


@dataclass
class RunInfo:
    """What the pictures need from a run's metadata.

    Attributes:
        species: Growth factors in study order.
        lesion: Rostral and caudal z of the lesion (mm), None if unknown.
        cross_depth: Depth beyond the far lesion face that counts as crossed (mm).
        windows: Therapeutic window (low, high) per species, ng/mL.
        auc: Lesion AUC per species (ng·day/mL), from metrics.json.
        seeded: Axons seeded.
    """

    species: list[str] = field(default_factory=list)
    lesion: tuple[float, float] | None = None
    cross_depth: float | None = None
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    auc: dict[str, float] = field(default_factory=dict)
    seeded: int | None = None

    def main_species(self, available: list[str]) -> str | None:
        """The species to draw: highest lesion AUC, else the first in study order."""
        names = [s for s in self.species if s in available] or list(available)
        if not names:
            return None
        scored = [s for s in names if self.auc.get(s) is not None]
        return max(scored, key=lambda s: self.auc[s]) if scored else names[0]


def _quantity(value: Any, unit: str) -> float | None:
    from scaffoldfem.units import parse_quantity

    try:
        return float(parse_quantity(value, unit))
    except Exception:
        return None


def read_run_info(run_dir: Path) -> RunInfo:
    """Gather :class:`RunInfo` from ``study.resolved.toml`` and ``metrics.json``."""
    info = RunInfo()
    study_path = run_dir / "study.resolved.toml"
    if study_path.is_file():
        study = tomllib.loads(study_path.read_text())
        les = study.get("geometry", {}).get("lesion", {})
        centre = _quantity(les.get("center", "0 mm"), "mm")
        length = _quantity(les.get("length"), "mm")
        if centre is not None and length is not None:
            info.lesion = (centre - length / 2, centre + length / 2)
        info.cross_depth = _quantity(study.get("axons", {}).get("cross_depth"), "mm")
        for sp in study.get("species", []):
            info.species.append(sp["name"])
            lo = _quantity(sp.get("window_low"), "ng/mL")
            hi = _quantity(sp.get("window_high"), "ng/mL")
            if lo is not None and hi is not None:
                info.windows[sp["name"]] = (lo, hi)
    else:
        log.info("figures: no study.resolved.toml in %s; lesion taken from the mesh", run_dir)
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        for name, m in metrics.get("species", {}).items():
            if name not in info.species:
                info.species.append(name)
            if m.get("window_ng_per_mL") is not None:
                info.windows[name] = tuple(float(v) for v in m["window_ng_per_mL"])
            if m.get("lesion_auc_ng_day_per_mL") is not None:
                info.auc[name] = float(m["lesion_auc_ng_day_per_mL"])
        seeded = metrics.get("axons", {}).get("seeded")
        info.seeded = int(seeded) if seeded is not None else None
    return info


def _lesion_from_mesh(grid) -> tuple[float, float] | None:
    """z-extent of the implant and cavity cells (when the study file is missing)."""
    tags = [CELL_TAGS[n] for n in (*IMPLANT_REGIONS, "cavity")]
    sel = np.flatnonzero(np.isin(np.asarray(grid.cell_data["region"]), tags))
    if sel.size == 0:
        return None
    b = grid.extract_cells(sel).bounds
    return float(b[4]), float(b[5])


def _t_day(ds) -> float | None:
    return float(np.ravel(ds.field_data["t_day"])[0]) if "t_day" in ds.field_data else None


def plot_run(run_dir: Path, *, species: str | None = None, scale: float = 1.0,
             strict: bool = False) -> list[Path]:
    """Draw every figure of the run in ``run_dir`` into ``run_dir/figures``.

    Args:
        run_dir: The run directory.
        species: Growth factor to draw in the 3D and 2D pictures (default: the
            one with the highest lesion AUC, else the first).
        scale: Multiplies the pixel sizes of the pictures (small ones for tests); the
            layout stays the same.
        strict: Re-raise a failure in drawing a picture (default: log it and go on,
            so one broken picture never costs the others).

    Returns:
        The files written, in the order of :data:`FIGURES` (MP4 after the GIF).
    """
    import pyvista as pv

    pv.OFF_SCREEN = True
    run_dir = Path(run_dir)
    out = run_dir / "figures"
    info = read_run_info(run_dir)
    written: list[Path] = []

    def attempt(name: str, fn) -> None:
        try:
            res = fn()
        except Exception:
            if strict:
                raise
            log.exception("figures: drawing %s failed", name)
            return
        if res:
            written.extend(res if isinstance(res, list) else [res])

    final_path = run_dir / "fields" / "final.vtu"
    grid = pv.read(final_path) if final_path.is_file() else None
    if grid is None:
        log.warning("figures: no %s; cut-away and cross-sections skipped", final_path)
    elif info.lesion is None:
        info.lesion = _lesion_from_mesh(grid)
    frames = sorted((run_dir / "fields" / "sagittal").glob("t_*.vtp"))
    axons_path = run_dir / "axons.vtp"
    axons = None
    if axons_path.is_file():
        from scaffoldfem.pictures import Axons

        axons = Axons.read(axons_path, info.lesion, info.cross_depth)
    else:
        log.info("figures: no axons.vtp (axons disabled?); pictures drawn without axons")

    name = species or info.main_species(list(grid.point_data.keys()) if grid is not None else [])
    if grid is not None and name is not None and info.lesion is not None:
        from scaffoldfem import pictures as P
        from scaffoldfem import slices as S

        sc = P.field_scale(name, [grid.point_data[name]], info.windows.get(name))
        t_final = _t_day(grid)
        attempt("cutaway.png", lambda: P.render_cutaway(
            grid, axons, sc, out / "cutaway.png", lesion=info.lesion, t_day=t_final,
            size=(int(1600 * scale), int(1000 * scale))))
        lo, hi = info.lesion
        planes = [("rostral face", lo), ("lesion centre", 0.5 * (lo + hi)), ("caudal face", hi)]
        attempt("cross_sections.png", lambda: S.render_cross_sections(
            grid, axons, sc, out / "cross_sections.png", planes=planes, t_day=t_final,
            dpi=max(30, int(150 * scale))))
    elif grid is not None:
        log.warning("figures: no growth-factor field or lesion extent; 3D pictures skipped")

    ts_path = run_dir / "timeseries.csv"
    if ts_path.is_file():
        import pandas as pd

        from scaffoldfem.timeplots import plot_timecourses

        ts = pd.read_csv(ts_path)
        attempt("timecourses.png", lambda: plot_timecourses(
            ts, info.species, out / "timecourses.png", windows=info.windows, seeded=info.seeded,
            dpi=max(30, int(150 * scale))))
    else:
        log.warning("figures: no timeseries.csv; time plots skipped")

    if frames:
        from scaffoldfem import pictures as P
        from scaffoldfem import slices as S

        slices = [(t if (t := _t_day(p)) is not None else float(i), p)
                  for i, p in enumerate(pv.read(f) for f in frames)]
        name = species or info.main_species(list(slices[0][1].point_data.keys()))
        if name is not None:
            sc = P.field_scale(name, [p.point_data[name] for _, p in slices],
                               info.windows.get(name))
            attempt("growth.gif", lambda: S.render_growth(
                slices, axons, sc, out / "growth.gif", lesion=info.lesion,
                width_px=max(320, int(1000 * scale))))
    else:
        log.info("figures: no fields/sagittal/t_*.vtp; animation skipped")
    return written


__all__ = ["FIGURES", "RunInfo", "plot_run", "read_run_info"]
