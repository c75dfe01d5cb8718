"""``scaffoldfem plot DIR``: draw the figures of a run directory from its files.

Call on one process, or on several that share the figures out (``part``). Reads
``fields/final.vtu``, ``fields/sagittal/t_*.vtp``, ``axons.vtp``, ``timeseries.csv``,
``metrics.json`` and ``study.resolved.toml``; a picture whose sources are missing is
skipped with a logged note.
"""

from __future__ import annotations

import json
import logging
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaffoldfem.regions import CELL_TAGS, IMPLANT_REGIONS
from scaffoldfem.units import parse_quantity
from scaffoldfem.viz.axon_paths import Axons
from scaffoldfem.viz.crossing import plot_crossing
from scaffoldfem.viz.cutaway import render_cutaway
from scaffoldfem.viz.host_maps import host_fields, render_host_maps
from scaffoldfem.viz.slices import render_cross_sections, render_growth
from scaffoldfem.viz.style import field_scale, offscreen_pyvista
from scaffoldfem.viz.timeplots import plot_timecourses

log = logging.getLogger(__name__)

#: Files written into ``DIR/figures``.
FIGURES = ("cutaway.png", "cross_sections.png", "host_maps.png", "timecourses.png",
           "axons_crossing.png", "growth.gif")

#: Drawing time of each figure on the medium baseline (s, 2026-12-07), to deal them out.
_COST = {"growth.gif": 10.7, "cutaway.png": 4.8, "timecourses.png": 1.7,
         "cross_sections.png": 1.1, "host_maps.png": 0.6, "axons_crossing.png": 0.25}


def share_figures(parts: int) -> list[frozenset[str]]:
    """:data:`FIGURES` dealt to ``parts`` drawers (ranks): the costliest first, each to
    the least loaded drawer (on 2 ranks: the animation, and all the rest)."""
    load, share = [0.0] * parts, [set() for _ in range(parts)]
    for name in sorted(FIGURES, key=lambda n: -_COST[n]):
        k = load.index(min(load))
        share[k].add(name)
        load[k] += _COST[name]
    return [frozenset(s) for s in share]


@dataclass
class RunInfo:
    """What the pictures need from a run's metadata.

    Attributes:
        species: Growth factors in study order.
        lesion: Rostral and caudal z of the lesion (mm), None if unknown.
        cross_depth: Depth beyond the far lesion face that counts as crossed (mm).
        windows: Therapeutic window (low, high) per species, ng/mL.
        auc: Lesion AUC per species (ng·day/mL), from metrics.json.
        final: Free mass per species at the end of the run (ng), from metrics.json.
        seeded: Axons seeded.
    """

    species: list[str] = field(default_factory=list)
    lesion: tuple[float, float] | None = None
    cross_depth: float | None = None
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    auc: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    seeded: int | None = None

    def main_species(self, available: list[str]) -> str | None:
        """The species to draw: the most abundant at the end (the pictures show the final
        state, where a factor given early may be long gone), else the highest lesion
        AUC, else the first in study order.

        Without a species list (no study, no metrics) the first array of
        ``available`` that is not an enzyme (MMP...) or a VTK bookkeeping array.
        """
        names = [s for s in self.species if s in available] or [
            a for a in available if not a.upper().startswith("MMP") and not a.startswith("vtk")]
        if not names:
            return None
        for score in (self.final, self.auc):
            scored = [s for s in names if score.get(s) is not None]
            if scored and max(score[s] for s in scored) > 0:
                return max(scored, key=lambda s: score[s])
        return names[0]


def _quantity(value: Any, unit: str) -> float | None:
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
            if m.get("final_mass_ng") is not None:
                info.final[name] = float(m["final_mass_ng"])
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


def _t_day(ds, default: float | None = None) -> float | None:
    """The ``t_day`` field data of a dataset (the time it was written at)."""
    return float(np.ravel(ds.field_data["t_day"])[0]) if "t_day" in ds.field_data else default


def _read(path: Path):
    """Read a VTK file; raise ValueError if it holds nothing (PyVista only warns)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = offscreen_pyvista().read(path)
    if ds.n_points == 0:
        why = "; ".join(str(w.message).splitlines()[0] for w in caught) or "no points"
        raise ValueError(f"{path} holds no data ({why})")
    return ds


#: Figures drawn from ``fields/final.vtu``, and those that draw the axons.
_ON_GRID = ("cutaway.png", "cross_sections.png", "host_maps.png")
_WITH_AXONS = ("cutaway.png", "cross_sections.png", "growth.gif")


class _Figures:
    """Collects the files drawn; one failing step is logged and skipped unless strict."""

    def __init__(self, strict: bool, wanted: frozenset[str] = frozenset(FIGURES)):
        self.strict, self.wanted = strict, wanted
        self.written: list[Path] = []

    def want(self, *names: str) -> bool:
        """Whether any of the figures ``names`` is to be drawn here."""
        return any(n in self.wanted for n in names)

    def attempt(self, what: str, fn):
        """Run ``fn``; on failure log (or re-raise when strict) and return None."""
        try:
            res = fn()
        except Exception:
            if self.strict:
                raise
            log.exception("figures: %s failed", what)
            return None
        return res

    def draw(self, name: str, fn) -> None:
        if not self.want(name):
            return
        res = self.attempt(f"drawing {name}", fn)
        if res:
            self.written.extend(res if isinstance(res, list) else [res])


def plot_run(run_dir: Path, *, species: str | None = None, scale: float = 1.0,
             strict: bool = False, part: tuple[int, int] = (0, 1)) -> list[Path]:
    """Draw every figure of the run in ``run_dir`` into ``run_dir/figures``.

    Args:
        run_dir: The run directory.
        species: Growth factor to draw in the 3D and 2D pictures (default: the
            one with the highest lesion AUC, else the first of the study).
        scale: Multiplies the pixel sizes of the pictures (small ones for tests); the
            layout stays the same.
        strict: Re-raise any failure (default: log it and go on, so one broken file
            or picture never costs the others, nor the run that draws them).
        part: (k, n): draw only the k-th of ``n`` shares (:func:`share_figures`), so
            that n processes draw all the figures together, each its own files.

    Returns:
        The files written, in the order of :data:`FIGURES` (MP4 after the GIF).
    """
    run_dir = Path(run_dir)
    out = run_dir / "figures"
    figs = _Figures(strict, share_figures(part[1])[part[0]])
    info = figs.attempt("reading the study and metrics", lambda: read_run_info(run_dir))
    info = info or RunInfo()
    dpi = max(30, int(150 * scale))

    final_path = run_dir / "fields" / "final.vtu"
    grid = figs.attempt(f"reading {final_path}", lambda: _read(final_path)) \
        if final_path.is_file() and (figs.want(*_ON_GRID) or info.lesion is None) else None
    if grid is None:
        if figs.want(*_ON_GRID):
            log.warning("figures: no %s; cut-away and cross-sections skipped", final_path)
    elif info.lesion is None:
        info.lesion = _lesion_from_mesh(grid)

    axons_path = run_dir / "axons.vtp"
    axons = None
    if axons_path.is_file() and figs.want(*_WITH_AXONS):
        axons = figs.attempt(f"reading {axons_path}",
                             lambda: Axons.read(axons_path, info.lesion, info.cross_depth))
    elif figs.want(*_WITH_AXONS):
        log.info("figures: no axons.vtp (axons disabled?); pictures drawn without axons")

    name = species or (info.main_species(list(grid.point_data)) if grid is not None else None)
    if grid is not None and name in grid.point_data and info.lesion is not None:
        sc = field_scale(name, [grid.point_data[name]], info.windows.get(name))
        t_final = _t_day(grid)
        figs.draw("cutaway.png", lambda: render_cutaway(
            grid, axons, sc, out / "cutaway.png", lesion=info.lesion, t_day=t_final,
            size=(int(1600 * scale), int(1000 * scale))))
        lo, hi = info.lesion
        planes = [("rostral face", lo), ("lesion centre", 0.5 * (lo + hi)), ("caudal face", hi)]
        figs.draw("cross_sections.png", lambda: render_cross_sections(
            grid, axons, sc, out / "cross_sections.png", planes=planes, t_day=t_final, dpi=dpi))
    elif grid is not None and figs.want("cutaway.png", "cross_sections.png"):
        log.warning("figures: no field %r or no lesion extent in %s; 3D pictures skipped",
                    name, final_path)
    if grid is not None and host_fields(grid):  # CSPG, ingrowth, cavitation
        figs.draw("host_maps.png", lambda: render_host_maps(
            grid, out / "host_maps.png", lesion=info.lesion, t_day=_t_day(grid), dpi=dpi))

    ts_path = run_dir / "timeseries.csv"
    if ts_path.is_file():
        import pandas as pd

        figs.draw("timecourses.png", lambda: plot_timecourses(
            pd.read_csv(ts_path), info.species, out / "timecourses.png", windows=info.windows,
            seeded=info.seeded, dpi=dpi))
    elif figs.want("timecourses.png"):
        log.warning("figures: no timeseries.csv; time plots skipped")

    cross_path = run_dir / "axons_crossing.csv"
    if cross_path.is_file():
        figs.draw("axons_crossing.png", lambda: plot_crossing(
            cross_path, out / "axons_crossing.png", cross_depth=info.cross_depth, dpi=dpi))
    elif figs.want("axons_crossing.png"):
        log.info("figures: no axons_crossing.csv; crossing curves skipped")

    frames = sorted((run_dir / "fields" / "sagittal").glob("t_*.vtp"))
    if frames:
        figs.draw("growth.gif", lambda: _animate(frames, axons, info, species, out, scale))
    elif figs.want("growth.gif"):
        log.info("figures: no fields/sagittal/t_*.vtp; animation skipped")
    return figs.written


def _animate(frames: list[Path], axons, info: RunInfo, species: str | None, out: Path,
             scale: float) -> list[Path]:
    """The growth animation from the sagittal slices (one colour scale for all frames)."""
    slices = [(_t_day(p, float(i)), p) for i, p in enumerate(_read(f) for f in frames)]
    name = species or info.main_species(list(slices[0][1].point_data))
    if name is None or name not in slices[0][1].point_data:
        log.warning("figures: no field %r on the sagittal slices; animation skipped", name)
        return []
    sc = field_scale(name, [p.point_data[name] for _, p in slices], info.windows.get(name))
    return render_growth(slices, axons, sc, out / "growth.gif", lesion=info.lesion,
                         width_px=max(320, int(1000 * scale)))


__all__ = ["FIGURES", "RunInfo", "plot_run", "read_run_info", "share_figures"]
