"""The carriers of one growth factor in the scaffold (``species.carriers``).

Each carrier holds pools per cell (ng per mL of scaffold; 0 outside it, so the
arrays are cell fields a checkpoint maps to any partition) and advances
them with :mod:`scaffoldfem.physics.carriers`: exact per step with the drivers
frozen (enzymes, polymer mass fraction) for the release laws, whose released
amount becomes a DG0 source of the free factor (mass exact); the ``affinity``
law exchanges with the free factor implicitly: its linear sink ``k_sink c`` and
source enter the transport step, and after the solve the bound pool takes
exactly ``Δt (k_sink c̄ − source)`` per cell, ``c̄`` the cell mean of the new
free factor (the DG0 interpolant of a P1 field is its cell mean), so bound +
free is conserved to round-off.

At t = 0 an affinity carrier is at binding equilibrium with its loading; the
free share is released in the first step (a burst, as a soaked gel's unbound
factor is).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from scaffoldfem.config.carriers import Carrier, enzyme_key
from scaffoldfem.physics.carriers import (
    affinity_coefficients,
    carrier_step,
    carrier_total,
    initial_state,
)


@dataclass
class Pool:
    """One carrier and its pools per scaffold cell."""

    cfg: Carrier
    state: dict[str, np.ndarray]
    pending: np.ndarray  # free share at t = 0, released in the first step
    # affinity: (k_sink, source) of the step being taken, set by CarrierSet.binding
    exchange: tuple[np.ndarray, np.ndarray] | None = None


class CarrierSet:
    """All carriers of one species.

    Args:
        carriers: The species' ``carriers`` list.
        where: Cells that hold the carriers (the scaffold; local, owned and ghost).
        enzyme_masses: Molar mass (kDa) per enzyme name of the study.
    """

    def __init__(self, carriers: Sequence[Carrier], where: np.ndarray,
                 enzyme_masses: Mapping[str, float]):
        self.pools: list[Pool] = []
        self.masses = {enzyme_key(k): v for k, v in enzyme_masses.items()}
        inside = np.asarray(where, dtype=bool).astype(float)
        self.inside = inside  # the binding sites are in the scaffold only
        self.n = len(inside)
        for cfg in carriers:
            state, free = initial_state(cfg, self.n)
            self.pools.append(Pool(cfg, {k: np.asarray(v, float) * inside
                                         for k, v in state.items()},
                                   np.asarray(free, float) * inside))

    @property
    def affinity(self) -> list[Pool]:
        return [p for p in self.pools if p.cfg.law == "affinity"]

    def _drivers(self, enzymes: Mapping[str, np.ndarray], w_old: np.ndarray,
                 w_new: np.ndarray, ros: np.ndarray | None) -> dict:
        enz = {enzyme_key(k): v for k, v in enzymes.items()}
        return {"enzymes": enz, "molar_mass_kda": self.masses, "w_old": w_old, "w_new": w_new,
                "ros": 0.0 if ros is None else ros}

    def release(self, dt: float, enzymes: Mapping[str, np.ndarray], w_old: np.ndarray,
                w_new: np.ndarray, ros: np.ndarray | None = None) -> np.ndarray:
        """Advance every non-affinity pool over ``dt``; the amount released (ng/mL),
        plus any free share still pending from t = 0."""
        drivers = self._drivers(enzymes, w_old, w_new, ros)
        out = np.zeros(len(w_old))
        for p in self.pools:
            out += p.pending
            p.pending = np.zeros_like(p.pending)
            if p.cfg.law == "affinity":
                continue
            p.state, rel = carrier_step(p.cfg, p.state, dt, drivers)
            out += rel
        return out

    def binding(self, dt: float, c_old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Linear sink (1/day) and source (ng/mL/day) of the free factor from every
        affinity carrier over the next step (linearised about ``c_old``); each pool
        keeps its own pair for :meth:`bind`."""
        k = np.zeros(len(c_old))
        s = np.zeros(len(c_old))
        for p in self.affinity:
            cfg = p.cfg  # the sites are in the scaffold only
            p.exchange = affinity_coefficients(p.state["b"], cfg.site_density * self.inside,
                                               cfg.k_on_ml_per_ng_day, cfg.k_off, dt, c_old)
            k += p.exchange[0]
            s += p.exchange[1]
        return k, s

    def bind(self, dt: float, c_new: np.ndarray) -> None:
        """After the transport solve: each affinity pool takes the exchange of the
        coefficients :meth:`binding` gave the solve, ``Δt (k_sink c̄ − source)``."""
        for p in self.affinity:
            k_sink, source = p.exchange
            p.state["b"] = p.state["b"] + dt * (k_sink * c_new - source)
            p.exchange = None

    def overfill(self) -> float:
        """Largest relative excess of bound factor over site capacity (0: none)."""
        worst = 0.0
        for p in self.affinity:
            cap = p.cfg.site_density
            if cap > 0 and len(p.state["b"]):
                worst = max(worst, float(np.max(p.state["b"])) / cap - 1.0)
        return worst

    def total(self) -> np.ndarray:
        """Factor held by all carriers per scaffold cell (ng/mL), pending included."""
        out = None
        for p in self.pools:
            t = carrier_total(p.state) + p.pending
            out = t if out is None else out + t
        return out if out is not None else np.zeros(self.n)

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        """Pools as flat arrays keyed ``<prefix>:<carrier>:<pool>``."""
        out = {}
        for i, p in enumerate(self.pools):
            for k, v in p.state.items():
                out[f"{prefix}:{i}:{k}"] = v.copy()
            out[f"{prefix}:{i}:pending"] = p.pending.copy()
        return out

    def restore(self, prefix: str, arrays: Mapping[str, np.ndarray]) -> None:
        for i, p in enumerate(self.pools):
            for k in p.state:
                p.state[k] = np.asarray(arrays[f"{prefix}:{i}:{k}"], float).copy()
            p.pending = np.asarray(arrays[f"{prefix}:{i}:pending"], float).copy()
