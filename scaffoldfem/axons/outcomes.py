"""Answers to "will axons cross?" with their uncertainty, from recorded trajectories.

Pure NumPy / pandas (no MPI, no DOLFINx): call on the rank that holds the
gathered trajectories. Nothing here depends on how the growth cones are
modelled, only on what the tracer recorded.

**Input** (``traj``): the dict of
:meth:`scaffoldfem.axons.records.TracerOutputs.trajectories`, of which these keys
are read:

* per point, sorted by axon and then time: ``t`` (day), ``x`` (m, 3) in mm,
  ``region`` (cell tag of :data:`scaffoldfem.regions.CELL_TAGS` at the point);
* ``offsets`` (n + 1): axon j is points ``offsets[j]:offsets[j + 1]``;
  ``axons`` (n) the axon ids;
* per axon (optional, inferred when absent): ``sense`` (+1 descending, -1
  ascending; else from the side of the lesion mid-plane of its first point),
  ``t_seed`` (else the time of its first point), ``crossed`` (else whether a
  point reached ``cross_depth``), ``t_cross`` (else the first such point's time).

The tracer records a point every ``record_every`` growth steps and at every
change of state, so the crossing point itself (state growing → crossed) is
always a recorded point; depths other than ``cross_depth`` are resolved to
``record_every`` steps.

**Geometry** (:class:`Layout`): lesion faces, ``cross_depth``, channel centres
and radius (:meth:`GeometryConfig.channel_centres`) and the scaffold's
cross-section, from the study.

**Outputs** (:class:`Outcomes`):

* :meth:`Outcomes.metrics` — a dict for ``metrics.json → axons`` (merged into the
  tracer's own metrics): per population the crossing fraction with its 95 %
  Wilson interval, the crossing curve at the final time, the median time to
  cross with its order-statistic 95 % interval and IQR, axons per channel at
  the lesion mid-plane, channel / matrix / outside fractions, in-channel
  alignment and tortuosity, how the axons ended (:meth:`Outcomes.fates`: the
  fraction turned back to the segment end they grew from, with its interval),
  and one-line warnings when an interval is wider than ±5 points;
* :meth:`Outcomes.timeseries` — columns ``crossing_fraction_<pop>``,
  ``crossing_lo_<pop>``, ``crossing_hi_<pop>`` per output time (``t_day``) for
  ``timeseries.csv``;
* :meth:`Outcomes.crossing_table` — the long table ``axons_crossing.csv``
  (``t_day, population, depth_mm, seeded, reached, P, lo, hi``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scaffoldfem.axons.crossing import (  # noqa: F401  (re-exported)
    DEFAULT_DEPTHS,
    POPULATIONS,
    WARN_HALF_WIDTH,
    Z95,
    Layout,
    Paths,
    crossing_fraction_se,
    median_interval,
    precision_warning,
    wilson_interval,
)
from scaffoldfem.regions import cell_tag

# -- outcomes ---------------------------------------------------------------------


def json_float(v: float | None) -> float | None:
    """JSON-safe float (None for NaN / inf / None)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


class Outcomes:
    """Crossing outcomes of one set of trajectories (see the module docstring).

    Args:
        traj: Gathered trajectories (:meth:`TracerOutputs.trajectories` on its root).
        layout: The geometry (:meth:`Layout.from_study`).
        depths: Depths past the far lesion face of the crossing curve (mm);
            ``cross_depth`` is added if missing.
    """

    def __init__(self, traj: Mapping[str, Any], layout: Layout,
                 depths: Sequence[float] = DEFAULT_DEPTHS):
        self.layout = layout
        self.paths = Paths.of(traj, layout)
        d = np.asarray(sorted({float(x) for x in depths} | {float(layout.cross_depth)}))
        self.depths = d
        self._reach = self.paths.first_reach(d, layout)
        self._icross = int(np.flatnonzero(d == float(layout.cross_depth))[0])

    # -- populations --------------------------------------------------------
    def populations(self) -> list[str]:
        """Populations with at least one axon, descending first."""
        return [name for name, s in POPULATIONS.items() if np.any(self.paths.sense == s)]

    def _mask(self, pop: str) -> np.ndarray:
        return self.paths.sense == POPULATIONS[pop]

    def final_time(self) -> float:
        return float(self.paths.t.max()) if len(self.paths.t) else 0.0

    # -- crossing curve -------------------------------------------------------
    def curve(self, pop: str, t: float) -> pd.DataFrame:
        """P(reached depth d past the far face by time t) per depth, with the Wilson
        interval, over the axons of ``pop`` seeded by ``t``."""
        eps = 1e-9 * max(1.0, abs(t))
        m = self._mask(pop) & (self.paths.t_seed <= t + eps)
        n = int(m.sum())
        k = np.sum(self._reach[m] <= t + eps, axis=0)
        lo, hi = wilson_interval(k, np.full(len(k), n))
        with np.errstate(invalid="ignore", divide="ignore"):
            P = np.where(n > 0, k / max(n, 1), np.nan)
        return pd.DataFrame({"depth_mm": self.depths, "seeded": n, "reached": k, "P": P,
                             "lo": np.where(n > 0, lo, np.nan),
                             "hi": np.where(n > 0, hi, np.nan)})

    def crossing_table(self, times: Sequence[float] | None = None) -> pd.DataFrame:
        """The long table for ``axons_crossing.csv``: one row per output time,
        population and depth (``t_day, population, depth_mm, seeded, reached, P, lo, hi``).

        Args:
            times: Output times (day); default the final time only.
        """
        times = [self.final_time()] if times is None else list(times)
        frames = []
        for t in times:
            for pop in self.populations():
                df = self.curve(pop, float(t))
                df.insert(0, "population", pop)
                df.insert(0, "t_day", float(t))
                frames.append(df)
        cols = ["t_day", "population", "depth_mm", "seeded", "reached", "P", "lo", "hi"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)

    def timeseries(self, times: Sequence[float]) -> pd.DataFrame:
        """Columns for ``timeseries.csv`` at the output ``times``: ``t_day`` and, per
        population, ``crossing_fraction_<pop>``, ``crossing_lo_<pop>``,
        ``crossing_hi_<pop>`` (Wilson 95 %; NaN before any axon of it is seeded)."""
        cols: dict[str, list[float]] = {"t_day": [float(t) for t in times]}
        for pop in self.populations():
            f, lo, hi = [], [], []
            for t in times:
                row = self.curve(pop, float(t)).iloc[self._icross]
                f.append(float(row["P"]))
                lo.append(float(row["lo"]))
                hi.append(float(row["hi"]))
            cols[f"crossing_fraction_{pop}"] = f
            cols[f"crossing_lo_{pop}"] = lo
            cols[f"crossing_hi_{pop}"] = hi
        return pd.DataFrame(cols)

    # -- per-population summaries ---------------------------------------------
    def crossing(self, pop: str) -> dict[str, Any]:
        """Final crossing fraction of ``pop`` (the tracer's per-axon flags) with its
        Wilson interval and the precision warning."""
        m = self._mask(pop)
        n, k = int(m.sum()), int(self.paths.crossed[m].sum())
        lo, hi = wilson_interval(k, n)
        return {"seeded": n, "crossed": k, "crossing_fraction": k / n if n else 0.0,
                "crossing_ci95": [lo, hi], "warning": precision_warning(k, n, f"{pop} axons")}

    def time_to_cross(self, pop: str) -> dict[str, Any]:
        """Time from seeding to crossing of the axons of ``pop`` that crossed:
        median with its order-statistic 95 % interval, and the IQR (day)."""
        m = self._mask(pop) & self.paths.crossed
        return median_interval(self.paths.t_cross[m] - self.paths.t_seed[m])

    def mid_scaffold(self, pop: str) -> dict[str, Any]:
        """Where the axons of ``pop`` pass the lesion mid-plane: per channel lumen (by
        the layout's centres and radius), in the scaffold matrix, or outside the
        scaffold (spared tissue, cavity); fractions of those that got there, the
        channel fraction with its Wilson interval."""
        lay = self.layout
        m = self._mask(pop)
        xy, got = self.paths.mid_plane(lay)
        sel = m & got
        p = xy[sel]
        nch = len(lay.channel_centres)
        which = np.full(len(p), -1)
        if nch and len(p):
            c = np.asarray(lay.channel_centres, dtype=float)
            d2 = ((p[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
            best = np.argmin(d2, axis=1)
            inside = d2[np.arange(len(p)), best] <= lay.channel_radius**2
            which = np.where(inside, best, -1)
        in_ch = which >= 0
        if lay.section is not None and len(p):
            in_scaffold = np.asarray(lay.section.signed_distance(p)) >= 0
        else:
            in_scaffold = np.ones(len(p), dtype=bool)
        reached = int(sel.sum())
        nc = int(in_ch.sum())
        nm = int((~in_ch & in_scaffold).sum())
        no = reached - nc - nm
        lo, hi = wilson_interval(nc, reached)

        def frac(k: int) -> float | None:
            return k / reached if reached else None

        return {"seeded": int(m.sum()), "reached": reached,
                "per_channel": np.bincount(which[in_ch], minlength=nch).astype(int).tolist(),
                "channel": nc, "matrix": nm, "outside_scaffold": no,
                "channel_fraction": frac(nc), "channel_ci95": [lo, hi] if reached else None,
                "matrix_fraction": frac(nm), "outside_fraction": frac(no)}

    def in_channels(self, pop: str) -> dict[str, Any]:
        """Shape of the recorded path segments of ``pop`` with both ends in a channel
        lumen (region tag ``channel``): total length, alignment = length-weighted
        mean |cos| with the cord axis (Σ|Δz| / Σ|Δx|) and tortuosity = path length /
        end-to-end distance over each unbroken run of such segments (Σ length /
        Σ chord)."""
        P = self.paths
        ch = P.region == cell_tag("channel")
        same = P.axon[1:] == P.axon[:-1]
        seg = same & ch[1:] & ch[:-1] & self._mask(pop)[P.axon[1:]]
        dx = np.diff(P.x, axis=0)
        ell = np.sqrt(np.einsum("ij,ij->i", dx, dx))
        L = float(ell[seg].sum())
        out: dict[str, Any] = {"length_mm": L, "alignment_cos": None, "tortuosity": None,
                               "runs": 0}
        if L <= 0:
            return out
        out["alignment_cos"] = float(np.abs(dx[seg, 2]).sum() / L)
        # Runs of consecutive channel segments: start where seg turns on.
        on = np.flatnonzero(seg)
        brk = np.r_[True, np.diff(on) > 1]
        run = np.cumsum(brk) - 1
        first = on[brk]
        last = on[np.r_[brk[1:], True]]
        chord = np.linalg.norm(P.x[last + 1] - P.x[first], axis=1)
        run_len = np.bincount(run, weights=ell[on])
        ok = chord > 0
        out["runs"] = len(first)
        out["tortuosity"] = float(run_len[ok].sum() / chord[ok].sum()) if ok.any() else None
        return out

    def fates(self, pop: str) -> dict[str, Any] | None:
        """How the axons of ``pop`` ended: counts by final state, exits split by end
        (``exited_near_end``: at the end of the segment they grew from, i.e. turned
        back; ``exited_far_end``: beyond the lesion), and the turned-back fraction
        with its Wilson interval. None when the final states were not recorded."""
        P = self.paths
        if len(P.final_state) != P.n:
            return None
        m = self._mask(pop)
        n = int(m.sum())
        last = P.x[P.offsets[1:] - 1, 2] if P.n else np.zeros(0)
        near = P.sense * (last - self.layout.z_mid) < 0
        fs = P.final_state
        out: dict[str, Any] = {s: int(np.sum(m & (fs == s)))
                               for s in ("growing", "crossed", "stalled")}
        ex = m & (fs == "exited")
        out["exited_near_end"] = int(np.sum(ex & near))
        out["exited_far_end"] = int(np.sum(ex & ~near))
        k = out["exited_near_end"]
        out["turned_back_fraction"] = k / n if n else 0.0
        out["turned_back_ci95"] = list(wilson_interval(k, n))
        return out

    def population(self, pop: str, t: float | None = None) -> dict[str, Any]:
        """Every summary of ``pop`` (JSON-ready), the crossing curve at ``t``
        (default the final time)."""
        t = self.final_time() if t is None else float(t)
        c = self.crossing(pop)
        tt = self.time_to_cross(pop)
        cv = self.curve(pop, t)
        return {
            **{k: v for k, v in c.items() if k != "warning"},
            "median_time_to_cross_day": tt["median"],
            "time_to_cross_ci95_day": [tt["lo"], tt["hi"]],
            "time_to_cross_iqr_day": [tt["q25"], tt["q75"]],
            "crossing_curve": {"t_day": t, "depth_mm": cv["depth_mm"].tolist(),
                               "P": [json_float(v) for v in cv["P"]],
                               "lo": [json_float(v) for v in cv["lo"]],
                               "hi": [json_float(v) for v in cv["hi"]]},
            "mid_scaffold": self.mid_scaffold(pop),
            "in_channels": self.in_channels(pop),
            "fates": self.fates(pop),
        }

    def warnings(self) -> list[str]:
        """One line per population whose crossing-fraction interval is wider than
        ±5 points."""
        return [w for pop in self.populations() if (w := self.crossing(pop)["warning"])]

    def metrics(self) -> dict[str, Any]:
        """Keys to merge into ``metrics.json → axons``: ``crossing_ci95`` (all
        axons), ``populations`` (per population, :meth:`population`) and
        ``warnings`` (list of lines)."""
        P = self.paths
        n, k = P.n, int(P.crossed.sum())
        lo, hi = wilson_interval(k, n)
        return {"crossing_ci95": [lo, hi],
                "populations": {pop: self.population(pop) for pop in self.populations()},
                "warnings": self.warnings()}
