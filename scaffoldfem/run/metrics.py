"""Exposure metrics accumulated over the steps, and the final metrics.json summary.

Per species (docs/model.md §10): lesion AUC ``∫ c̄_L dt`` (trapezoid over the
steps), peak lesion mean, time in the therapeutic window (half a step when one end
of a step is inside) and the grey-matter AUC, from t = 0; and over the evaluation
window (``[exposure]``, default weeks 2-8, :class:`WindowExposure`): AUC, time in
the therapeutic window and mean receptor occupancy over the lesion and the near
host, and the lesion AUC of ROS (oxidative burden) and of each enzyme; with
``exposure.dorsal_horn`` also the dorsal-horn AUC and occupancy (a fixed band around
the lesion, independent of the cord length) and the KCC2 pain-risk index
(:class:`scaffoldfem.run.pain.DorsalHornRisk`, metrics.json ``pain_risk``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scaffoldfem.config.dorsal_horn import DorsalHornConfig
from scaffoldfem.config.physics import Species
from scaffoldfem.model.coupled import CoupledModel
from scaffoldfem.run.pain import DorsalHornRisk

#: Warn when a cumulative balance is off by more than this (an identity of the scheme).
BALANCE_WARNING = 1e-6


class Exposure:
    """Running exposure of every species.

    Args:
        species: The ``species`` study section (names and windows).
    """

    def __init__(self, species: Sequence[Species]):
        self.windows = {s.name: (s.window_low, s.window_high) for s in species}
        self.acc = {
            s.name: {
                "auc": 0.0,
                "peak": 0.0,
                "in_window": 0.0,
                "grey_auc": 0.0,
                "last": 0.0,
                "last_grey": 0.0,
            }
            for s in species
        }

    def add(self, h: float, means: Mapping[str, tuple[float, float]]) -> None:
        """Add a step of length ``h`` ending at the lesion/grey means ``means``."""
        for name, (les, gry) in means.items():
            a = self.acc[name]
            lo, hi = self.windows[name]
            a["auc"] += 0.5 * h * (a["last"] + les)
            a["grey_auc"] += 0.5 * h * (a["last_grey"] + gry)
            a["peak"] = max(a["peak"], les)
            inside = [lo <= v <= hi for v in (a["last"], les)]
            a["in_window"] += h * 0.5 * sum(inside)
            a["last"], a["last_grey"] = les, gry

    def metrics(self, name: str) -> dict[str, Any]:
        a = self.acc[name]
        return {
            "lesion_auc_ng_day_per_mL": a["auc"],
            "peak_lesion_mean_ng_per_mL": a["peak"],
            "time_in_window_day": a["in_window"],
            "grey_matter_auc_ng_day_per_mL": a["grey_auc"],
            "window_ng_per_mL": list(self.windows[name]),
        }

    def state(self) -> dict[str, dict[str, float]]:
        return {k: dict(v) for k, v in self.acc.items()}

    def restore(self, acc: Mapping[str, Mapping[str, float]]) -> None:
        self.acc = {k: dict(v) for k, v in acc.items()}


class WindowExposure:
    """Exposure over the evaluation window ``[start, end]`` (day since injury): each
    step adds the trapezoid of its end values times the fraction of the step inside.

    Args:
        windows: Therapeutic window (low, high) per species (ng/mL).
        start, end: The evaluation window.
        dorsal: The ``exposure.dorsal_horn`` section (None: no pain-risk index).
    """

    def __init__(self, windows: Mapping[str, tuple[float, float]], start: float, end: float,
                 dorsal: DorsalHornConfig | None = None):
        self.windows, self.start, self.end = dict(windows), start, end
        self.acc: dict[str, dict[str, float]] = {}
        self.last: dict[str, dict[str, float]] = {}
        self.dorsal = DorsalHornRisk(dorsal, start, end) if dorsal is not None else None

    def add(self, t: float, h: float, means: Mapping[str, Mapping[str, float]]) -> None:
        """Add the step ``[t − h, t]`` ending at ``means`` (:meth:`CoupledModel.exposure_means`)."""
        inside = max(0.0, min(t, self.end) - max(t - h, self.start))
        for name, vals in means.items():
            prev = self.last.get(name, dict.fromkeys(vals, 0.0))
            acc = self.acc.setdefault(name, {"time_in_window_day": 0.0})
            for k, v in vals.items():
                acc[k] = acc.get(k, 0.0) + 0.5 * inside * (prev.get(k, 0.0) + v)
            if name in self.windows:
                lo, hi = self.windows[name]
                hits = sum(lo <= x <= hi for x in (prev.get("lesion", 0.0), vals["lesion"]))
                acc["time_in_window_day"] += 0.5 * inside * hits
            self.last[name] = dict(vals)
        if self.dorsal is not None:
            self.dorsal.add(t, h, means)

    def metrics(self, name: str) -> dict[str, Any]:
        """AUCs (ng·day/mL), mean occupancies over the window, time in the window."""
        a = self.acc.get(name, {})
        span = self.end - self.start
        out: dict[str, Any] = {"window_day": [self.start, self.end]}
        for k, v in a.items():
            if k.startswith("occupancy_"):
                out[f"mean_{k}"] = v / span
            elif k == "time_in_window_day":
                if name in self.windows:
                    out[k] = v
            else:
                out[f"{k}_auc_ng_day_per_mL"] = v
        if self.dorsal is not None:
            out.update(self.dorsal.species_metrics(name))
        return out

    def state(self) -> dict[str, Any]:
        out = {"acc": {k: dict(v) for k, v in self.acc.items()},
               "last": {k: dict(v) for k, v in self.last.items()}}
        if self.dorsal is not None:
            out["dorsal"] = self.dorsal.state()
        return out

    def restore(self, state: Mapping[str, Any]) -> None:
        self.acc = {k: dict(v) for k, v in state["acc"].items()}
        self.last = {k: dict(v) for k, v in state["last"].items()}
        if self.dorsal is not None and "dorsal" in state:  # absent: an older checkpoint
            self.dorsal.restore(state["dorsal"])


def run_metrics(
    model: CoupledModel, exposure: Exposure, *, ranks: int, steps: int, tracer: Any,
    window: WindowExposure | None = None,
) -> dict[str, Any]:
    """The final summary (identical on every rank; timings are added by the writer)."""
    out = model.metrics()
    for name, sp in out["species"].items():
        sp.update(exposure.metrics(name))
        if window is not None:
            sp["evaluation_window"] = window.metrics(name)
    if window is not None:
        out["fields"] = {name: {"evaluation_window": window.metrics(name)}
                         for name in window.acc if name not in out["species"]}
        if window.dorsal is not None:
            out["pain_risk"] = window.dorsal.metrics(list(out["species"]))
            out["pain_risk"]["dorsal_horn"] = model.regions.dorsal_horn_summary()
    out["mesh"]["ranks"] = ranks
    out["time"] = {"duration_day": model.t, "steps": steps}
    if tracer is not None:
        out["axons"] = {**tracer.metrics(), **tracer.graft_metrics()}
    return out


def balance_warnings(metrics: Mapping[str, Any]) -> list[str]:
    """A line per species whose cumulative mass balance is off (a bug, not physics)."""
    return [
        f"warning: {name} mass balance error {sp['mass_balance_rel_error']:.2e}"
        for name, sp in metrics["species"].items()
        if sp["mass_balance_rel_error"] > BALANCE_WARNING
    ]
