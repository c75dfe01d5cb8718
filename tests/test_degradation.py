"""Pointwise ODEs (degradation, reservoir release, cell survival) and material laws.

The updates are exact over a step with m and ε frozen, so they must match the
closed forms (written here independently) to 1e-6 for any step sequence, and a
high-accuracy ODE integration (scipy) for the coupled cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import scaffoldfem  # noqa: F401  (conftest imports it first as well)
from scaffoldfem.physics.degradation import (
    cell_survival_step,
    deformed_porosity,
    degradation_rates,
    degrade_step,
    porosity,
    release_step,
    strain_factor,
)
from scaffoldfem.physics.materials import (
    POLYMERS,
    TISSUE,
    archie,
    bruggeman,
    cm2_per_s_to_mm2_per_day,
    flux_diffusivity,
    gibson_ashby,
    mackie_meares,
)

RTOL = 1e-6
# Uneven steps, including a large one: an exact update must not care.
STEPS = np.array([0.1, 0.5, 2.0, 7.0, 0.3, 10.0, 3.1])


def _march(w0, steps, **rates):
    w = np.asarray(w0, dtype=float)
    for dt in steps:
        w = degrade_step(w, dt, **rates)
    return w


def test_first_order_hydrolysis_and_enzyme():
    k_h, k_e, K_e = 0.03, 0.2, 50.0
    m = np.array([0.0, 10.0, 50.0, 400.0])
    w = _march(np.ones(4), STEPS, k_h=k_h, k_e=k_e, K_e=K_e, m=m)
    t = STEPS.sum()
    exact = np.exp(-(k_h + k_e / K_e * m) * t)
    np.testing.assert_allclose(w, exact, rtol=RTOL)
    assert w[0] > w[1] > w[2] > w[3]  # more enzyme, faster loss
    # First order in the enzyme (Lutolf 2003): doubling m doubles the enzymatic rate.
    p1, _ = degradation_rates(k_h=0.0, k_e=k_e, K_e=K_e, m=np.array([1.0, 2.0]))
    assert p1[1] == pytest.approx(2 * p1[0], rel=1e-14)


def test_autocatalytic_closed_form():
    k_h, a = 0.01, 5.0
    t = np.cumsum(STEPS)
    w = np.ones(1)
    for dt, tn in zip(STEPS, t, strict=True):
        w = degrade_step(w, dt, k_h=k_h, a_auto=a)
        # Logistic solution of dw/dt = −k(1 + a(1−w))w, w(0) = 1.
        exact = (1 + a) / (a + math.exp(k_h * (1 + a) * tn))
        assert abs(w[0] / exact - 1) < RTOL, (tn, w[0], exact)


def test_full_rate_law_against_ode_integrator():
    pars = dict(k_h=0.02, a_auto=3.0, k_e=0.3, K_e=40.0, beta=2.0)
    m = np.array([0.0, 20.0, 100.0])
    eps = np.array([0.05, -0.05, 0.1])  # compression does not accelerate (g = 1)
    w0 = np.array([1.0, 0.7, 0.4])
    g = 1 + pars["beta"] * np.maximum(eps, 0)
    enz = pars["k_e"] / pars["K_e"] * m

    def rhs(_t, w):
        return -(pars["k_h"] * (1 + pars["a_auto"] * (1 - w)) + enz) * g * w

    t_end = STEPS.sum()
    ref = solve_ivp(rhs, (0, t_end), w0, method="DOP853", rtol=1e-12, atol=1e-14).y[:, -1]
    w = _march(w0, STEPS, m=m, eps_vol=eps, **pars)
    np.testing.assert_allclose(w, ref, rtol=RTOL)
    np.testing.assert_allclose(strain_factor(eps, 2.0), g)


def test_porosity_maps():
    assert porosity(1.0, 0.9) == pytest.approx(0.9)
    assert porosity(0.0, 0.9) == pytest.approx(1.0)
    assert deformed_porosity(0.8, 1.0) == pytest.approx(0.8)
    # Solid volume kept: (1 − φ_def) J = 1 − φ.
    assert (1 - deformed_porosity(0.8, 1.1)) * 1.1 == pytest.approx(0.2)


def test_release_closed_form_and_conservation():
    k0, k_mmp, K_m = 0.05, 0.3, 30.0
    m = np.array([0.0, 30.0, 300.0])
    b0 = np.full(3, 200.0)
    b, total = b0.copy(), np.zeros(3)
    for dt in STEPS:
        b, rel = release_step(b, 1.0, 1.0, dt, k0=k0, k_mmp=k_mmp, K_m=K_m, m=m)
        total += rel
    t = STEPS.sum()
    np.testing.assert_allclose(b, b0 * np.exp(-(k0 + k_mmp / K_m * m) * t), rtol=RTOL)
    np.testing.assert_allclose(total + b, b0, rtol=1e-13)  # nothing created or lost


def test_degradation_coupled_release_against_ode_integrator():
    deg = dict(k_h=0.02, a_auto=3.0, k_e=0.3, K_e=40.0)
    rel = dict(k0=0.01, k_mmp=0.1, K_m=30.0, rho_rel=1.5)
    m = np.array([5.0, 20.0])

    def rhs(_t, y):
        w, b = y[:2], y[2:]
        dw = -(deg["k_h"] * (1 + deg["a_auto"] * (1 - w)) + deg["k_e"] / deg["K_e"] * m) * w
        r = (rel["k0"] + rel["k_mmp"] / rel["K_m"] * m) * b + rel["rho_rel"] * (-dw) * b / w
        return np.r_[dw, -r]

    y0 = np.array([1.0, 0.8, 100.0, 100.0])
    ref = solve_ivp(rhs, (0, STEPS.sum()), y0, method="DOP853", rtol=1e-12, atol=1e-12).y[:, -1]
    w, b, total = y0[:2].copy(), y0[2:].copy(), np.zeros(2)
    for dt in STEPS:
        w_new = degrade_step(w, dt, m=m, **deg)
        b, r = release_step(b, w, w_new, dt, m=m, **rel)
        w, total = w_new, total + r
    np.testing.assert_allclose(w, ref[:2], rtol=RTOL)
    np.testing.assert_allclose(b, ref[2:], rtol=RTOL)
    np.testing.assert_allclose(total + b, y0[2:], rtol=1e-13)


def test_release_when_polymer_is_gone():
    b, r = release_step(np.array([10.0]), np.array([0.0]), np.array([0.0]), 1.0, rho_rel=1.0)
    assert b[0] == 0.0 and r[0] == 10.0


def test_cell_survival_mean_is_exact_integral():
    rho0, k, dt = np.array([1e3, 5e4]), 0.08, 3.0
    rho, mean = cell_survival_step(rho0, dt, k)
    np.testing.assert_allclose(rho, rho0 * math.exp(-k * dt), rtol=1e-14)
    exact_integral = rho0 * (1 - math.exp(-k * dt)) / k  # ∫ρ dt over the step
    np.testing.assert_allclose(mean * dt, exact_integral, rtol=1e-13)
    _, mean0 = cell_survival_step(rho0, dt, 0.0)
    np.testing.assert_allclose(mean0, rho0)


def test_diffusivity_laws():
    phi = np.array([0.2, 0.5, 0.9, 1.0])
    np.testing.assert_allclose(bruggeman(phi), phi**1.5)
    np.testing.assert_allclose(mackie_meares(phi), (phi / (2 - phi)) ** 2)
    np.testing.assert_allclose(archie(phi, 1.5), bruggeman(phi))
    # Flux basis: Mackie–Meares (in-gel diffusivity) carries the extra φ.
    np.testing.assert_allclose(flux_diffusivity(2.0, phi, "mackie_meares"),
                               2.0 * phi * (phi / (2 - phi)) ** 2)
    for law in ("bruggeman", "mackie_meares", "archie"):
        assert flux_diffusivity(3.0, 1.0, law) == pytest.approx(3.0)  # open lumen
        d = flux_diffusivity(1.0, phi, law)
        assert np.all(np.diff(d) > 0)  # more pore space, faster transport
    assert gibson_ashby(100.0, 0.9) == pytest.approx(1.0)
    # Stroh et al. 2003: NGF 12.6e-7 cm²/s free, 2.75e-7 in striatum ⇒ λ = 2.14.
    d_free, d_star = TISSUE["D_free_ngf"][0], TISSUE["D_star_ngf_striatum"][0]
    assert d_free == pytest.approx(cm2_per_s_to_mm2_per_day(12.6e-7))
    assert math.sqrt(d_free / d_star) == pytest.approx(TISSUE["tortuosity_ngf_striatum"][0],
                                                       rel=0.01)


def test_presets_reproduce_their_documented_behaviour():
    for p in POLYMERS.values():
        assert p.references and 0 < p.phi0 < 1 and 0 < p.nu < 0.5
    plga = POLYMERS["plga_50_50"]
    pr = dict(k_h=plga.k_h, a_auto=plga.a_auto)
    w30, w60 = degrade_step(1.0, 30.0, **pr), degrade_step(1.0, 60.0, **pr)
    assert 0.4 < w30 < 0.6 and w60 < 0.25  # "1–2 months"
    pcl = POLYMERS["pcl"]
    assert degrade_step(1.0, 365.0, k_h=pcl.k_h) > 0.6  # lasts years
    alg = POLYMERS["alginate"]
    assert 0.2 < degrade_step(1.0, 28.0, k_h=alg.k_h) < 0.3  # weeks
    for key, target in (("alginate", 5.0), ("gelatin", 5.0), ("peg_mmp", 3.0)):
        p = POLYMERS[key]
        assert gibson_ashby(p.E_s, p.phi0, p.n_ga) == pytest.approx(target)
