"""Dorsal-horn exposure and the KCC2 pain-risk index, accumulated over the steps.

Fed by :meth:`CoupledModel.exposure_means` (keys ``occupancy_dorsal_horn`` per
species, present only when the dorsal-horn region has volume). Per species over the
evaluation window: the occupancy AUC and the time above
``exposure.dorsal_horn.occupancy_threshold`` (occupancy taken linear within a step).
Along the whole run, from t = 0: the KCC2 down-regulation index ``K``
(:mod:`scaffoldfem.physics.kcc2`) driven by the ligand's dorsal-horn TrkB occupancy;
its final, peak, window-mean and window-peak values, and ``score`` (the window
mean: the relative, uncalibrated pain-risk score beside the benefit metrics).
The state is plain numbers (checkpoint metadata), so a resumed run continues it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scaffoldfem.config.dorsal_horn import DorsalHornConfig
from scaffoldfem.physics.kcc2 import kcc2_step

__all__ = ["DorsalHornRisk", "time_above"]

_OCC = "occupancy_dorsal_horn"


def time_above(o0: float, o1: float, t0: float, t1: float, a: float, b: float,
               threshold: float) -> float:
    """Time in ``[a, b] ∩ [t0, t1]`` with the linear ``o(t)`` (o0 at t0, o1 at t1) at or
    above ``threshold``."""
    a, b = max(a, t0), min(b, t1)
    if b <= a:
        return 0.0
    slope = (o1 - o0) / (t1 - t0) if t1 > t0 else 0.0
    oa, ob = o0 + slope * (a - t0), o0 + slope * (b - t0)
    if oa >= threshold and ob >= threshold:
        return b - a
    if oa < threshold and ob < threshold:
        return 0.0
    tc = a + (threshold - oa) / (ob - oa) * (b - a)  # the crossing
    return b - tc if ob >= threshold else tc - a


class DorsalHornRisk:
    """Running dorsal-horn occupancy metrics and the KCC2 index.

    Args:
        cfg: The ``exposure.dorsal_horn`` section.
        start, end: The evaluation window (day since injury).
    """

    def __init__(self, cfg: DorsalHornConfig, start: float, end: float):
        self.cfg, self.start, self.end = cfg, start, end
        k = cfg.kcc2
        self.kcc2 = {"rate_down": k.rate_down, "rate_recovery": k.rate_recovery,
                     "occupancy_half": k.occupancy_half, "hill": k.hill}
        self.s: dict[str, Any] = {"K": 0.0, "K_peak": 0.0, "K_window_integral": 0.0,
                                  "K_window_peak": 0.0, "seen": False,
                                  "above": {}, "occ_auc": {}, "last": {}}

    def add(self, t: float, h: float, means: Mapping[str, Mapping[str, float]]) -> None:
        """Add the step ``[t − h, t]`` ending at ``means``."""
        s, thr = self.s, self.cfg.occupancy_threshold
        inside = max(0.0, min(t, self.end) - max(t - h, self.start))
        for name, vals in means.items():
            if _OCC not in vals:
                continue
            s["seen"] = True
            o0, o1 = s["last"].get(name, 0.0), vals[_OCC]
            s["above"][name] = s["above"].get(name, 0.0) + time_above(
                o0, o1, t - h, t, self.start, self.end, thr)
            s["occ_auc"][name] = s["occ_auc"].get(name, 0.0) + 0.5 * inside * (o0 + o1)
            if name == self.cfg.ligand:
                k0 = s["K"]
                s["K"] = kcc2_step(k0, o0, o1, h, **self.kcc2)
                s["K_peak"] = max(s["K_peak"], s["K"])
                s["K_window_integral"] += 0.5 * inside * (k0 + s["K"])
                if inside > 0:
                    s["K_window_peak"] = max(s["K_window_peak"], s["K"])
            s["last"][name] = o1

    def species_metrics(self, name: str) -> dict[str, float]:
        """Per species: occupancy AUC (day) and time above the threshold in the window."""
        if name not in self.s["above"]:
            return {}
        return {"occupancy_dorsal_horn_auc_day": self.s["occ_auc"][name],
                "time_above_occupancy_threshold_day": self.s["above"][name],
                "occupancy_threshold": self.cfg.occupancy_threshold}

    def metrics(self, species: list[str]) -> dict[str, Any]:
        """The ``pain_risk`` block of metrics.json (``None`` values: not computable,
        ``reason`` says why)."""
        s, cfg = self.s, self.cfg
        out: dict[str, Any] = {"ligand": cfg.ligand, "calibrated": False,
                               "window_day": [self.start, self.end]}
        reason = (None if s["seen"] and cfg.ligand in s["above"] else
                  "no dorsal-horn region (no grey matter near the lesion)" if not s["seen"] else
                  f"ligand {cfg.ligand!r} is not a species of this study ({', '.join(species)})")
        keys = ("kcc2_index_final", "kcc2_index_peak", "kcc2_index_window_mean",
                "kcc2_index_window_peak", "score")
        if reason is not None:
            return {**out, **dict.fromkeys(keys), "reason": reason}
        mean = s["K_window_integral"] / (self.end - self.start)
        return {**out, "kcc2_index_final": s["K"], "kcc2_index_peak": s["K_peak"],
                "kcc2_index_window_mean": mean, "kcc2_index_window_peak": s["K_window_peak"],
                "score": mean}

    def state(self) -> dict[str, Any]:
        s = self.s
        return {**s, "above": dict(s["above"]), "occ_auc": dict(s["occ_auc"]),
                "last": dict(s["last"])}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.s = {**state, "above": dict(state["above"]), "occ_auc": dict(state["occ_auc"]),
                  "last": dict(state["last"])}
