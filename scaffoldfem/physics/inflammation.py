"""The injury's inflammatory timeline as pure functions of time (day): cell presence,
ROS and enzyme production, and the well-mixed (0-D) concentrations they give.

Presence p(t) (1 = peak) follows :mod:`scaffoldfem.config.inflammation`; the sources
are spatially uniform in their regions (ng/mL/day):

    S_ROS(t) = P_n p_n(t) + P_m p_m(t),      S_enzyme(t) = A p_driver(t)

and the 0-D balance ``dc/dt = S(t) − k c`` with ``k = ln 2/t½ (+ k_TIMP)`` is solved
exactly for a source linear over each step (:func:`well_mixed`). Everything takes
floats or NumPy arrays of times and returns the same shape.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scaffoldfem.config.inflammation import (
    CellCourse,
    EnzymeEntry,
    InflammationConfig,
    Population,
    ROSConfig,
    TreatmentConfig,
)
from scaffoldfem.physics.materials import half_life_to_rate

__all__ = [
    "auc",
    "course_presence",
    "enzyme_decay_rate",
    "enzyme_source_rate",
    "gamma_persistent",
    "nanomolar",
    "peak_time",
    "presence",
    "ros_decay_length",
    "ros_decay_rate",
    "ros_source_rate",
    "treatment_factor",
    "well_mixed",
    "well_mixed_enzyme",
    "well_mixed_ros",
]

Times = float | NDArray[np.float64]


def _out(values: NDArray[np.float64], scalar: bool) -> Times:
    """A float for a scalar time, else the array."""
    return float(values) if scalar else values


def gamma_persistent(t: ArrayLike, peak: float, shape: float, persistent: float) -> Times:
    """Gamma-shaped peak (1 at ``peak``) that decays to ``persistent`` after it.

    ``g = (t/t_p)^(s−1) exp(−(s−1)(t/t_p − 1))`` for ``t ≤ t_p`` (0 for ``t ≤ 0``) and
    ``f + (1 − f) g`` after; continuous, maximal at ``t_p``.

    Args:
        t: Time(s) after injury (day).
        peak: Peak day ``t_p`` > 0.
        shape: ``s`` > 1 (larger: narrower peak).
        persistent: ``f`` in [0, 1): the level approached for ``t → ∞``.
    """
    tt = np.asarray(t, dtype=float)
    x = np.maximum(tt / peak, 1e-300)
    g = np.where(tt > 0.0, np.exp((shape - 1.0) * (np.log(x) - x + 1.0)), 0.0)
    return _out(np.where(tt > peak, persistent + (1.0 - persistent) * g, g), tt.ndim == 0)


def course_presence(t: ArrayLike, course: CellCourse) -> Times:
    """Presence of one population without treatment (gamma profile or table)."""
    if course.profile == "table":
        tt = np.asarray(t, dtype=float)
        days, values = zip(*course.table, strict=True)
        return _out(np.interp(tt, days, values, left=0.0, right=values[-1]), tt.ndim == 0)
    return gamma_persistent(t, course.peak_day, course.shape, course.persistent_fraction)


def treatment_factor(t: ArrayLike, treatment: TreatmentConfig, population: Population) -> Times:
    """``1 − reduction`` on ``[start, end)`` for neutrophils and macrophages, else 1."""
    tt = np.asarray(t, dtype=float)
    reduction = {"neutrophils": treatment.neutrophil_reduction,
                 "macrophages": treatment.macrophage_reduction}.get(population, 0.0)
    if not treatment.enabled or reduction == 0.0:
        return _out(np.ones_like(tt), tt.ndim == 0)
    on = (tt >= treatment.start) & (tt < treatment.end)
    return _out(np.where(on, 1.0 - reduction, 1.0), tt.ndim == 0)


def presence(t: ArrayLike, timeline: InflammationConfig, population: Population) -> Times:
    """Presence (1 = untreated peak) of ``population`` at ``t`` with the treatment applied.

    Args:
        t: Time(s) after injury (day).
        timeline: The ``[inflammation]`` section.
        population: ``"neutrophils"``, ``"macrophages"`` or ``"astrocytes"``.
    """
    p = course_presence(t, timeline.course(population))
    return p * treatment_factor(t, timeline.treatment, population)


def enzyme_source_rate(t: ArrayLike, entry: EnzymeEntry, timeline: InflammationConfig) -> Times:
    """Production of enzyme ``entry`` (ng/mL/day) in its regions: ``A p_driver(t)``."""
    return entry.amplitude * presence(t, timeline, entry.driver)


def ros_source_rate(t: ArrayLike, ros: ROSConfig, timeline: InflammationConfig) -> Times:
    """ROS production (ng/mL/day): ``P_n p_n(t) + P_m p_m(t)`` (0 when disabled).

    Neutrophils and macrophages produce where each is present; this is the rate where
    both are (their default regions coincide).
    """
    if not ros.enabled:
        tt = np.asarray(t, dtype=float)
        return _out(np.zeros_like(tt), tt.ndim == 0)
    return (ros.neutrophil_production * presence(t, timeline, "neutrophils")
            + ros.macrophage_production * presence(t, timeline, "macrophages"))


def enzyme_decay_rate(entry: EnzymeEntry) -> float:
    """First-order loss (1/day): ``ln 2/t½ + k_TIMP``."""
    return half_life_to_rate(entry.half_life) + entry.timp_rate


def ros_decay_rate(ros: ROSConfig) -> float:
    """First-order loss of ROS (1/day), ``ln 2/t½``."""
    return half_life_to_rate(ros.half_life)


def ros_decay_length(ros: ROSConfig) -> float:
    """Steady penetration length ``sqrt(D*/k)`` (mm) in host tissue, ``D* = D_free/λ²``.

    With the defaults ≈ 0.089 mm: a mesh of 0.1 mm does not resolve it (about three
    cells per length would be needed), so the computed ROS is effectively local.
    """
    return math.sqrt(ros.diffusivity_free / ros.tortuosity**2 / ros_decay_rate(ros))


def nanomolar(c_ng_per_ml: ArrayLike, molar_mass_kda: float) -> Times:
    """Concentration in nM: 1 nM of an ``M`` kDa molecule is ``M`` ng/mL."""
    c = np.asarray(c_ng_per_ml, dtype=float)
    return _out(c / molar_mass_kda, c.ndim == 0)


def _phi(z: float) -> tuple[float, float]:
    """``φ1 = (e^z − 1)/z`` and ``φ2 = (e^z − 1 − z)/z²`` without cancellation."""
    if abs(z) < 1e-4:
        return 1.0 + z / 2.0 + z * z / 6.0, 0.5 + z / 6.0 + z * z / 24.0
    phi1 = math.expm1(z) / z
    return phi1, (phi1 - 1.0) / z


def well_mixed(times: ArrayLike, sources: ArrayLike, rate: float, c0: float = 0.0
               ) -> NDArray[np.float64]:
    """Exact solution of ``dc/dt = S(t) − k c`` for S linear between the given times.

    Over a step h with ``S = a + b τ``: ``c1 = e^{−kh} c0 + a h φ1(−kh) + b h² φ2(−kh)``,
    stable for any ``k h`` (ROS has k ≈ 2.7e4 /day, where c follows S/k).

    Args:
        times: Increasing times (day), first one the start.
        sources: ``S`` at ``times`` (ng/mL/day).
        rate: ``k`` (1/day), ≥ 0.
        c0: Concentration at ``times[0]`` (ng/mL).

    Returns:
        ``c`` at ``times`` (ng/mL).
    """
    t = np.asarray(times, dtype=float)
    s = np.broadcast_to(np.asarray(sources, dtype=float), t.shape)
    c = np.empty_like(t)
    c[0] = c0
    for i in range(1, t.size):
        h = t[i] - t[i - 1]
        phi1, phi2 = _phi(-rate * h)
        slope = (s[i] - s[i - 1]) / h
        c[i] = math.exp(-rate * h) * c[i - 1] + s[i - 1] * h * phi1 + slope * h * h * phi2
    return c


def well_mixed_enzyme(times: ArrayLike, entry: EnzymeEntry, timeline: InflammationConfig
                      ) -> NDArray[np.float64]:
    """0-D concentration (ng/mL) of enzyme ``entry`` from injury (c = 0 at ``times[0]``)."""
    t = np.asarray(times, dtype=float)
    return well_mixed(t, enzyme_source_rate(t, entry, timeline), enzyme_decay_rate(entry))


def well_mixed_ros(times: ArrayLike, ros: ROSConfig, timeline: InflammationConfig
                   ) -> NDArray[np.float64]:
    """0-D ROS concentration (ng/mL) where neutrophils and macrophages both act."""
    t = np.asarray(times, dtype=float)
    return well_mixed(t, ros_source_rate(t, ros, timeline), ros_decay_rate(ros))


def peak_time(times: ArrayLike, values: ArrayLike) -> tuple[float, float]:
    """Time and value of the maximum, refined by the parabola through its neighbours.

    Returns:
        ``(t_peak, c_peak)``; the sample itself at either end of the series.
    """
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    i = int(np.argmax(v))
    if 0 < i < t.size - 1:
        a, b, c = np.polyfit(t[i - 1:i + 2], v[i - 1:i + 2], 2)
        if a < 0.0 and t[i - 1] <= -b / (2.0 * a) <= t[i + 1]:
            tp = -b / (2.0 * a)
            return float(tp), float(np.polyval((a, b, c), tp))
    return float(t[i]), float(v[i])


def auc(times: ArrayLike, values: ArrayLike, t0: float = -math.inf, t1: float = math.inf
        ) -> float:
    """Trapezoidal ∫ c dt over the samples with ``t0 ≤ t ≤ t1`` (ng·day/mL)."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    keep = (t >= t0) & (t <= t1)
    return float(np.trapezoid(v[keep], t[keep]))
