"""Carrier release laws (config/carriers.py, physics/carriers.py): presets against their
curves, affinity binding (closed-form equilibrium, two-phase release, exact discrete
exchange), first order in enzyme, release following ROS, exact mass conservation, and
bad carriers refused with one line each. Pure NumPy: no DOLFINx."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from scaffoldfem.config.carriers import (
    ENZYME_MOLAR_MASS_KDA,
    PRESET_CURVES,
    PRESETS,
    ROS_MOLAR_MASS,
    USES,
    Carrier,
)
from scaffoldfem.physics.carriers import (
    affinity_coefficients,
    affinity_dt_limit,
    affinity_equilibrium,
    affinity_update,
    carrier_step,
    carrier_total,
    cumulative_release,
    drivers_from_tables,
    enzyme_cleavage_rate,
    initial_state,
    ros_cleavage_rate,
)

BASES = {"text", "qualitative", "derived", "assumed"}


def preset_release(name: str) -> tuple[np.ndarray, dict]:
    curve = PRESET_CURVES[name]
    carrier = Carrier(preset=name, loading=curve["loading"])
    kw = {} if curve["escape_rate"] is None else {"escape_rate": curve["escape_rate"]}
    got = cumulative_release(carrier, curve["days"], drivers_from_tables(curve["drivers"]),
                             max_dt=0.01, **kw)
    return got, curve


# -- presets ---------------------------------------------------------------------------


def test_every_preset_has_a_curve_and_sources():
    assert set(PRESETS) == set(PRESET_CURVES)
    for name, preset in PRESETS.items():
        curve = PRESET_CURVES[name]
        assert curve["basis"] in BASES and curve["source"]
        assert len(curve["days"]) == len(curve["released_pct"]) == len(curve["band_pct"])
        assert preset["references"], name
        assert Carrier(preset=name).law == preset["law"]
    c = Carrier(preset="alginate_gel", first_order_rate="0.05 1/day", loading="10 ng/mL")
    assert c.first_order_rate == pytest.approx(0.05)  # the study's value wins
    assert PRESETS["alginate_gel"]["first_order_rate"] == "0.08 1/day"  # not mutated
    for name in PRESETS:  # written out in full (as the template does) and read back
        c = Carrier(preset=name, loading="5 ng/mL")
        assert Carrier(**c.model_dump(mode="json")) == c


def test_presets_reproduce_their_curves():
    misses = []
    for name in sorted(PRESET_CURVES):
        got, curve = preset_release(name)
        dev = np.abs(got - np.asarray(curve["released_pct"]))
        if np.any(dev > np.asarray(curve["band_pct"])):
            misses.append(f"{name}: got {np.round(got, 2)}, want {curve['released_pct']} "
                          f"+- {curve['band_pct']}")
    assert not misses, "\n".join(misses)


# -- units ------------------------------------------------------------------------------


def test_molar_constants_are_converted():
    c = Carrier(preset="heparin_fibrin")
    assert c.k_on == pytest.approx(0.864)  # 1e4 /(M s) in 1/(nM day)
    assert c.k_on_ml_per_ng_day == pytest.approx(0.864 / 27)
    assert c.dissociation_constant == pytest.approx(12.5)  # ng/mL = 0.46 nM x 27 kDa
    molar = Carrier(law="affinity", site_density="185 nM", k_on="1 1/(nM*day)",
                    k_off="1 1/day", molar_mass="27 kg/mol")
    assert molar.site_density == pytest.approx(185 * 27)
    s = Carrier(preset="mmp_cleavable_peg").specificity
    assert s["MMP2"] == pytest.approx(2.0e-3 * 1440) and s["MMP9"] == pytest.approx(2.448)
    assert ros_cleavage_rate(1.0, ROS_MOLAR_MASS) == pytest.approx(1.0)  # 1 µM, 1/(µM day)


# -- affinity ---------------------------------------------------------------------------


def test_affinity_equilibrium_closed_form():
    T = np.array([0.0, 1.0, 50.0, 500.0, 5000.0, 7500.0, 1e6])
    S, K_D = 5000.0, 12.5
    c, b = affinity_equilibrium(T, S, K_D)
    assert np.allclose((T - b) * (S - b), K_D * b, rtol=1e-10, atol=1e-9 * S)
    assert np.all((b >= 0) & (b <= np.minimum(T, S))) and np.allclose(c + b, T)
    _, b0 = affinity_equilibrium(T, S, 0.0)  # irreversible: the sites fill first
    assert np.allclose(b0, np.minimum(T, S))
    assert np.allclose(affinity_equilibrium(T, 0.0, K_D)[1], 0.0)


def test_affinity_update_is_the_linear_exchange():
    rng = np.random.default_rng(1)
    S, c = rng.uniform(50, 100, 40), rng.uniform(0, 30, 40)
    b = rng.uniform(0, 1, 40) * S
    k_on, k_off, dt = 0.03, 0.4, 0.3
    k_sink, source = affinity_coefficients(b, S, k_on, k_off, dt)
    b_new = affinity_update(b, c, S, k_on, k_off, dt)
    assert np.allclose((b_new - b) / dt, k_sink * c - source, rtol=1e-13, atol=1e-13)
    assert np.allclose(b_new, (b + dt * k_on * (S - b) * c) / (1 + dt * k_off))
    assert np.all(b_new >= 0)
    ok = dt <= affinity_dt_limit(k_on, c.max())
    assert not ok or np.all(b_new <= S)


def test_affinity_linearised_about_old_level_stays_within_capacity_at_large_steps():
    """With the old free level as the linearisation point, a box held at a steady free
    level c (heparin-fibrin k_on, dt = 0.5 day: dt k_on c = 40) fills its sites towards
    the closed-form b = S c/(K_D + c) without ever exceeding S, and the exchange is still
    the linear one."""
    S, k_on, k_off, dt = 5000.0, 0.032, 0.4, 0.5
    c = np.array([10.0, 100.0, 2500.0])
    b = np.zeros(3)
    for _ in range(200):
        k_sink, source = affinity_coefficients(b, S, k_on, k_off, dt, c)
        b_new = affinity_update(b, c, S, k_on, k_off, dt, c)
        # round-off of b_new - b is eps * S / dt
        assert np.allclose((b_new - b) / dt, k_sink * c - source, rtol=1e-12, atol=1e-11 * S)
        assert np.all(b_new <= S * (1 + 1e-12))
        b = b_new
    assert np.allclose(b, S * c / (k_off / k_on + c), rtol=1e-9)


def test_affinity_box_relaxes_to_closed_form_equilibrium():
    """k_out = 0: a well-mixed box starting all free ends at the closed-form split, with
    free + bound conserved at every step."""
    L = np.array([100.0, 2000.0, 5000.0, 9000.0])
    S, k_on, k_off, dt = 5000.0, 0.032, 0.4, 0.005
    c, b = L.copy(), np.zeros_like(L)
    for _ in range(1000):
        k_sink, source = affinity_coefficients(b, S, k_on, k_off, dt)
        c = (c + dt * source) / (1 + dt * k_sink)
        b = affinity_update(b, c, S, k_on, k_off, dt)
        assert np.allclose(c + b, L, rtol=1e-13)
    c_eq, b_eq = affinity_equilibrium(L, S, k_off / k_on)
    assert np.allclose(b, b_eq, rtol=1e-9) and np.allclose(c, c_eq, rtol=1e-8)


def test_affinity_two_phase_release():
    """k_out > 0, loading above capacity: the free excess leaves fast, then the bound
    factor slowly at k_out x (equilibrium free fraction)."""
    k_out, S, L = 1.0, 5000.0, 7500.0
    c = Carrier(law="affinity", loading=f"{L} ng/mL", site_density=f"{S} ng/mL",
                k_on="0.864 1/(nM*day)", k_off="0.4 1/day")
    days = np.array([0.1, 3.0, 15.0, 15.5, 30.0, 30.5])
    got = cumulative_release(c, days, escape_rate=k_out, max_dt=0.01)
    initial_rate = got[0] / 0.1  # %/day
    assert 100 * (L - S) / L * 0.85 < got[1] < 100 * (L - S) / L * 1.15
    for i in (2, 4):
        T = 100.0 - got[i : i + 2]  # % still in the carrier
        rate = np.log(T[0] / T[1]) / 0.5
        free, _ = affinity_equilibrium(T.mean() / 100 * L, S, c.dissociation_constant)
        assert rate == pytest.approx(k_out * free / (T.mean() / 100 * L), rel=0.05)
        assert rate * T[0] < 0.05 * initial_rate


def test_initial_state_partitions_the_loading():
    c = Carrier(preset="heparin_fibrin", loading="7500 ng/mL")
    state, free = initial_state(c, (3,))
    assert np.allclose(carrier_total(state) + free, 7500.0)
    assert np.allclose(free, affinity_equilibrium(7500.0, 5000.0, 12.5)[0])


# -- enzymes and ROS --------------------------------------------------------------------


def test_cleavage_is_first_order_in_enzyme():
    c = Carrier(preset="mmp_cleavable_peg", loading="1000 ng/mL")
    one = {"MMP9": 92.0, "MMP2": 0.0}  # 1 nM MMP-9
    two = {"MMP9": 184.0, "MMP2": 0.0}
    r1 = enzyme_cleavage_rate(c.specificity, one)
    assert r1 == pytest.approx(2.448)  # (k_cat/K_M) [E] = 2.448 /(nM day) x 1 nM
    assert enzyme_cleavage_rate(c.specificity, two) == pytest.approx(2 * r1, rel=1e-14)
    both = enzyme_cleavage_rate(c.specificity, {"MMP9": 92.0, "MMP2": 72.0})
    assert both == pytest.approx(2.448 + 2.88)  # additive over enzymes
    state, _ = initial_state(c, (1,))
    dt = 1e-5
    rel1 = carrier_step(c, state, dt, {"enzymes": one})[1] / dt
    rel2 = carrier_step(c, state, dt, {"enzymes": two})[1] / dt
    assert rel2 / rel1 == pytest.approx(2.0, rel=1e-4)  # initial rate doubles
    with pytest.raises(ValueError, match="MMP2"):
        carrier_step(c, state, dt, {"enzymes": {"MMP9": 92.0}})
    assert set(ENZYME_MOLAR_MASS_KDA) >= set(c.specificity)


def test_ros_cleavable_release_follows_ros_time_course():
    """Release rate per bound factor is k_ROS [ROS](t): it rises and falls with ROS."""
    c = Carrier(preset="ros_responsive", loading="1000 ng/mL")
    peak = 3401.0  # 100 µM at day 1

    def ros(t: float) -> float:
        return peak * t * np.exp(1.0 - t)

    h = 0.05
    days = np.arange(h, 8.0 + h / 2, h)
    got = cumulative_release(c, days, lambda t: {"ros": ros(t)}, max_dt=h)
    left = 100.0 - np.concatenate([[0.0], got])
    rate = np.log(left[:-1] / left[1:]) / h
    expect = c.ros_rate_constant * np.array([ros(t - h / 2) for t in days]) / ROS_MOLAR_MASS
    assert np.allclose(rate, expect, rtol=1e-9, atol=1e-12)
    assert abs(days[np.argmax(rate)] - h / 2 - 1.0) <= h  # peaks with ROS, at day 1
    none = cumulative_release(c, [5.0], lambda t: {"ros": 0.0})
    assert none[0] == 0.0


def test_sequential_release_waits_for_the_enzyme():
    c = Carrier(preset="sequential_ros_mmp", loading="1000 ng/mL")
    state, _ = initial_state(c, (2,))
    new, rel = carrier_step(c, state, 2.0, {"ros": [3401.0, 3401.0],
                                            "enzymes": {"MMP2": 0.0, "MMP9": 0.0}})
    assert np.allclose(rel, 0.0) and np.allclose(new["p"], 1000 * (1 - np.exp(-2.0)))
    # a = e: the degenerate chain p1 = (p + a b Δt) e^{−aΔt}
    a = 2.88
    mmp = {"MMP2": 72.0, "MMP9": 0.0}
    new, _ = carrier_step(c, {"b": np.array([10.0]), "p": np.array([3.0])}, 0.7,
                          {"ros": a * ROS_MOLAR_MASS / c.ros_rate_constant, "enzymes": mmp})
    assert new["p"][0] == pytest.approx((3.0 + a * 10.0 * 0.7) * np.exp(-a * 0.7), rel=1e-12)


# -- exact steps and mass conservation --------------------------------------------------


def carriers_of_every_law() -> list[Carrier]:
    return [
        Carrier(preset="alginate_gel", degradation_coupling=1.5),
        Carrier(preset="plga_microspheres", degradation_coupling=1.0),
        Carrier(preset="heparin_fibrin"),
        Carrier(preset="mmp_cleavable_peg", first_order_rate="0.01 1/day",
                degradation_coupling=0.5),
        Carrier(preset="ros_responsive", degradation_coupling=2.0),
        Carrier(law="degradation", degradation_coupling=1.0),
        Carrier(preset="sequential_ros_mmp", first_order_rate="0.02 1/day"),
    ]


def random_case(rng, n=64):
    state = {k: rng.uniform(0, 1e4, n) for k in ("b", "burst", "p")}
    w_old = rng.uniform(0.2, 1.0, n)
    drivers = {"enzymes": {"MMP9": rng.uniform(0, 300, n), "MMP2": rng.uniform(0, 300, n)},
               "ros": rng.uniform(0, 5000, n), "w_old": w_old,
               "w_new": w_old * rng.uniform(0.3, 1.0, n), "c_free": rng.uniform(0, 50, n)}
    return state, drivers


def test_steps_conserve_mass_and_are_exact():
    """Every law: pools + released conserved to round-off, no negative pool, and (all but
    affinity) exact with frozen drivers: two half steps equal one step."""
    carriers = carriers_of_every_law()
    assert {c.law for c in carriers} == set(USES)
    for carrier in carriers:
        rng = np.random.default_rng(7)
        full, drivers = random_case(rng)
        state = {k: full[k] for k in initial_state(carrier, (1,))[0]}
        new, released = carrier_step(carrier, state, 0.7, drivers)
        old_total, new_total = carrier_total(state), carrier_total(new)
        assert np.all(np.abs(new_total + released - old_total) <= 1e-13 * old_total), carrier
        assert all(np.all(v >= 0) for v in new.values()), carrier.law
        if carrier.law == "affinity":
            continue
        assert np.all(released >= 0), carrier.law
        one, _ = carrier_step(carrier, state, 1.0, drivers)
        w_mid = np.sqrt(drivers["w_old"] * drivers["w_new"])
        half, _ = carrier_step(carrier, state, 0.5, {**drivers, "w_new": w_mid})
        two, _ = carrier_step(carrier, half, 0.5, {**drivers, "w_old": w_mid})
        for key in one:
            assert np.allclose(two[key], one[key], rtol=1e-12, atol=1e-9), carrier.law


# -- bad input --------------------------------------------------------------------------


BAD = [
    ({"law": "mmp_cleavable", "loading": "100 ng/mL"}, "needs specificity"),
    ({"law": "sequential_ros_mmp", "ros_rate_constant": "1 1/(uM*day)"}, "needs specificity"),
    ({"law": "ros_cleavable"}, "needs ros_rate_constant"),
    ({"law": "passive"}, "needs first_order_rate"),
    ({"law": "affinity", "site_density": "100 ng/mL", "k_on": "1 1/(nM*day)"}, "needs k_off"),
    ({"law": "passive", "first_order_rate": "0.1 1/day", "loading": "-1 ng/mL"}, ">= 0"),
    ({"law": "passive", "first_order_rate": "0.1 1/day",
      "specificity": {"MMP9": "1 1/(nM*day)"}}, "not used by law passive"),
    ({"preset": "heparin_fibrin", "law": "passive"}, "contradicts"),
    ({"preset": "alginate_gel", "site_density": "5 mm"}, "wrong dimension"),
    ({"preset": "alginate_gel", "burst_fraction": 1.2}, "less than 1"),
    ({"preset": "alginate_gel", "rate": "1 1/day"}, "Extra inputs"),
    ({"preset": "mmp_cleavable_peg", "specificity": {"MMP 9": "1 1/(nM*day)"}}, "enzyme names"),
]


def test_bad_carriers_are_refused_with_one_line():
    for data, says in BAD:
        with pytest.raises(ValidationError) as info:
            Carrier(**data)
        errors = info.value.errors()
        assert len(errors) == 1, (data, errors)
        assert says in errors[0]["msg"] and "\n" not in errors[0]["msg"], (data, errors)


def test_cumulative_release_refuses_misuse():
    with pytest.raises(ValueError, match="escape_rate"):
        cumulative_release(Carrier(preset="heparin_fibrin", loading="1 ng/mL"), [1.0])
    with pytest.raises(ValueError, match="loading"):
        cumulative_release(Carrier(preset="alginate_gel"), [1.0])
    with pytest.raises(ValueError, match="c_free"):
        carrier_step(Carrier(preset="heparin_fibrin"), {"b": np.ones(2)}, 0.1, {})
