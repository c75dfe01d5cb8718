"""Release from carriers (:class:`scaffoldfem.config.carriers.Carrier`) as pure NumPy.

Each cell's carrier holds the factor in one or two pools (``state``, ng per mL of
scaffold). A step advances them with the drivers frozen (operator splitting, as
:mod:`scaffoldfem.physics.degradation`) and returns what left the carrier, so
``total(new_state) + released == total(state)`` to round-off:

* ``passive``, ``mmp_cleavable``, ``ros_cleavable``, ``degradation`` (pool ``b``):
  ``db/dt = −λ b − ρ (−dw/dt/w) b``, ``λ = k0 + Σ_j (k_cat/K_M)_j [E_j] + k_ROS [ROS]``
  (the terms the law uses), exactly ``b1 = b0 e^{−λΔt} (w1/w0)^ρ``.
* ``microspheres`` (pools ``burst``, ``b``): ``burst`` decays at k_burst, ``b`` as above.
* ``sequential_ros_mmp`` (pools ``b`` in the gel, ``p`` in freed particles):
  ``db/dt = −a b``, ``dp/dt = a b − e p`` with ``a = k_ROS [ROS]``,
  ``e = k0 + Σ (k_cat/K_M)[E]``: the exact two-stage chain.
* ``affinity`` (pool ``b``, bound): ``db/dt = k_on c (S − b) − k_off b`` with the free
  factor c in the transport field; semi-implicit (see :func:`affinity_update`),
  ``released = b − b_new`` (negative while the sites take factor up).

Cleavage is first order in each enzyme (Lutolf et al. 2003 PNAS 100:5413): doubling
[E] doubles the rate. Enzymes and ROS are fields in ng/mL, converted to nM / µM with
their molar masses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from scaffoldfem.config.carriers import ENZYME_MOLAR_MASS_KDA, ROS_MOLAR_MASS, Carrier

__all__ = [
    "affinity_coefficients",
    "affinity_dt_limit",
    "affinity_equilibrium",
    "affinity_update",
    "carrier_step",
    "carrier_total",
    "cumulative_release",
    "drivers_from_tables",
    "enzyme_cleavage_rate",
    "initial_state",
    "ros_cleavage_rate",
]

State = dict[str, np.ndarray]
Drivers = Mapping[str, Any]


def enzyme_cleavage_rate(specificity: Mapping[str, float], enzymes: Mapping[str, Any],
                         molar_mass_kda: Mapping[str, float] | None = None) -> np.ndarray:
    """Cleavage rate ``Σ_j (k_cat/K_M)_j [E_j]`` (1/day), linear in every enzyme.

    Args:
        specificity: ``k_cat/K_M`` per enzyme name, in 1/(nM·day).
        enzymes: Enzyme concentration per name, ng/mL (scalars or per-cell arrays).
        molar_mass_kda: Molar mass per name (kDa = kg/mol); default
            :data:`~scaffoldfem.config.carriers.ENZYME_MOLAR_MASS_KDA`.

    Returns:
        The rate per cell (1/day); 0 where no enzyme is present.

    Raises:
        ValueError: An enzyme of ``specificity`` absent from ``enzymes`` or without a
            molar mass.
    """
    masses = ENZYME_MOLAR_MASS_KDA if molar_mass_kda is None else molar_mass_kda
    rate: np.ndarray = np.zeros(())
    for name, s in specificity.items():
        if name not in enzymes:
            raise ValueError(f"carrier is cleaved by {name!r} but no such enzyme is given "
                             f"(have {sorted(enzymes)})")
        if name not in masses:
            raise ValueError(f"no molar mass for enzyme {name!r} (have {sorted(masses)})")
        e_nm = np.maximum(np.asarray(enzymes[name], dtype=float), 0.0) / masses[name]
        rate = rate + s * e_nm  # 1 nM = M_kDa ng/mL
    return rate


def ros_cleavage_rate(k_ros: float, ros: Any) -> np.ndarray:
    """ROS cleavage rate ``k_ROS [ROS]`` (1/day): ``k_ros`` in 1/(µM·day), ``ros`` in
    ng/mL H2O2-equivalent (1 µM = 34.01 ng/mL)."""
    return k_ros * np.maximum(np.asarray(ros, dtype=float), 0.0) / ROS_MOLAR_MASS


def affinity_coefficients(b: Any, S: Any, k_on: float, k_off: float,
                          dt: float, c_old: Any = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Linear sink and source of the free factor over a step with the binding law.

    The binding term ``k_on c (S − b)`` is linearised about the old level,
    ``k_on [c_new (S − b) − c_old (b_new − b)]``, implicit in ``c_new`` and in the
    dissociation. The free-factor equation gets ``− (k_sink c_new − source)``; with
    ``k_sink = k_on (S − b)⁺/den`` and ``source = k_off b/den``,
    ``den = 1 + Δt (k_on c_old + k_off)``,
    :func:`affinity_update` gives ``(b_new − b)/Δt == k_sink c_new − source`` exactly,
    so the bound and free pools exchange mass with no discrete error.

    Args:
        b: Bound factor per cell at the old time (ng/mL).
        S: Site capacity per cell (ng/mL-equivalent).
        k_on: Association rate, mL/(ng·day) (``Carrier.k_on_ml_per_ng_day``).
        k_off: Dissociation rate (1/day).
        dt: Step (day).
        c_old: Free factor per cell at the old time (ng/mL; 0: the sites' uptake is
            lagged only through ``S − b``).

    Returns:
        ``(k_sink, source)`` per cell, in 1/day and ng/mL/day.
    """
    b = np.asarray(b, dtype=float)
    room = np.maximum(np.asarray(S, dtype=float) - b, 0.0)
    den = 1.0 + dt * (k_on * np.maximum(np.asarray(c_old, dtype=float), 0.0) + k_off)
    return k_on * room / den * np.ones_like(b), k_off * b / den


def affinity_update(b: Any, c_new: Any, S: Any, k_on: float, k_off: float,
                    dt: float, c_old: Any = 0.0) -> np.ndarray:
    """Bound factor after a step, ``b + Δt (k_sink c_new − source)``
    (:func:`affinity_coefficients`, the same ``c_old``).

    Implicit in the dissociation and in the free factor ``c_new`` (the cell mean at the
    new time level, from the transport solve with :func:`affinity_coefficients` as DG0
    coefficients, so ``∫_cell k_sink c = k_sink c̄ |cell|``), the free sites lagged.
    ``(b_new − b)/Δt == k_sink c_new − source`` holds for any ``c_new`` (not clipped, so a
    slightly negative FE mean stays balanced); for ``c_new ≥ 0``, ``b_new ≥ 0``, and
    ``b_new ≤ S`` when ``Δt k_on (c_new − c_old) ≤ 1`` (:func:`affinity_dt_limit`; with
    ``c_old`` the linearisation point, a steady free level never overfills). At equilibrium
    ``k_on c (S − b) = k_off b`` exactly, so the scheme keeps the closed-form split.
    """
    k_sink, source = affinity_coefficients(b, S, k_on, k_off, dt, c_old)
    return np.asarray(b, dtype=float) + dt * (k_sink * np.asarray(c_new, dtype=float) - source)


def affinity_dt_limit(k_on: float, c_max: float) -> float:
    """Largest step (day) with ``Δt k_on c ≤ 1`` for free factor up to ``c_max``, which
    keeps the bound factor within the site capacity (:func:`affinity_update`)."""
    return np.inf if k_on * c_max <= 0 else 1.0 / (k_on * c_max)


def affinity_equilibrium(c_total: Any, S: Any, K_D: Any) -> tuple[np.ndarray, np.ndarray]:
    """Free and bound factor at binding equilibrium for a total ``c_total`` (closed form).

    ``(T − b)(S − b) = K_D b`` has the root in [0, min(T, S)]
    ``b = 2 T S / (T + S + K_D + √((T + S + K_D)² − 4 T S))`` (no cancellation).

    Args:
        c_total: Free + bound factor (ng/mL).
        S: Site capacity (ng/mL-equivalent).
        K_D: Dissociation constant ``k_off/k_on`` (ng/mL).

    Returns:
        ``(c_free, b)`` per cell.
    """
    T = np.maximum(np.asarray(c_total, dtype=float), 0.0)
    S = np.asarray(S, dtype=float)
    s = T + S + K_D
    root = np.sqrt(np.maximum(s * s - 4.0 * T * S, 0.0))
    den = s + root
    b = np.where(den > 0, 2.0 * T * S / np.where(den > 0, den, 1.0), 0.0)
    return T - b, b


def _enzyme_rate(carrier: Carrier, drivers: Drivers) -> Any:
    if not carrier.specificity:
        return 0.0
    return enzyme_cleavage_rate(carrier.specificity, drivers.get("enzymes", {}),
                                drivers.get("molar_mass_kda"))


def _ros_rate(carrier: Carrier, drivers: Drivers) -> Any:
    return ros_cleavage_rate(carrier.ros_rate_constant, drivers.get("ros", 0.0))


def _matrix_factor(carrier: Carrier, drivers: Drivers, shape: tuple[int, ...]) -> np.ndarray:
    """``(w_new/w_old)^ρ``: the part that stays bound as the matrix is lost."""
    rho = carrier.degradation_coupling
    if not rho:
        return np.ones(shape)
    w0 = np.broadcast_to(np.asarray(drivers.get("w_old", 1.0), dtype=float), shape)
    w1 = np.broadcast_to(np.asarray(drivers.get("w_new", 1.0), dtype=float), shape)
    out = np.zeros(shape)
    ok = w0 > 0
    out[ok] = (np.maximum(w1[ok], 0.0) / w0[ok]) ** rho  # no polymer left: nothing bound
    return out


def _ratio(x: np.ndarray, dt: float) -> np.ndarray:
    """``(1 − e^{−x Δt})/x`` for x ≥ 0 without cancellation (→ Δt as x → 0)."""
    out = np.full_like(x, dt)
    nz = x * dt > 1e-300
    out[nz] = -np.expm1(-x[nz] * dt) / x[nz]
    return out


def initial_state(carrier: Carrier, shape: int | tuple[int, ...]) -> tuple[State, np.ndarray]:
    """Pools at t = 0 with the carrier's loading in every cell, and the free factor.

    Returns:
        ``(state, free)``: ``free`` (ng/mL) is the part of the loading that starts in
        the transport field: the unbound factor at binding equilibrium for ``affinity``
        (:func:`affinity_equilibrium`), zero otherwise.
    """
    load = np.full(shape, carrier.loading, dtype=float)
    if carrier.law == "microspheres":
        return {"burst": carrier.burst_fraction * load,
                "b": (1.0 - carrier.burst_fraction) * load}, np.zeros_like(load)
    if carrier.law == "affinity":
        free, b = affinity_equilibrium(load, carrier.site_density,
                                       carrier.dissociation_constant)
        return {"b": b}, free
    if carrier.law == "sequential_ros_mmp":
        return {"b": load, "p": np.zeros_like(load)}, np.zeros_like(load)
    return {"b": load}, np.zeros_like(load)


def carrier_total(state: Mapping[str, Any]) -> np.ndarray:
    """Factor held by the carrier per cell (sum of its pools, ng/mL)."""
    return sum((np.asarray(v, dtype=float) for v in state.values()), np.zeros(()))


def carrier_step(carrier: Carrier, state: Mapping[str, Any], dt: float,
                 drivers: Drivers | None = None) -> tuple[State, np.ndarray]:
    """Advance the carrier's pools over ``dt`` with frozen drivers.

    Args:
        carrier: The carrier (law and parameters).
        state: Pools per cell (see the module docstring), ng/mL.
        dt: Step (day).
        drivers: Per-cell values frozen over the step: ``enzymes`` (name → ng/mL),
            ``molar_mass_kda`` (optional, name → kDa), ``ros`` (ng/mL H2O2-equivalent),
            ``w_old``/``w_new`` (polymer mass fraction at the step's ends, for the
            degradation coupling) and, for ``affinity``, ``c_free`` (free factor at the
            new time level, ng/mL) and ``c_old`` (at the old one, the linearisation
            point of :func:`affinity_coefficients`). Missing ones are 0 (w: 1).

    Returns:
        ``(new_state, released)``: ``released`` (ng/mL) left the carrier during the step
        (for ``affinity``, net unbinding), so pools + released are conserved exactly.
    """
    drivers = drivers or {}
    old = {k: np.asarray(v, dtype=float) for k, v in state.items()}
    b = old["b"]
    law = carrier.law
    if law == "affinity":
        if "c_free" not in drivers:
            raise ValueError("an affinity carrier needs the free factor 'c_free' at the new "
                             "time level")
        b_new = affinity_update(b, drivers["c_free"], carrier.site_density,
                                carrier.k_on_ml_per_ng_day, carrier.k_off, dt,
                                drivers.get("c_old", 0.0))
        return {"b": b_new}, b - b_new
    if law == "sequential_ros_mmp":
        a = np.broadcast_to(_ros_rate(carrier, drivers), b.shape)
        e = np.broadcast_to(carrier.first_order_rate + _enzyme_rate(carrier, drivers), b.shape)
        p = old["p"]
        # p1 = p e^{−eΔt} + a b (e^{−aΔt} − e^{−eΔt})/(e − a), symmetric and overflow-free
        chain = np.exp(-np.minimum(a, e) * dt) * _ratio(np.abs(e - a), dt)
        new = {"b": b * np.exp(-a * dt), "p": p * np.exp(-e * dt) + a * b * chain}
        return new, (b - new["b"]) + (p - new["p"])
    keep = _matrix_factor(carrier, drivers, b.shape)
    rate = carrier.first_order_rate
    if law == "mmp_cleavable":
        rate = rate + _enzyme_rate(carrier, drivers)
    elif law == "ros_cleavable":
        rate = rate + _ros_rate(carrier, drivers)
    b_new = b * np.exp(-np.broadcast_to(rate, b.shape) * dt) * keep
    new = {"b": b_new}
    released = b - b_new
    if law == "microspheres":
        burst = old["burst"]
        new["burst"] = burst * np.exp(-carrier.burst_rate * dt)
        released = released + (burst - new["burst"])
    return new, released


def drivers_from_tables(spec: Mapping[str, Any]) -> Callable[[float], dict[str, Any]]:
    """Drivers as functions of time from ``(day, value)`` tables (linear, held constant
    outside): ``{"ros": [[d, v], ...], "enzymes": {"MMP2": [[d, v], ...]}, "w": ...}``
    (ng/mL; w the polymer mass fraction). A bare number is a constant."""

    def course(table: Any) -> Callable[[float], float]:
        if np.isscalar(table):
            return lambda t: float(table)
        arr = np.asarray(table, dtype=float)
        return lambda t: float(np.interp(t, arr[:, 0], arr[:, 1]))

    ros = course(spec.get("ros", 0.0))
    enz = {k: course(v) for k, v in spec.get("enzymes", {}).items()}
    w = course(spec["w"]) if "w" in spec else None

    def at(t: float) -> dict[str, Any]:
        out: dict[str, Any] = {"ros": ros(t), "enzymes": {k: f(t) for k, f in enz.items()}}
        if w is not None:
            out["w"] = w(t)
        return out

    return at


def cumulative_release(carrier: Carrier, days: Sequence[float],
                       drivers_of_t: Callable[[float], Mapping[str, Any]] | None = None, *,
                       escape_rate: float | None = None, max_dt: float = 0.01) -> np.ndarray:
    """Cumulative release (% of loading) of a well-mixed carrier into an infinite sink.

    Steps of at most ``max_dt`` land on every requested day; drivers are evaluated at
    each step's midpoint (``w`` at its ends) and frozen over it, so with constant
    drivers the result is exact for every law but ``affinity``.

    Args:
        carrier: The carrier (its ``loading`` sets the amount; > 0).
        days: Increasing times (day) at which to report.
        drivers_of_t: ``t -> drivers`` as :func:`carrier_step` takes them, plus an
            optional ``w`` (polymer mass fraction); default none.
        escape_rate: ``affinity`` only: first-order loss (1/day) of the free factor from
            the carrier to the sink (diffusion out of the gel, the in-vitro release
            measurement); the free factor still in the carrier counts as not released.
        max_dt: Largest step (day).

    Returns:
        Percent of the loading released by each of ``days``.
    """
    if carrier.loading <= 0:
        raise ValueError("cumulative_release needs a carrier with loading > 0")
    if (escape_rate is None) != (carrier.law != "affinity"):
        raise ValueError("escape_rate is needed for, and only for, an affinity carrier")
    get = drivers_of_t or (lambda t: {})
    state, free = initial_state(carrier, ())
    out, gone, t = [], 0.0, 0.0
    kon, S, koff = carrier.k_on_ml_per_ng_day, carrier.site_density, carrier.k_off
    for day in days:
        n = max(int(np.ceil((day - t) / max_dt - 1e-9)), 0)
        for t0, t1 in zip(np.linspace(t, day, n + 1)[:-1], np.linspace(t, day, n + 1)[1:],
                          strict=True):
            dt = t1 - t0
            drv = dict(get(0.5 * (t0 + t1)))
            if "w" in drv:
                drv["w_old"], drv["w_new"] = get(t0)["w"], get(t1)["w"]
            if carrier.law == "affinity":
                k_sink, source = affinity_coefficients(state["b"], S, kon, koff, dt, free)
                drv["c_old"] = free
                free = (free + dt * source) / (1.0 + dt * (escape_rate + k_sink))
                drv["c_free"] = free
                gone += float(dt * escape_rate * free)
                state, _ = carrier_step(carrier, state, dt, drv)
            else:
                state, released = carrier_step(carrier, state, dt, drv)
                gone += float(released)
        t = max(t, day)
        out.append(100.0 * gone / carrier.loading)
    return np.asarray(out)
