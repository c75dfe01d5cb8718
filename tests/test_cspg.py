"""The CSPG scar and chondroitinase ABC (docs/model.md, "CSPG scar and chondroitinase
ABC"): the rim's time course against the closed form of its law, first-order MMP-2
clearance, ChABC's exponential loss of activity, ChABC digesting the scar and letting
more growth cones cross it, and the state (snapshot and rank-independent checkpoint
mapping). Serial and on 2 ranks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from dolfinx import fem
from mpi4py import MPI
from test_run import BASELINE, TINY

from scaffoldfem.axons.tracer import GrowthFields, Tracer
from scaffoldfem.config.cspg import ChABCConfig, CSPGConfig
from scaffoldfem.config.inflammation import InflammationConfig
from scaffoldfem.config.study import Study, load_study
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.model.cspg import CSPG
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.material import Material
from scaffoldfem.physics.cspg import chabc_decay_rate, cspg_step, deposition_closed_form
from scaffoldfem.regions import cell_tag
from scaffoldfem.run.checkpoint import StateMap
from scaffoldfem.run.loop import lesion_z


@pytest.fixture(scope="module")
def tiny():
    """The TINY study's mesh (shared, ghosted) and study."""
    comm = MPI.COMM_WORLD
    study = load_study(BASELINE, TINY)
    mesh, cells, facets = load_mesh(ensure_mesh(study.geometry, comm), comm,
                                    ghost_mode="shared_facet")
    return study, mesh, cells, facets


def _part(tiny, cspg: dict, chabc: dict | None = None):
    study, mesh, cells, facets = tiny
    d = Discretisation(mesh, cells, facets)
    mat = Material(study.scaffold, study.tissue, d)
    dt = fem.Constant(mesh, 0.5)
    part = CSPG(CSPGConfig(**cspg), ChABCConfig(**(chabc or {})), InflammationConfig(), d, mat,
                dt, None, study.time.negative_tolerance)
    return d, part


def test_rim_time_course_matches_closed_form_and_the_literature_window(tiny):
    """No enzymes: every rim cell follows s_max − s_max exp(−(k/s_max)∫A) to 1e-7 over
    three weeks of half-day steps; cells outside the rim stay at 0; onset after a few
    days and plateau within two weeks (Jones et al. 2003 Exp Neurol 182:399)."""
    d, part = _part(tiny, {})
    rim = d.region == cell_tag("scar")
    assert MPI.COMM_WORLD.allreduce(int(rim[: d.n_owned].sum())) > 0
    cfg, times, levels = part.cfg, np.arange(0.5, 21.01, 0.5), []
    for t in times:
        part.advance(t - 0.5, t, {})
        s = part.cells()
        levels.append(MPI.COMM_WORLD.allreduce(float(s[rim].max(initial=0.0)), op=MPI.MAX))
        assert np.allclose(s[rim], s[rim][0] if rim.any() else 0.0, rtol=0, atol=1e-14)
        assert np.all(s[~rim] == 0.0)
    exact = deposition_closed_form(times, cfg, InflammationConfig(), points=200001)
    assert np.max(np.abs(np.array(levels) - exact)) < 1e-7
    frac = dict(zip(times, np.array(levels) / cfg.capacity, strict=True))
    assert frac[3.0] < 0.05 and 0.4 < frac[7.0] < 0.6 and frac[14.0] > 0.93
    assert levels[-1] < cfg.capacity


def test_mmp2_clearance_is_first_order_in_the_enzyme(tiny):
    """No deposition: s = s0 exp(−k_j m t); doubling m doubles the log-decay, and an
    enzyme not named in `clearance` clears nothing."""
    d, part = _part(tiny, {"initial": 1.0, "deposition_rate": "0 1/day",
                           "clearance": {"MMP-2": "0.02 mL/ng/day"}})
    rim = d.region == cell_tag("scar")
    m = np.where(np.arange(d.n_cells) % 2 == 0, 10.0, 20.0)  # ng/mL, two levels
    for t in np.arange(0.5, 5.01, 0.5):
        part.advance(t - 0.5, t, {"MMP-2": m, "MMP-9": 1e6 * np.ones(d.n_cells)})
    s = part.cells()[rim]
    assert np.allclose(s, np.exp(-0.02 * m[rim] * 5.0), rtol=1e-12, atol=0)
    lo, hi = rim & (m == 10.0), rim & (m == 20.0)
    if lo.any() and hi.any():
        ratio = np.log(part.cells()[hi]).mean() / np.log(part.cells()[lo]).mean()
        assert ratio == pytest.approx(2.0, rel=1e-12)
    # the step law against a fine explicit integration with deposition and clearance
    s_fine = 0.3
    for _ in range(20000):
        s_fine += 1e-4 * (0.4 * 0.8 * (1 - s_fine / 1.25) - 0.3 * s_fine)
    assert cspg_step(0.3, 2.0, 0.8, 1.25, 0.4, 0.3) == pytest.approx(s_fine, rel=1e-4)


def test_chabc_loses_activity_as_exp_and_digests_the_scar(tiny):
    """A bolus of ChABC in the scar: the active amount is the bolus's exact integral in
    its step, then decays as exp(−k t) to 1e-8 (no-flux ends); the scar's CSPG, mature
    at t = 0, is digested far below the untreated level, which stays near 1."""
    chabc = {"doses": [{"region": "scar", "amount": "50 ng", "start": "1 day"}],
             "half_life": "1 day"}
    _, treated = _part(tiny, {"initial": 1.0, "clearance": {}}, chabc)
    _, untreated = _part(tiny, {"initial": 1.0, "clearance": {}})
    k, h = chabc_decay_rate(ChABCConfig(**chabc)), 0.5
    amounts = []
    for t in np.arange(0.5, 4.01, h):
        treated.advance(t - h, t, {})
        untreated.advance(t - h, t, {})
        amounts.append(treated.summary()["chabc_active_ng"])
    assert amounts[0] == 0.0
    assert amounts[1] == pytest.approx(50.0 * -math.expm1(-k * h) / (k * h), rel=1e-8)
    expected = amounts[1] * np.exp(-k * h * np.arange(len(amounts) - 1))
    assert np.allclose(amounts[1:], expected, rtol=1e-8)
    assert treated.summary()["chabc_dosed_ng"] == pytest.approx(50.0, rel=1e-12)
    after, before = treated.summary()["cspg_mean_scar"], untreated.summary()["cspg_mean_scar"]
    assert before > 0.99 and after < 0.05
    treated.destroy()


def test_state_round_trip_and_checkpoint_mapping(tiny):
    """A step repeated after restoring the state gives the same CSPG and ChABC; the state
    survives the rank-independent mapping of the checkpoints exactly."""
    chabc = {"doses": [{"region": "scaffold", "kind": "infusion", "rate": "20 ng/day",
                        "start": "0 day", "end": "3 day"}]}
    d, part = _part(tiny, {"initial": 0.5}, chabc)
    mmp = {"MMP-2": 5.0 * np.ones(d.n_cells)}
    for t in (0.5, 1.0):
        part.advance(t - 0.5, t, mmp)
    snap = part.state()
    part.advance(1.0, 1.5, mmp)
    first = part.state()
    part.restore(snap)
    assert np.array_equal(part.state().cells["cspg"], snap.cells["cspg"])
    part.advance(1.0, 1.5, mmp)
    again = part.state()
    assert np.allclose(again.cells["cspg"], first.cells["cspg"], rtol=1e-9, atol=1e-14)
    assert np.allclose(again.nodes["chabc"], first.nodes["chabc"], rtol=1e-7, atol=1e-12)
    assert set(first.cells) == {"cspg", "cspg_cue", "chabc_cells"} and set(first.nodes) == {"chabc"}
    assert np.array_equal(again.cells["cspg_cue"], first.cells["cspg_cue"])
    smap = StateMap(d.mesh, d.V, d.Q)
    arrays = MPI.COMM_WORLD.bcast(smap.state_to_global(first), root=0)
    back = smap.state_from_global(arrays, first.scalars)
    assert np.array_equal(back.cells["cspg"], first.cells["cspg"])
    assert np.array_equal(back.nodes["chabc"], first.nodes["chabc"])
    part.destroy()


#: A scar-dominated case: a short lesion, a mature scar from t = 0, strong repulsion
#: and slowing by CSPG, fast cones, crossing counted 0.2 mm past the far face.
SCAR = [
    'geometry.lesion.length="0.8 mm"', 'axons.cross_depth="0.2 mm"', 'axons.speed="1 mm/day"',
    "axons.count=60", "cspg.initial=1.0", "axons.cues.scar_repulsion=4.0",
    "axons.cspg_half_inhibition=0.1",
    "chabc.doses=[]",  # the untreated case (test_run's TINY doses ChABC)
]


def _crossing(study: Study, days: float = 3.0) -> tuple[int, int, float]:
    """Grow the cones through the CSPG field of ``study`` (ChABC dosed or not)."""
    comm = MPI.COMM_WORLD
    mesh, cells, facets = load_mesh(ensure_mesh(study.geometry, comm), comm,
                                    ghost_mode="shared_facet")
    d = Discretisation(mesh, cells, facets)
    mat = Material(study.scaffold, study.tissue, d)
    part = CSPG(study.cspg, study.chabc, study.inflammation, d, mat, fem.Constant(mesh, 0.5),
                None, study.time.negative_tolerance)
    tracer = Tracer(mesh, cells, study.axons, lesion_z(study), [])
    tracer.seed(0.0)
    for t in np.arange(0.5, days + 0.01, 0.5):
        part.advance(t - 0.5, t, {})
        tracer.advance(t - 0.5, t, GrowthFields(cspg=part.fields()["cspg"]))
    mean = part.summary()["cspg_mean_scar"]
    part.destroy()
    return tracer.n_crossed(), study.axons.count, mean


def test_chabc_raises_crossing_of_a_scar_dominated_lesion():
    """Mature scar: few cones cross in 3 days; a ChABC bolus in the scar at t = 0
    digests it and the crossing fraction rises by more than 4 standard errors."""
    base = load_study(BASELINE, TINY + SCAR)
    treated = load_study(BASELINE, TINY + SCAR + [
        "chabc.doses=[{region='scar', amount='200 ng'}]"])
    k0, n, s0 = _crossing(base)
    k1, _, s1 = _crossing(treated)
    p0, p1 = k0 / n, k1 / n
    se = math.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) / n)
    assert s0 > 0.99 and s1 < 0.05
    assert p1 - p0 > 4 * max(se, 1 / n), (k0, k1, n)
