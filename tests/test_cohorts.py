"""Cell grafts as cohorts (issue 12, item 3): each placed at its own transplant time,
dying faster in inflammation and slower with trophic support, secreting while alive.

A cohort grafted later is absent (zero density, zero secretion) before its time and
exact after it; survival matches the closed form for a prescribed (piecewise-linear)
inflammation course; secretion stops with the cells; the species balance books the
secretion to round-off; the state restores through the checkpoint mapping; the
transplant time is a sweep key. Serially and under ``mpiexec -n 2``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import ROOT
from mpi4py import MPI

import scaffoldfem  # noqa: F401
from scaffoldfem.config.study import load_study
from scaffoldfem.errors import StudyError
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.model.coupled import CoupledModel
from scaffoldfem.physics.grafts import death_rate, graft_step, survival_fraction
from scaffoldfem.run.checkpoint import StateMap
from scaffoldfem.sweep.columns import parameter_value
from scaffoldfem.sweep.plan import load_sweep

BASELINE = ROOT / "studies" / "baseline.toml"
LN2 = math.log(2.0)
#: Piecewise-linear presence (day, presence); steps of 0.5 day land on every node, so
#: the Simpson mean over a step (or its part after a transplant) is exact.
NEUTROPHILS = [[0.0, 1.0], [1.0, 0.5], [2.0, 0.0]]
MACROPHAGES = [[0.0, 0.0], [2.0, 1.0], [4.0, 0.5]]
T_LATE = 1.25  # inside the step [1.0, 1.5]
COHORTS = (
    "cells.cohorts=["
    "{name='early', secretion={GDNF='5e-7 ng/cell/day'}, half_life='7 day', "
    " inflammation_sensitivity=3.0},"
    "{name='calm', secretion={}, half_life='7 day', inflammation_sensitivity=0.0},"
    "{name='supported', half_life='7 day', inflammation_sensitivity=3.0, "
    " trophic_factor='GDNF', trophic_half_saturation='1 ng/mL', trophic_protection=2.0},"
    f"{{name='late', cell_type='NSPC', transplant_time='{T_LATE} day', regions=['channel'],"
    " density='2e5 cell/mm^3', secretion={BDNF='1e-6 ng/cell/day'}, half_life='10 day',"
    " inflammation_sensitivity=2.0},"
    "{name='brief', secretion={NT3='1e-6 ng/cell/day'}, half_life='0.01 day', "
    " inflammation_sensitivity=0.0}]"
)
OVERRIDES = [
    'geometry.resolution="0.35 mm"',
    'geometry.cord.length="6 mm"',
    "mechanics.enabled=false",
    "axons.enabled=false",
    'time.dt="0.5 day"',
    "inflammation.neutrophils.profile='table'",
    f"inflammation.neutrophils.table={NEUTROPHILS}",
    "inflammation.macrophages.profile='table'",
    f"inflammation.macrophages.table={MACROPHAGES}",
    "species.BDNF.carriers=[]",  # BDNF only from the late cohort
    COHORTS,
]
STEPS = 6  # to day 3


def _integral(table, a: float, b: float) -> float:
    """Exact ∫_a^b of a piecewise-linear table (0 before, last value after)."""
    days = [d for d, _ in table]
    t = np.unique([a, b, *[d for d in days if a < d < b]])
    v = np.interp(t, days, [p for _, p in table], left=0.0, right=table[-1][1])
    return float(np.trapezoid(v, t))


def _inflammation(a: float, b: float) -> float:
    return _integral(NEUTROPHILS, a, b) + _integral(MACROPHAGES, a, b)


@pytest.fixture(scope="module")
def history():
    """One model stepped to day 3; per step the cohort densities, secretion sources,
    cumulative secreted amounts and balances; plus a state at day 1 mapped to mesh
    indices and the model (closed at the end)."""
    comm = MPI.COMM_WORLD
    study = load_study(BASELINE, OVERRIDES)
    mesh, cells, facets = load_mesh(ensure_mesh(study.geometry, comm), comm,
                                    ghost_mode="shared_facet")
    model = CoupledModel(study, mesh, cells, facets)
    rec = []
    d = model.disc
    saved = None
    for n in range(STEPS):
        if n == 2:
            saved = (StateMap(d.mesh, d.V, d.Q), model.state())
        model.step(0.5)
        rec.append({
            "t": model.t,
            "rho": {m.name: m.rho.copy() for m in model.cells.members},
            "source": {sp.name: d.cells_of(sp.secretion).copy() for sp in model.species.members},
            "secreted": model.cells.secreted(),
            "alive": model.cells.surviving(),
            "balance": model.balance(),
            "error": {s: model.ledger.error(s) for s in model.species_names},
        })
    yield study, model, rec, saved
    model.destroy()


def _member(model, name):
    return next(m for m in model.cells.members if m.name == name)


def test_late_cohort_is_absent_and_secretes_nothing_before_its_time(history):
    rec = history[2]
    for r in rec:
        if r["t"] < T_LATE:
            assert not np.any(r["rho"]["late"]), r["t"]
            assert r["secreted"]["late"]["BDNF"] == 0.0
            assert not np.any(r["source"]["BDNF"])  # nobody else secretes BDNF
            assert r["balance"]["BDNF"]["secreted"] == 0.0
            assert r["alive"]["late"] == 0.0
    after = [r for r in rec if r["t"] > T_LATE]
    assert after and all(r["secreted"]["late"]["BDNF"] > 0 for r in after)


def test_survival_is_the_closed_form_for_a_prescribed_inflammation_course(history):
    _, model, rec, _ = history
    late, early, calm = (_member(model, n) for n in ("late", "early", "calm"))
    channel = late.rho0 > 0
    assert channel.any() == (model.disc.mask(["channel"]).any())
    assert np.all(late.rho0[channel] == pytest.approx(2e5))
    assert not np.any(late.rho0[~model.disc.mask(["channel"])])
    for r in rec:
        t = r["t"]
        k_e = LN2 / 7.0
        want = 1e5 * survival_fraction(k_e, 3.0, _inflammation(0.0, t), t)
        got = r["rho"]["early"][early.rho0 > 0]
        assert np.allclose(got, want, rtol=1e-12, atol=0), (t, got.max(), want)
        assert np.allclose(r["rho"]["calm"][calm.rho0 > 0], 1e5 * math.exp(-k_e * t),
                           rtol=1e-12, atol=0)
        if t >= T_LATE:
            want = 2e5 * survival_fraction(LN2 / 10.0, 2.0, _inflammation(T_LATE, t),
                                           t - T_LATE)
            assert np.allclose(r["rho"]["late"][channel], want, rtol=1e-12, atol=0), t
    # Inflammation kills: the inflamed cohort has fewer cells than the calm one.
    last = rec[-1]["alive"]
    assert last["early"] < 0.5 * last["calm"]  # exp(-k0 β ∫I) = exp(-0.099*3*2.875) = 0.43


def test_trophic_support_lowers_the_death_rate(history):
    _, model, rec, _ = history
    sup, early = _member(model, "supported"), _member(model, "early")
    inside = early.rho0 > 0
    assert np.all(sup.rho[inside] >= early.rho[inside] * (1 - 1e-14))
    # GDNF from the early cohort (≈ 10 ng/mL, K = 1 ng/mL): occupancy ~0.9, rate /≈2.8.
    assert rec[-1]["alive"]["supported"] > 1.3 * rec[-1]["alive"]["early"]
    # The law itself: higher with inflammation, lower with support, k0 without either.
    assert death_rate(0.1, 3.0, 0.0) == pytest.approx(0.1)
    assert death_rate(0.1, 3.0, 0.5) == pytest.approx(0.25)
    assert death_rate(0.1, 3.0, 0.5, 2.0, 0.5) == pytest.approx(0.125)


def test_secretion_is_exact_stops_with_the_cells_and_is_in_the_balance(history):
    _, model, rec, _ = history
    d = model.disc
    late, brief = _member(model, "late"), _member(model, "brief")
    vol = d.cell_volume[: d.n_owned]
    n_late = d.comm.allreduce(float(late.rho0[: d.n_owned] @ vol), op=MPI.SUM)
    n_brief = d.comm.allreduce(float(brief.rho0[: d.n_owned] @ vol), op=MPI.SUM)
    # The straddling step [1.0, 1.5]: only [1.25, 1.5] counts, k frozen at its mean.
    step = next(r for r in rec if r["t"] == pytest.approx(1.5))
    k = LN2 / 10.0 * (1.0 + 2.0 * _inflammation(T_LATE, 1.5) / (1.5 - T_LATE))
    want = 1e-6 * n_late * (-math.expm1(-k * (1.5 - T_LATE))) / k
    assert step["secreted"]["late"]["BDNF"] == pytest.approx(want, rel=1e-12)
    # Short-lived cells: everything they make is σ N0 / k, then nothing.
    kb = LN2 / 0.01
    assert rec[-1]["secreted"]["brief"]["NT3"] == pytest.approx(1e-6 * n_brief / kb, rel=1e-12)
    first, last = rec[0]["source"]["NT3"], rec[-1]["source"]["NT3"]
    assert first.max() > 0 and last.max() == pytest.approx(first.max() * math.exp(-kb * 2.5),
                                                           rel=1e-10)  # ~1e-75: gone
    # The species ledger books the same amounts; the balance closes.
    for r in rec:
        for sp, cohort in (("BDNF", "late"), ("GDNF", "early"), ("NT3", "brief")):
            assert r["balance"][sp]["secreted"] == pytest.approx(
                r["secreted"][cohort][sp], rel=1e-12, abs=0.0), (sp, r["t"])
        assert max(r["error"].values()) < 1e-10, r["error"]


def test_state_restores_through_the_checkpoint_mapping(history):
    _, model, rec, saved = history
    smap, state = saved
    comm = model.disc.comm
    arrays = comm.bcast(smap.state_to_global(state), root=0)
    back = smap.state_from_global(arrays, state.scalars)
    assert {f"cells:{n}" for n in ("early", "calm", "supported", "late", "brief")} <= \
        set(back.cells)
    for key in back.cells:
        if key.startswith("cells:"):
            assert np.array_equal(back.cells[key], state.cells[key]), key
    model.restore(back)  # day 1, the late cohort not yet placed
    assert model.t == pytest.approx(1.0) and not _member(model, "late").rho.any()
    for _ in range(STEPS - 2):
        model.step(0.5)
    for name, rho in rec[-1]["rho"].items():
        # (the trophic cohort reads GDNF: equal to the solver tolerance)
        assert np.allclose(_member(model, name).rho, rho, rtol=1e-8, atol=0), name
    assert model.cells.secreted()["late"]["BDNF"] == pytest.approx(
        rec[-1]["secreted"]["late"]["BDNF"], rel=1e-12)
    names = set(model.fields())
    assert {"cells_early", "cells_late", "cell_density"} <= names
    m = model.metrics()["cells"]["late"]
    assert m["cell_type"] == "NSPC" and m["transplant_time_day"] == pytest.approx(T_LATE)
    assert 0 < m["surviving_fraction_final"] < 1


def test_a_day_14_graft_secretes_nothing_before_day_14():
    rho0 = np.array([1e5, 0.0, 3e5])
    rho, made = np.zeros(3), 0.0
    for t0 in np.arange(0.0, 20.0, 1.5):  # the step [13.5, 15.0] straddles day 14
        t1 = t0 + 1.5
        rho, mean = graft_step(rho, rho0, t0, t1, 14.0, 0.2)
        if t1 < 14.0:
            assert not rho.any() and not mean.any()
        elif t0 < 14.0:  # 1 day of the 1.5 counts
            assert mean == pytest.approx(rho0 * (1 - math.exp(-0.2)) / 0.2 / 1.5, rel=1e-14)
        made += float(mean.sum()) * 1.5
    assert rho == pytest.approx(rho0 * math.exp(-0.2 * 7.0), rel=1e-13)  # day 21
    assert made == pytest.approx(rho0.sum() * (1 - math.exp(-1.4)) / 0.2, rel=1e-13)


def test_transplant_time_is_a_sweep_key(tmp_path):
    s = load_study(None, ["cells.cohorts.0.transplant_time='14 day'"])
    assert s.cells.cohorts[0].transplant_time == pytest.approx(14.0)
    s = load_study(None, ["cells.cohorts.graft.secretion.GDNF='2e-6 ng/cell/day'"])
    assert s.cells.cohorts[0].secretion == {"GDNF": pytest.approx(2e-6)}
    sweep = tmp_path / "timing.toml"
    sweep.write_text(f'name = "t"\nbase = "{BASELINE}"\n[grid]\n'
                     '"cells.cohorts.0.transplant_time" = ["0 day", "2 week"]\n'
                     '"cells.cohorts.graft.secretion.GDNF" = ["1e-7 ng/cell/day", '
                     '"1e-6 ng/cell/day"]\n')
    plan = load_sweep(sweep)
    got = sorted((parameter_value(c.study, "cells.cohorts.0.transplant_time")[0],
                  c.study.cells.cohorts[0].secretion["GDNF"]) for c in plan.cases)
    assert np.allclose(got, [(0.0, 1e-7), (0.0, 1e-6), (14.0, 1e-7), (14.0, 1e-6)],
                       rtol=1e-14, atol=0)
    assert len(load_sweep(ROOT / "studies" / "graft_timing.toml").cases) == 12
    # The old single-population keys point to their new place.
    with pytest.raises(StudyError, match=r"cells\.cohorts\.<name>\.density"):
        load_study(None, ["cells.density='1e5 cell/mm^3'"])
    with pytest.raises(StudyError, match=r"cells\.cohorts\.<name>\.secretion\.GDNF"):
        load_study(None, ["species.GDNF.secretion='1e-6 ng/cell/day'"])
    with pytest.raises(StudyError, match="no species 'VEGF'"):
        load_study(None, ["cells.cohorts.0.secretion.VEGF='1e-6 ng/cell/day'"])
